"""The ``mlp`` genome family: fully connected networks for tabular data.

A genome is a list of hidden layers (units, activation, learning rule) plus one dropout
rate after every hidden layer and the learning rule of the output layer.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from ..errors import InvalidGenome
from ..flags import flag
from .base import SPACES, Genome, ParamBudget, RuleChoice, SearchSpace, SpaceSettings
from .capabilities import Operator, valid_child
from .diagram import Stack
from .mlp_diagram import mlp_diagram
from .vocabulary import ACTIVATIONS, Activation, Rule

if TYPE_CHECKING:
    import torch


class Dense(Genome):
    units: int = Field(ge=1, le=65536)
    activation: Activation = "relu"
    rule: Rule = "backprop"


def _units(g: MLPGenome) -> float:
    return sum(layer.units for layer in g.layers) / len(g.layers) if g.layers else 0.0


# The table of nasforge.strategies.expert.compliance, mlp column: hidden layers stand for
# dense layers and the dropout rate, the only regulariser, for dropout and regularisation.
INSTRUCTION_CHECKS: dict[str, Callable[[MLPGenome, MLPGenome], bool]] = {
    "ADL": lambda a, b: len(b.layers) > len(a.layers),
    "RDL": lambda a, b: len(b.layers) < len(a.layers),
    "AMN": lambda a, b: _units(b) > _units(a),
    "RN": lambda a, b: _units(b) < _units(a),
    "AD": lambda a, b: b.dropout > a.dropout,
    "AR": lambda a, b: b.dropout > a.dropout,
    "RD": lambda a, b: b.dropout < a.dropout,
    "RR": lambda a, b: b.dropout < a.dropout,
}


class MLPGenome(Genome):
    family = "mlp"
    instruction_checks = INSTRUCTION_CHECKS
    layers: tuple[Dense, ...] = Field(default=(), max_length=64)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    output_rule: Rule = "backprop"

    def build(self, input_shape: tuple[int, ...], n_classes: int) -> torch.nn.Module:
        from ..nets.mlp_model import build_mlp

        return build_mlp(self, input_shape, n_classes)

    def n_params(self, input_dim: int, n_classes: int) -> int:
        widths = [input_dim, *(layer.units for layer in self.layers), n_classes]
        return sum((a + 1) * b for a, b in zip(widths, widths[1:]))

    def rules(self) -> list[str]:
        return [layer.rule for layer in self.layers] + [self.output_rule]

    def diagram(self) -> Stack:
        return mlp_diagram(self)

    def summary(self) -> str:
        body = "-".join(f"{layer.units}{layer.activation[:4]}" for layer in self.layers) or "linear"
        if self.dropout:
            body += f" d{self.dropout:g}"
        rules = self.rules()
        if any(rule != "backprop" for rule in rules):
            body += " [" + ",".join(rules) + "]"
        return body


def _replace_layer(genome: MLPGenome, index: int, **changes: Any) -> MLPGenome:
    layers = list(genome.layers)
    layers[index] = layers[index].model_copy(update=changes)
    return genome.model_copy(update={"layers": tuple(layers)})


class MLPSettings(SpaceSettings, ParamBudget, RuleChoice):
    family: Literal["mlp"] = "mlp"
    min_layers: int = Field(default=1, ge=0, le=64, json_schema_extra=flag("--min-layers"), description="fewest hidden layers")
    max_layers: int = Field(default=4, ge=0, le=64, json_schema_extra=flag("--max-layers"), description="most hidden layers")
    min_units: int = Field(default=8, ge=1, le=65536, json_schema_extra=flag("--min-units"), description="narrowest layer")
    max_units: int = Field(default=256, ge=1, le=65536, json_schema_extra=flag("--max-units"), description="widest layer")
    activations: list[str] = Field(default_factory=lambda: ["relu", "tanh", "gelu", "elu", "leaky_relu", "silu"],
                                   json_schema_extra=flag("--activations"), description="activations to search, comma-separated")
    dropouts: list[float] = Field(default_factory=lambda: [0.0, 0.1, 0.2, 0.3, 0.5])

    @field_validator("dropouts")
    @classmethod
    def _dropout_range(cls, values: list[float]) -> list[float]:
        if not values or any(not 0 <= v < 1 for v in values):
            raise ValueError("dropout rates must be in [0, 1)")
        return values

    @model_validator(mode="after")
    def _ordered(self) -> MLPSettings:
        if self.min_layers > self.max_layers:
            raise ValueError(f"min_layers ({self.min_layers}) is above max_layers ({self.max_layers})")
        if self.min_units > self.max_units:
            raise ValueError(f"min_units ({self.min_units}) is above max_units ({self.max_units})")
        return self


@SPACES.register
class MLPSpace(SearchSpace):
    """MLPs with ``min_layers..max_layers`` hidden layers of widths from a geometric grid."""

    name = "mlp"
    genome_type = MLPGenome
    Settings = MLPSettings
    is_default = True

    @classmethod
    def from_settings(cls, s: MLPSettings, task: Any) -> MLPSpace:
        assert task is not None, "the mlp space is sized by the task"
        return cls(int(np.prod(task.input_shape)), task.n_outputs, min_layers=s.min_layers, max_layers=s.max_layers,
                   min_units=s.min_units, max_units=s.max_units, activations=tuple(s.activations),
                   dropouts=tuple(s.dropouts), rules=tuple(s.learning_rules), max_params=s.max_params)

    def __init__(
        self,
        input_dim: int,
        n_classes: int,
        *,
        min_layers: int = 1,
        max_layers: int = 4,
        min_units: int = 8,
        max_units: int = 256,
        activations: tuple[str, ...] = ("relu", "tanh", "gelu", "elu", "leaky_relu", "silu"),
        dropouts: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5),
        rules: tuple[str, ...] = ("backprop",),
        max_params: int | None = None,
    ):
        if not 0 <= min_layers <= max_layers:
            raise InvalidGenome(f"need 0 <= min_layers <= max_layers, got {min_layers}..{max_layers}")
        if not 1 <= min_units <= max_units:
            raise InvalidGenome(f"need 1 <= min_units <= max_units, got {min_units}..{max_units}")
        unknown = set(activations) - set(ACTIVATIONS)
        if unknown or not activations:
            raise InvalidGenome(f"unknown activations {sorted(unknown)}; choose from {sorted(ACTIVATIONS)}")
        self.input_dim, self.n_classes = input_dim, n_classes
        self.min_layers, self.max_layers = min_layers, max_layers
        self.widths = self._grid(min_units, max_units)
        self.activations, self.dropouts, self.rules = tuple(activations), tuple(dropouts), tuple(rules)
        self.max_params = max_params

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (int(self.input_dim),)

    @staticmethod
    def _grid(lo: int, hi: int) -> tuple[int, ...]:
        """Powers of two between the bounds, plus the bounds themselves."""
        grid = {lo, hi} | {2**k for k in range(31) if lo <= 2**k <= hi}
        return tuple(sorted(grid))

    def _layer(self, rng: np.random.Generator) -> Dense:
        return Dense(
            units=self.widths[int(rng.integers(len(self.widths)))],
            activation=self.activations[int(rng.integers(len(self.activations)))],
            rule=self.rules[int(rng.integers(len(self.rules)))],
        )

    def random_genome(self, rng: np.random.Generator) -> MLPGenome:
        depth = int(rng.integers(self.min_layers, self.max_layers + 1))
        return MLPGenome(
            layers=tuple(self._layer(rng) for _ in range(depth)),
            dropout=self.dropouts[int(rng.integers(len(self.dropouts)))],
            output_rule=self.rules[int(rng.integers(len(self.rules)))],
        )

    def check(self, genome: Genome) -> None:
        if not isinstance(genome, MLPGenome):
            raise InvalidGenome(f"expected an mlp genome, got {genome.family!r}")
        depth = len(genome.layers)
        if not self.min_layers <= depth <= self.max_layers:
            raise InvalidGenome(f"{depth} hidden layers, the space allows {self.min_layers}..{self.max_layers}")
        for i, layer in enumerate(genome.layers):
            if not self.widths[0] <= layer.units <= self.widths[-1]:
                raise InvalidGenome(f"layer {i} has {layer.units} units, allowed {self.widths[0]}..{self.widths[-1]}")
            if layer.activation not in self.activations:
                raise InvalidGenome(f"layer {i} activation {layer.activation!r} is not in {list(self.activations)}")
        bad_rules = set(genome.rules()) - set(self.rules)
        if bad_rules:
            raise InvalidGenome(f"learning rules {sorted(bad_rules)} are not in {list(self.rules)}")
        if self.max_params is not None:
            n = genome.n_params(self.input_dim, self.n_classes)
            if n > self.max_params:
                raise InvalidGenome(f"{n} parameters exceed the budget of {self.max_params}")

    # --- mutation operators: each returns a new genome, or None when it does not apply ---
    def add_layer(self, g: MLPGenome, rng: np.random.Generator) -> MLPGenome | None:
        if len(g.layers) >= self.max_layers:
            return None
        at = int(rng.integers(len(g.layers) + 1))
        return g.model_copy(update={"layers": g.layers[:at] + (self._layer(rng),) + g.layers[at:]})

    def remove_layer(self, g: MLPGenome, rng: np.random.Generator) -> MLPGenome | None:
        if len(g.layers) <= self.min_layers:
            return None
        at = int(rng.integers(len(g.layers)))
        return g.model_copy(update={"layers": g.layers[:at] + g.layers[at + 1 :]})

    def change_width(self, g: MLPGenome, rng: np.random.Generator, step: int = 0) -> MLPGenome | None:
        """Move one layer's width one grid step up or down (``step`` fixes the direction)."""
        if not g.layers:
            return None
        at = int(rng.integers(len(g.layers)))
        pos = int(np.searchsorted(self.widths, g.layers[at].units))
        step = step or int(rng.choice([-1, 1]))
        pos = min(max(pos + step, 0), len(self.widths) - 1)
        return _replace_layer(g, at, units=self.widths[pos])

    def change_activation(self, g: MLPGenome, rng: np.random.Generator) -> MLPGenome | None:
        if not g.layers or len(self.activations) < 2:
            return None
        at = int(rng.integers(len(g.layers)))
        others = [a for a in self.activations if a != g.layers[at].activation]
        return _replace_layer(g, at, activation=others[int(rng.integers(len(others)))])

    def change_dropout(self, g: MLPGenome, rng: np.random.Generator) -> MLPGenome | None:
        others = [d for d in self.dropouts if d != g.dropout]
        if not g.layers or not others:
            return None
        return g.model_copy(update={"dropout": others[int(rng.integers(len(others)))]})

    def change_rule(self, g: MLPGenome, rng: np.random.Generator) -> MLPGenome | None:
        """Give one learnable layer (hidden or output) another learning rule."""
        if len(self.rules) < 2:
            return None
        at = int(rng.integers(len(g.layers) + 1))
        current = g.rules()[at]
        others = [r for r in self.rules if r != current]
        rule = others[int(rng.integers(len(others)))]
        if at == len(g.layers):
            return g.model_copy(update={"output_rule": rule})
        return _replace_layer(g, at, rule=rule)

    def mutation_operators(self) -> dict[str, Any]:
        ops = {
            "add_layer": self.add_layer,
            "remove_layer": self.remove_layer,
            "change_width": self.change_width,
            "change_activation": self.change_activation,
            "change_dropout": self.change_dropout,
        }
        if len(self.rules) > 1:
            ops["change_rule"] = self.change_rule
        return ops

    # --- Instructable (nasforge.spaces.capabilities): what LEMONADE's instructions mean here ---
    def _instruction_ops(self) -> dict[str, Operator]:
        """ADL/RDL add/remove a hidden layer, AMN/RN move one width a grid step up/down, and
        AD/AR, RD/RR move the shared dropout rate (the only regulariser) a step up/down.
        No convolutions, skips or initialisers: ACL, RCL, ASC, RSC, AMK, RK, AWI do not apply."""
        return {
            "ADL": self.add_layer, "RDL": self.remove_layer,
            "AMN": lambda g, rng: self.change_width(g, rng, step=+1),
            "RN": lambda g, rng: self.change_width(g, rng, step=-1),
            "AD": lambda g, rng: self._dropout_step(g, up=True), "AR": lambda g, rng: self._dropout_step(g, up=True),
            "RD": lambda g, rng: self._dropout_step(g, up=False), "RR": lambda g, rng: self._dropout_step(g, up=False),
        }  # fmt: skip

    def _dropout_step(self, g: MLPGenome, up: bool) -> MLPGenome | None:
        """The dropout rate one step along the space's grid (None at the end or with no layers)."""
        grid = sorted(d for d in self.dropouts if (d > g.dropout if up else d < g.dropout))
        if not g.layers or not grid:
            return None
        return g.model_copy(update={"dropout": grid[0] if up else grid[-1]})

    def applicable(self, code: str) -> bool:
        return code in self._instruction_ops()

    def apply_instruction(self, genome: MLPGenome, code: str, rng: np.random.Generator) -> Genome | None:
        op = self._instruction_ops().get(code)
        return None if op is None else valid_child(self, op, genome, rng)

    def small_genome(self) -> MLPGenome:
        """Hidden layers (as few as the space allows, at least one) of the width nearest 32."""
        width = min(self.widths, key=lambda w: abs(w - 32))
        depth = min(max(1, self.min_layers), self.max_layers)
        layer = Dense(units=width, activation=self.activations[0], rule=self.rules[0])
        return MLPGenome(layers=(layer,) * depth, dropout=min(self.dropouts), output_rule=self.rules[0])

    def reply_grids(self) -> tuple[dict[str, tuple], dict[str, tuple[int, int]]]:
        return ({"units": self.widths, "activation": self.activations, "rule": self.rules,
                 "output_rule": self.rules, "dropout": self.dropouts},
                {"layers": (self.min_layers, self.max_layers)})  # fmt: skip

    def prompt_bounds(self) -> dict[str, Any]:
        return {"hidden_layers": [self.min_layers, self.max_layers], "units": [self.widths[0], self.widths[-1]],
                "activations": list(self.activations), "dropout": list(self.dropouts),
                "learning_rules": list(self.rules), "max_params": self.max_params}  # fmt: skip

    def crossover(self, a: MLPGenome, b: MLPGenome, rng: np.random.Generator, tries: int = 10) -> MLPGenome | None:
        """One-point crossover of the layer lists: a's first i layers, then b's layers from j on.

        Dropout and output rule come from ``a``. None if no cut in ``tries`` gives a valid genome
        that differs from both parents (a copy of a parent would only repeat it).
        """
        for _ in range(tries):
            i = int(rng.integers(len(a.layers) + 1))
            j = int(rng.integers(len(b.layers) + 1))
            child = a.model_copy(update={"layers": a.layers[:i] + b.layers[j:]})
            if child != a and child != b and self.is_valid(child):
                return child
        return None
