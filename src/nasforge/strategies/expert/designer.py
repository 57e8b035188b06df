"""The offline rule designer: applies the surviving instructions to a genome, deterministically.

Instructions are applied one after another, strongest first, each to the result of the
previous one, through the genome family's own mutation operators, so every step stays
inside the search space (an edit that would leave it, e.g. a conv past ``max_conv`` or a
net over the parameter budget, is skipped and recorded with the reason).

Family ``net``: every instruction is a :class:`~nasforge.spaces.NetSpace` operator
(``apply_instruction``). Family ``mlp`` (no convolutions, skips, initialisers): ADL ->
``add_layer``, RDL -> ``remove_layer``, AMN/RN -> ``change_width`` one grid step up/down,
AD/AR -> the shared dropout rate one grid step up, RD/RR -> one step down (the mlp genome's
only regulariser is its dropout rate); ACL, RCL, ASC, RSC, AMK, RK, AWI do not apply.
All randomness comes from the ``rng`` passed in (the strategy's), so a run replays exactly.

The helpers that describe a space to a designer (its genome's JSON Schema, input shape and
bounds) live here too, next to the family dispatch they share.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ...errors import InvalidGenome, NasforgeError
from ...spaces import Genome, MLPGenome, MLPSpace, NetGenome, NetSpace, SearchSpace
from ...spaces.mlp import Dense
from ...spaces.net_layers import ConvLayer, DenseLayer, GlobalPoolLayer, PoolLayer

MLP_APPLICABLE: frozenset[str] = frozenset({"ADL", "RDL", "AMN", "RN", "AD", "RD", "AR", "RR"})


def family_of(space: SearchSpace) -> str:
    """``net`` or ``mlp``: the two families whose operators the expert system can drive."""
    if isinstance(space, NetSpace):
        return "net"
    if isinstance(space, MLPSpace):
        return "mlp"
    raise NasforgeError(
        f"the expert strategy edits 'net' and 'mlp' genomes, not {space.genome_type.family!r} (use --space net or mlp)"
    )


def applicable(family: str, code: str) -> bool:
    """Whether an instruction means anything for a family (mlp has no conv, skips or init)."""
    return family == "net" or code in MLP_APPLICABLE


@dataclass
class Design:
    """A designed genome and, per instruction, whether it was applied (and if not, why)."""

    genome: Genome
    applied: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def genome_schema(space: SearchSpace) -> dict[str, Any]:
    """The published JSON Schema of the space's genome family (family key included)."""
    cls = space.genome_type
    if "json_schema" in vars(cls):
        return cls.json_schema()  # type: ignore[attr-defined]
    schema = cls.model_json_schema()
    schema["properties"] = {"family": {"const": cls.family, "type": "string"}, **schema.get("properties", {})}
    schema["required"] = ["family", *schema.get("required", [])]
    return schema


def reply_schema(space: SearchSpace) -> dict[str, Any]:
    """The schema a reply is decoded under: the genome schema, strict and narrowed to the space.

    Strict: every field is required (as in OpenAI's strict mode). Defaults make fields optional
    in the published schema, and a grammar built from it lets a model stop after
    ``{"family": "net"}``. Narrowed: sizes, activations, rules and rates are enums of this
    space's grids and the layer list is as long as the space allows, so constrained decoding
    (llama.cpp turns the schema into a grammar; numeric minimum/maximum are not enforced
    there, enums are) cannot leave the grids and cannot ramble. What a schema cannot say
    (layer order, conv/dense counts, the parameter budget) is checked after the reply.
    """
    grids, lengths = _space_grids(space)

    def strict(node: Any, prop: str | None = None) -> Any:  # prop: the property this node describes
        if isinstance(node, dict):
            node = {k: ({name: strict(sub, name) for name, sub in v.items()}
                        if k == "properties" and isinstance(v, dict) else strict(v)) for k, v in node.items()}  # fmt: skip
            if isinstance(node.get("properties"), dict):
                node["required"] = list(node["properties"])
            if prop in grids:
                node = {"title": node.get("title", prop), "enum": list(grids[prop])}
            if prop in lengths:
                node["minItems"], node["maxItems"] = lengths[prop]
        elif isinstance(node, list):
            node = [strict(v) for v in node]
        return node

    return strict(genome_schema(space))


