"""The search space of the ``net`` family, whose mutation operators are LEMONADE's instructions.

Each instruction of SPEC §4 (Table 3) is one method returning a new genome or None when it
does not apply; :data:`~nasforge.spaces.net.INSTRUCTION_OPERATORS` maps the codes (ACL,
RCL, ...) to the method names and :meth:`NetSpace.apply_instruction` applies one by code,
which is what the offline rule designer needs. Layer edits re-index the skip connections
and drop those that no longer fit.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import InvalidGenome
from .base import Genome, SearchSpace
from .net import INSTRUCTION_OPERATORS, REGULARIZATIONS, NetGenome
from .net_layers import (
    NET_ACTIVATIONS, WIDTHS, ConvLayer, DenseLayer, DropoutLayer, GlobalPoolLayer, Layer, PoolLayer, Skip,
    input_image_shape, skip_problem, trace_shapes,
)  # fmt: skip
from .vocabulary import INITS, LEARNING_RULES, POOL_OPS


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


class NetSpace(SearchSpace):
    """Nets for one input shape; every bound is checked by :meth:`check`."""

    genome_type = NetGenome

    def __init__(
        self,
        input_shape: tuple[int, ...],
        n_classes: int,
        *,
        min_conv: int | None = None,
        max_conv: int = 6,
        min_dense: int = 0,
        max_dense: int = 2,
        channels: tuple[int, ...] = (8, 16, 32, 64, 128),
        units: tuple[int, ...] = (16, 32, 64, 128, 256),
        kernels: tuple[int, ...] = (1, 3, 5),
        activations: tuple[str, ...] = ("relu", "gelu", "elu", "leaky_relu", "silu"),
        rules: tuple[str, ...] = ("backprop",),
        inits: tuple[str, ...] = INITS,
        regularizations: tuple[float, ...] = REGULARIZATIONS,
        dropouts: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5),
        max_dropout_layers: int = 3,
        max_skips: int = 4,
        max_params: int | None = None,
    ):
        self.input_shape = input_image_shape(input_shape)
        self.image = len(self.input_shape) == 3
        if not self.image:
            max_conv = 0
        min_conv = (1 if self.image else 0) if min_conv is None else min_conv
        if not 0 <= min_conv <= max_conv or not 0 <= min_dense <= max_dense:
            raise InvalidGenome(f"bad layer bounds: conv {min_conv}..{max_conv}, dense {min_dense}..{max_dense}")
        for name, grid, allowed in (("channels", channels, WIDTHS), ("units", units, WIDTHS),
                                    ("kernels", kernels, (1, 3, 5, 7)), ("inits", inits, INITS),
                                    ("activations", activations, NET_ACTIVATIONS),
                                    ("rules", rules, LEARNING_RULES), ("dropouts", dropouts, None),
                                    ("regularizations", regularizations, REGULARIZATIONS)):  # fmt: skip
            if allowed is None:  # dropout rates: any in (0, 1)
                allowed = tuple(r for r in grid if 0 < r < 1)
            if not grid or set(grid) - set(allowed):
                raise InvalidGenome(f"{name} {list(grid)} must be a non-empty subset of {list(allowed)}")
        self.n_classes = n_classes
        self.min_conv, self.max_conv, self.min_dense, self.max_dense = min_conv, max_conv, min_dense, max_dense
        self.channels, self.units = tuple(sorted(channels)), tuple(sorted(units))
        self.kernels, self.activations, self.rules = tuple(kernels), tuple(activations), tuple(rules)
        self.inits, self.regularizations = tuple(inits), tuple(sorted(regularizations))
        self.dropouts, self.max_dropout_layers = tuple(dropouts), max_dropout_layers
        self.max_skips, self.max_params = max_skips, max_params

    def _pick(self, rng: np.random.Generator, options: tuple | list) -> Any:
        return options[int(rng.integers(len(options)))]

    def _conv(self, rng: np.random.Generator, channels: int, stride: int = 1, act: str | None = None) -> ConvLayer:
        kernel = 3 if 3 in self.kernels else self._pick(rng, self.kernels)
        return ConvLayer(channels=channels, kernel=kernel, stride=stride, activation=act or self.activations[0],
                         batch_norm=bool(rng.random() < 0.5), rule=self._pick(rng, self.rules))  # fmt: skip

    def _dense(self, rng: np.random.Generator, units: int | None = None, act: str | None = None) -> DenseLayer:
        return DenseLayer(units=units or self._pick(rng, self.units), activation=act or self.activations[0],
                          rule=self._pick(rng, self.rules))  # fmt: skip

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

    def random_genome(self, rng: np.random.Generator) -> NetGenome:
        """A plain CNN: conv blocks with occasional stride-2 or pooling, then dense layers."""
        layers: list[Layer] = []
        size = min(self.input_shape[1:]) if self.image else 0
        width = int(rng.integers(max(1, len(self.channels) // 2 + 1)))
        act = self._pick(rng, self.activations)  # one activation per net, as designers write them
        for b in range(int(rng.integers(self.min_conv, self.max_conv + 1))):
            if b and rng.random() < 0.3:
                width = min(width + 1, len(self.channels) - 1)
            stride = 2 if b and size >= 4 and rng.random() < 0.25 else 1
            size = (size + 1) // 2 if stride == 2 else size
            layers.append(self._conv(rng, self.channels[width], stride, act))
            if stride == 1 and size >= 4 and rng.random() < 0.3:
                layers.append(PoolLayer(op=self._pick(rng, POOL_OPS)))
                size //= 2
        if any(isinstance(layer, ConvLayer) for layer in layers) and rng.random() < 0.7:
            layers.append(GlobalPoolLayer())
        for _ in range(int(rng.integers(self.min_dense, self.max_dense + 1))):
            layers.append(self._dense(rng, act=act))
            if self.max_dropout_layers and rng.random() < 0.3:
                layers.append(DropoutLayer(rate=self._pick(rng, self.dropouts)))
        g = NetGenome(layers=tuple(layers), init=self._pick(rng, self.inits), output_rule=self._pick(rng, self.rules),
                      regularization=self._pick(rng, self.regularizations))  # fmt: skip
        for _ in range(int(rng.integers(min(2, self.max_skips) + 1))):
            g = self.add_skip(g, rng) or g
        return g

    def check(self, genome: Genome) -> None:
        if not isinstance(genome, NetGenome):
            raise InvalidGenome(f"expected a net genome, got {genome.family!r}")
        g = genome
        g.shapes(self.input_shape)  # layer order, spatial sizes and skips
        n_conv, n_dense, n_drop = g.count("conv"), g.count("dense"), g.count("dropout")
        if not self.min_conv <= n_conv <= self.max_conv:
            raise InvalidGenome(f"{n_conv} conv layers, the space allows {self.min_conv}..{self.max_conv}")
        if not self.min_dense <= n_dense <= self.max_dense:
            raise InvalidGenome(f"{n_dense} dense layers, the space allows {self.min_dense}..{self.max_dense}")
        if n_drop > self.max_dropout_layers:
            raise InvalidGenome(f"{n_drop} dropout layers, the space allows at most {self.max_dropout_layers}")
        if len(g.skips) > self.max_skips:
            raise InvalidGenome(f"{len(g.skips)} skip connections, the space allows at most {self.max_skips}")
        for i, layer in enumerate(g.layers):
            problem = None
            if isinstance(layer, ConvLayer) and layer.channels not in self.channels:
                problem = f"{layer.channels} channels, allowed {list(self.channels)}"
            elif isinstance(layer, ConvLayer) and layer.kernel not in self.kernels:
                problem = f"kernel {layer.kernel}, allowed {list(self.kernels)}"
            elif isinstance(layer, DenseLayer) and layer.units not in self.units:
                problem = f"{layer.units} units, allowed {list(self.units)}"
            elif getattr(layer, "activation", "none") not in (*self.activations, "none"):
                problem = f"activation {layer.activation!r}, allowed {list(self.activations)}"
            if problem:
                raise InvalidGenome(f"layer {i} ({layer.kind}): {problem}")
        bad_rules = set(g.rules()) - set(self.rules)
        if bad_rules:
            raise InvalidGenome(f"learning rules {sorted(bad_rules)} are not in {list(self.rules)}")
        if g.init not in self.inits:
            raise InvalidGenome(f"init {g.init!r} is not in {list(self.inits)}")
        if g.regularization not in self.regularizations:
            raise InvalidGenome(f"regularization {g.regularization:g} is not in {list(self.regularizations)}")
        if self.max_params is not None:
            n = g.n_params(self.input_shape, self.n_classes)
            if n > self.max_params:
                raise InvalidGenome(f"{n} parameters exceed the budget of {self.max_params}")

    # --- LEMONADE's instructions: each returns a new genome, or None when it does not apply ---
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

    def mutation_operators(self) -> dict[str, Callable[..., NetGenome | None]]:
        ops = {name: getattr(self, name) for name in INSTRUCTION_OPERATORS.values()}
        if len(self.rules) > 1:
            ops["change_rule"] = self.change_rule
        return ops

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
        for _ in range(tries):
            child = op(g, rng)
            if child is None:
                return None
            if child != g and self.is_valid(child):
                return child
        return None
