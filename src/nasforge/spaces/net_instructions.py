"""LEMONADE's instructions (SPEC §4, Table 3) as operators of the ``net`` search space.

Each instruction is one method returning a new genome or None when it does not apply;
:data:`~nasforge.spaces.net.INSTRUCTION_OPERATORS` maps the codes (ACL, RCL, ...) to the
method names and :meth:`NetInstructions.apply_instruction` applies one by code, which is
what the offline rule designer needs. Layer edits re-index the skip connections and drop
those that no longer fit. With :meth:`~NetInstructions.small_genome`,
:meth:`~NetInstructions.reply_grids` and :meth:`~NetInstructions.prompt_bounds` this is the
:class:`~nasforge.spaces.capabilities.Instructable` capability of the net family.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidGenome
from .capabilities import valid_child
from .net import INSTRUCTION_OPERATORS, NetGenome
from .net_layers import (
    ConvLayer,
    DenseLayer,
    DropoutLayer,
    GlobalPoolLayer,
    Layer,
    PoolLayer,
    Skip,
    skip_problem,
    trace_shapes,
)  # fmt: skip


def _insert(g: NetGenome, at: int, layer: Layer) -> NetGenome:
    """Insert a layer; skips keep their endpoints (indices at or after ``at`` shift by one)."""
    skips = tuple(Skip(src=s.src + (s.src >= at), dst=s.dst + (s.dst >= at)) for s in g.skips)
    return g.model_copy(update={"layers": g.layers[:at] + (layer,) + g.layers[at:], "skips": skips})


def _remove(g: NetGenome, at: int) -> NetGenome:
    """Remove a layer and the skips that touch it; later indices shift down by one."""
    skips = tuple(
        Skip(src=s.src - (s.src > at), dst=s.dst - (s.dst > at)) for s in g.skips if at not in (s.src, s.dst)
    )
    return g.model_copy(update={"layers": g.layers[:at] + g.layers[at + 1 :], "skips": skips})


def _replace(g: NetGenome, at: int, **changes: Any) -> NetGenome:
    layers = list(g.layers)
    layers[at] = layers[at].model_copy(update=changes)
    return g.model_copy(update={"layers": tuple(layers)})


def _step(grid: tuple, value: Any, up: bool) -> Any:
    """The next grid value above (or below) ``value``; None at the end of the grid."""
    options = [v for v in grid if (v > value if up else v < value)]
    return (min(options) if up else max(options)) if options else None


class NetInstructions:
    """The instruction operators of :class:`~nasforge.spaces.net_space.NetSpace`, kept in their
    own module: they read the space's grids and bounds (``channels``, ``max_conv``, ...) and
    its helpers ``_pick``, ``_conv`` and ``_dense``, all set up by NetSpace."""

    def _candidate_skips(self, g: NetGenome) -> list[Skip]:
        try:
            shapes = trace_shapes(g.layers, self.input_shape)
        except InvalidGenome:
            return []
        have = {(s.src, s.dst) for s in g.skips}
        pairs = [Skip(src=i, dst=j) for j in range(len(shapes)) for i in range(j) if (i, j) not in have]
        return [s for s in pairs if skip_problem(s, shapes) is None]

    def _prune_skips(self, g: NetGenome) -> NetGenome:
        """Drop skips a layer edit made impossible (e.g. a removed stride changed the sizes)."""
        try:
            shapes = trace_shapes(g.layers, self.input_shape)
        except InvalidGenome:
            return g  # the layers themselves are invalid: check() will say why
        keep = tuple(s for s in dict.fromkeys(g.skips) if skip_problem(s, shapes) is None)
        return g if keep == g.skips else g.model_copy(update={"skips": keep})

    # --- the instructions: each returns a new genome, or None when it does not apply ---
    def _image_positions(self, g: NetGenome) -> list[int]:
        """Insertion points whose input is still an image (where a conv can go)."""
        if not self.image:
            return []
        try:
            shapes = [self.input_shape, *trace_shapes(g.layers, self.input_shape)]
        except InvalidGenome:
            return []
        return [p for p, shape in enumerate(shapes) if len(shape) == 3]

    def _indices(self, g: NetGenome, kind: str) -> list[int]:
        return [i for i, layer in enumerate(g.layers) if layer.kind == kind]

    def add_conv(self, g: NetGenome, rng: np.random.Generator) -> NetGenome | None:
        """ACL: a stride-1 conv anywhere in the image part, styled like the conv before it."""
        positions = self._image_positions(g)
        if g.count("conv") >= self.max_conv or not positions:
            return None
        at = self._pick(rng, positions)
        before = [layer for layer in g.layers[:at] if isinstance(layer, ConvLayer)]
        new = self._conv(rng, before[-1].channels if before else self.channels[0])
        if before:
            new = new.model_copy(update={"activation": before[-1].activation, "batch_norm": before[-1].batch_norm})
        return _insert(g, at, new)

    def remove_conv(self, g: NetGenome, rng: np.random.Generator) -> NetGenome | None:
        """RCL: drop one conv layer (and skips that touched it or no longer fit)."""
        convs = self._indices(g, "conv")
        if len(convs) <= self.min_conv or not convs:
            return None
        return self._prune_skips(_remove(g, self._pick(rng, convs)))

    def add_skip(self, g: NetGenome, rng: np.random.Generator) -> NetGenome | None:
        """ASC: one new shape-compatible skip (a projection is built if channels differ)."""
        candidates = self._candidate_skips(g)
        if len(g.skips) >= self.max_skips or not candidates:
            return None
        skips = sorted((*g.skips, self._pick(rng, candidates)), key=lambda s: (s.src, s.dst))
        return g.model_copy(update={"skips": tuple(skips)})

    def remove_skip(self, g: NetGenome, rng: np.random.Generator) -> NetGenome | None:
        """RSC."""
        if not g.skips:
            return None
        at = int(rng.integers(len(g.skips)))
        return g.model_copy(update={"skips": g.skips[:at] + g.skips[at + 1 :]})

    def add_dense(self, g: NetGenome, rng: np.random.Generator) -> NetGenome | None:
        """ADL: a dense layer after the last image layer (as wide as the dense before it)."""
        if g.count("dense") >= self.max_dense:
            return None
        image_ops = [i for i, layer in enumerate(g.layers) if layer.kind in ("conv", "pool", "global_pool")]
        at = int(rng.integers(max(image_ops, default=-1) + 1, len(g.layers) + 1))
        before = [layer for layer in g.layers[:at] if isinstance(layer, (ConvLayer, DenseLayer))]
        units = before[-1].units if before and isinstance(before[-1], DenseLayer) else None
        return _insert(g, at, self._dense(rng, units, before[-1].activation if before else None))

    def remove_dense(self, g: NetGenome, rng: np.random.Generator) -> NetGenome | None:
        """RDL."""
        dense = self._indices(g, "dense")
        if len(dense) <= self.min_dense or not dense:
            return None
        return self._prune_skips(_remove(g, self._pick(rng, dense)))

    def add_dropout(self, g: NetGenome, rng: np.random.Generator) -> NetGenome | None:
        """AD: a dropout layer after some layer that is not next to another dropout."""
        kinds = [layer.kind for layer in g.layers]
        positions = [p for p in range(1, len(kinds) + 1)
                     if kinds[p - 1] != "dropout" and (p == len(kinds) or kinds[p] != "dropout")]  # fmt: skip
        if g.count("dropout") >= self.max_dropout_layers or not positions:
            return None
        return _insert(g, self._pick(rng, positions), DropoutLayer(rate=self._pick(rng, self.dropouts)))

    def remove_dropout(self, g: NetGenome, rng: np.random.Generator) -> NetGenome | None:
        """RD."""
        drops = self._indices(g, "dropout")
        return self._prune_skips(_remove(g, self._pick(rng, drops))) if drops else None

    def _resize(self, g: NetGenome, rng: np.random.Generator, kind: str, up: bool) -> NetGenome | None:
        """One conv (channels) or dense (units) layer one grid step up or down."""
        field, grid = ("channels", self.channels) if kind == "conv" else ("units", self.units)
        options = [(i, new) for i in self._indices(g, kind)
                   if (new := _step(grid, getattr(g.layers[i], field), up)) is not None]  # fmt: skip
        if not options:
            return None
        at, new = self._pick(rng, options)
        return _replace(g, at, **{field: new})

    def more_kernels(self, g: NetGenome, rng: np.random.Generator) -> NetGenome | None:
        """AMK: more channels in one conv layer (next grid step)."""
        return self._resize(g, rng, "conv", up=True)

    def fewer_kernels(self, g: NetGenome, rng: np.random.Generator) -> NetGenome | None:
        """RK."""
        return self._resize(g, rng, "conv", up=False)

    def more_neurons(self, g: NetGenome, rng: np.random.Generator) -> NetGenome | None:
        """AMN: more units in one dense layer (next grid step)."""
        return self._resize(g, rng, "dense", up=True)

    def fewer_neurons(self, g: NetGenome, rng: np.random.Generator) -> NetGenome | None:
        """RN."""
        return self._resize(g, rng, "dense", up=False)

    def add_regularization(self, g: NetGenome, rng: np.random.Generator) -> NetGenome | None:
        """AR: weight decay one grid step up. Only weight decay: dropout is AD's job."""
        new = _step(self.regularizations, g.regularization, up=True)
        return None if new is None else g.model_copy(update={"regularization": new})

    def reduce_regularization(self, g: NetGenome, rng: np.random.Generator) -> NetGenome | None:
        """RR: weight decay one grid step down."""
        new = _step(self.regularizations, g.regularization, up=False)
        return None if new is None else g.model_copy(update={"regularization": new})

    def change_init(self, g: NetGenome, rng: np.random.Generator) -> NetGenome | None:
        """AWI: another weight initialiser."""
        others = [i for i in self.inits if i != g.init]
        return g.model_copy(update={"init": self._pick(rng, others)}) if others else None

    def change_rule(self, g: NetGenome, rng: np.random.Generator) -> NetGenome | None:
        """Another learning rule for one conv/dense layer or the classifier."""
        learnable = [i for i, layer in enumerate(g.layers) if isinstance(layer, (ConvLayer, DenseLayer))]
        if len(self.rules) < 2:
            return None
        at = self._pick(rng, [*learnable, -1])
        current = g.output_rule if at == -1 else g.layers[at].rule
        rule = self._pick(rng, [r for r in self.rules if r != current])
        return g.model_copy(update={"output_rule": rule}) if at == -1 else _replace(g, at, rule=rule)

    # --- Instructable: what the expert system asks of the space ---
    def applicable(self, code: str) -> bool:
        """Every instruction of Table 3 is an operator here."""
        return code in INSTRUCTION_OPERATORS

    def apply_instruction(
        self, g: NetGenome, instruction: str, rng: np.random.Generator, tries: int = 20
    ) -> NetGenome | None:
        """A valid child made by one instruction (code like "ACL" or operator name), or None."""
        name = INSTRUCTION_OPERATORS.get(instruction, instruction)
        if name not in (*INSTRUCTION_OPERATORS.values(), "change_rule"):
            raise InvalidGenome(f"unknown instruction {instruction!r}; known: {sorted(INSTRUCTION_OPERATORS)}")
        op = self.mutation_operators().get(name)
        if op is None:  # change_rule in a single-rule space
            return None
        return valid_child(self, op, g, rng, tries)  # type: ignore[arg-type]

    def small_genome(self) -> NetGenome:
        """The paper's "simple CNN": two convs (a max pool after the first when the map allows),
        a global pool and one dense layer, at the space's narrow end; dense only for flat inputs."""
        act, rule = self.activations[0], self.rules[0]
        layers: list[Layer] = []
        n_conv = min(max(2, self.min_conv), self.max_conv) if self.image else 0
        kernel = 3 if 3 in self.kernels else self.kernels[0]
        for i in range(n_conv):
            channels = self.channels[min(i + 1, len(self.channels) - 1)]
            layers.append(ConvLayer(channels=channels, kernel=kernel, activation=act, batch_norm=True, rule=rule))
            if i == 0 and n_conv > 1 and min(self.input_shape[1:]) >= 4:
                layers.append(PoolLayer(op="max"))
        if n_conv:
            layers.append(GlobalPoolLayer())
        units = self.units[min(1, len(self.units) - 1)]
        layers += [DenseLayer(units=units, activation=act, rule=rule)
                   for _ in range(min(max(1, self.min_dense), self.max_dense))]  # fmt: skip
        return NetGenome(layers=tuple(layers), init="default" if "default" in self.inits else self.inits[0],
                         regularization=self.regularizations[0], output_rule=rule)  # fmt: skip

    def reply_grids(self) -> tuple[dict[str, tuple], dict[str, tuple[int, int]]]:
        layers = 2 * self.max_conv + self.max_dense + self.max_dropout_layers + 1  # each conv may be followed by a pool
        return ({"channels": self.channels, "kernel": self.kernels, "units": self.units,
                 "activation": self.activations, "rule": self.rules, "output_rule": self.rules, "init": self.inits,
                 "regularization": self.regularizations, "rate": self.dropouts},
                {"layers": (self.min_conv, layers), "skips": (0, self.max_skips)})  # fmt: skip

    def prompt_bounds(self) -> dict[str, Any]:
        return {"conv_layers": [self.min_conv, self.max_conv], "dense_layers": [self.min_dense, self.max_dense],
                "conv_channels": list(self.channels), "conv_kernels": list(self.kernels),
                "dense_units": list(self.units), "activations": list(self.activations),
                "dropout_rates": list(self.dropouts), "max_dropout_layers": self.max_dropout_layers,
                "max_skips": self.max_skips, "inits": list(self.inits), "regularization": list(self.regularizations),
                "learning_rules": list(self.rules), "max_params": self.max_params}  # fmt: skip