def _space_grids(space: SearchSpace) -> tuple[dict[str, tuple], dict[str, tuple[int, int]]]:
    """Per property name: the space's allowed values; per list property: its length bounds."""
    if isinstance(space, NetSpace):
        s = space
        layers = 2 * s.max_conv + s.max_dense + s.max_dropout_layers + 1  # each conv may be followed by a pool
        return ({"channels": s.channels, "kernel": s.kernels, "units": s.units, "activation": s.activations,
                 "rule": s.rules, "output_rule": s.rules, "init": s.inits, "regularization": s.regularizations,
                 "rate": s.dropouts},
                {"layers": (s.min_conv, layers), "skips": (0, s.max_skips)})  # fmt: skip
    assert isinstance(space, MLPSpace)
    return ({"units": space.widths, "activation": space.activations, "rule": space.rules,
             "output_rule": space.rules, "dropout": space.dropouts},
            {"layers": (space.min_layers, space.max_layers)})  # fmt: skip


def input_shape(space: SearchSpace) -> tuple[int, ...]:
    if isinstance(space, NetSpace):
        return tuple(space.input_shape)
    return (int(space.input_dim),)  # type: ignore[attr-defined]


def space_bounds(space: SearchSpace) -> dict[str, Any]:
    """What the space allows beyond the schema (grids, counts, parameter budget)."""
    if isinstance(space, NetSpace):
        s = space
        return {"conv_layers": [s.min_conv, s.max_conv], "dense_layers": [s.min_dense, s.max_dense],
                "conv_channels": list(s.channels), "conv_kernels": list(s.kernels), "dense_units": list(s.units),
                "activations": list(s.activations), "dropout_rates": list(s.dropouts),
                "max_dropout_layers": s.max_dropout_layers, "max_skips": s.max_skips, "inits": list(s.inits),
                "regularization": list(s.regularizations), "learning_rules": list(s.rules),
                "max_params": s.max_params}  # fmt: skip
    assert isinstance(space, MLPSpace)
    return {"hidden_layers": [space.min_layers, space.max_layers], "units": [space.widths[0], space.widths[-1]],
            "activations": list(space.activations), "dropout": list(space.dropouts),
            "learning_rules": list(space.rules), "max_params": space.max_params}  # fmt: skip


def describe_change(old: Genome, new: Genome) -> str:
    """A one-line "before -> after" for the trial history."""
    return "unchanged" if old == new else f"{old.summary()} -> {new.summary()}"


class RuleDesigner:
    """Turns instruction codes into genome edits for one search space."""

    tries = 20  # random operators (which layer, which value) may pick a no-op; try again

    def __init__(self, space: SearchSpace):
        self.space = space
        self.family = family_of(space)

    # --- one instruction ---
    def _mlp_op(self, code: str) -> Callable[[MLPGenome, np.random.Generator], MLPGenome | None]:
        s = self.space
        assert isinstance(s, MLPSpace)
        ops: dict[str, Callable[[MLPGenome, np.random.Generator], MLPGenome | None]] = {
            "ADL": s.add_layer, "RDL": s.remove_layer,
            "AMN": lambda g, rng: s.change_width(g, rng, step=+1),
            "RN": lambda g, rng: s.change_width(g, rng, step=-1),
            "AD": lambda g, rng: self._mlp_dropout(g, up=True), "AR": lambda g, rng: self._mlp_dropout(g, up=True),
            "RD": lambda g, rng: self._mlp_dropout(g, up=False), "RR": lambda g, rng: self._mlp_dropout(g, up=False),
        }  # fmt: skip
        return ops[code]

    def _mlp_dropout(self, g: MLPGenome, up: bool) -> MLPGenome | None:
        """The dropout rate one step along the space's grid (None at the end or with no layers)."""
        s = self.space
        assert isinstance(s, MLPSpace)
        grid = sorted(d for d in s.dropouts if (d > g.dropout if up else d < g.dropout))
        if not g.layers or not grid:
            return None
        return g.model_copy(update={"dropout": grid[0] if up else grid[-1]})

    def apply_one(self, genome: Genome, code: str, rng: np.random.Generator) -> Genome | None:
        """A valid genome made by one instruction, or None when it cannot apply here."""
        if not applicable(self.family, code):
            return None
        if self.family == "net":
            assert isinstance(self.space, NetSpace) and isinstance(genome, NetGenome)
            return self.space.apply_instruction(genome, code, rng)
        op = self._mlp_op(code)
        for _ in range(self.tries):
            child = op(genome, rng)  # type: ignore[arg-type]
            if child is None:
                return None
            if child != genome and self.space.is_valid(child):
                return child
        return None

    # --- a whole instruction set ---
    def design(self, genome: Genome, codes: list[str], rng: np.random.Generator) -> Design:
        """Apply ``codes`` in order; each one that cannot apply is skipped with its reason."""
        out = Design(genome)
        for code in codes:
            if not applicable(self.family, code):
                out.skipped.append({"code": code, "reason": f"not applicable to the {self.family} family"})
                continue
            child = self.apply_one(out.genome, code, rng)
            if child is None:
                out.skipped.append({"code": code, "reason": "no edit of this kind stays inside the search space"})
                continue
            out.genome = child
            out.applied.append(code)
        return out

    def explore(self, genome: Genome, rng: np.random.Generator) -> tuple[Genome, str] | None:
        """A random mutation, for an iteration where no instruction could change anything."""
        try:
            return self.space.mutate(genome, rng)
        except InvalidGenome:
            return None

    # --- the first genome ---
    def initial(self, rng: np.random.Generator, kind: str = "small") -> Genome:
        """``small``: a fixed simple net in the paper's style (grown by the rules); ``sample``: random."""
        if kind == "small":
            genome = self._small()
            if genome is not None and self.space.is_valid(genome):
                return genome
        return self.space.sample(rng)

    def _small(self) -> Genome | None:
        s = self.space
        try:
            if isinstance(s, MLPSpace):
                width = min(s.widths, key=lambda w: abs(w - 32))
                depth = min(max(1, s.min_layers), s.max_layers)
                layer = Dense(units=width, activation=s.activations[0], rule=s.rules[0])
                return MLPGenome(layers=(layer,) * depth, dropout=min(s.dropouts), output_rule=s.rules[0])
            assert isinstance(s, NetSpace)
            act, rule = s.activations[0], s.rules[0]
            layers: list[Any] = []
            n_conv = min(max(2, s.min_conv), s.max_conv) if s.image else 0
            kernel = 3 if 3 in s.kernels else s.kernels[0]
            for i in range(n_conv):
                channels = s.channels[min(i + 1, len(s.channels) - 1)]
                layers.append(ConvLayer(channels=channels, kernel=kernel, activation=act, batch_norm=True, rule=rule))
                if i == 0 and n_conv > 1 and min(s.input_shape[1:]) >= 4:
                    layers.append(PoolLayer(op="max"))
            if n_conv:
                layers.append(GlobalPoolLayer())
            units = s.units[min(1, len(s.units) - 1)]
            layers += [DenseLayer(units=units, activation=act, rule=rule)
                       for _ in range(min(max(1, s.min_dense), s.max_dense))]  # fmt: skip
            return NetGenome(layers=tuple(layers), init="default" if "default" in s.inits else s.inits[0],
                             regularization=s.regularizations[0], output_rule=rule)  # fmt: skip
        except (ValueError, InvalidGenome):  # a space whose grids exclude the fixed choices
            return None
