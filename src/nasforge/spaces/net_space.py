"""The search space of the ``net`` family, whose mutation operators are LEMONADE's instructions.

This module holds the space's bounds, sampling and checks; the instructions themselves
(one method each, :data:`~nasforge.spaces.net.INSTRUCTION_OPERATORS` maps their codes to
the method names) and what the expert system needs to drive them are
:class:`~nasforge.spaces.net_instructions.NetInstructions`, which NetSpace inherits.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from ..errors import InvalidGenome
from .base import SPACES, Genome, ParamBudget, RuleChoice, SearchSpace, SpaceSettings
from .net import INSTRUCTION_OPERATORS, REGULARIZATIONS, NetGenome
from .net_instructions import NetInstructions
from .net_layers import (
    NET_ACTIVATIONS,
    WIDTHS,
    ConvLayer,
    DenseLayer,
    DropoutLayer,
    GlobalPoolLayer,
    Layer,
    PoolLayer,
    input_image_shape,
)  # fmt: skip
from .vocabulary import INITS, LEARNING_RULES, POOL_OPS


class NetSettings(SpaceSettings, ParamBudget, RuleChoice):
    family: Literal["net"] = "net"


@SPACES.register
class NetSpace(NetInstructions, SearchSpace):
    """Nets for one input shape; every bound is checked by :meth:`check`."""

    name = "net"
    genome_type = NetGenome
    Settings = NetSettings

    @classmethod
    def from_settings(cls, s: NetSettings, task: Any) -> NetSpace:
        assert task is not None, "the net space is sized by the task"
        return cls(task.input_shape, task.n_outputs, rules=tuple(s.learning_rules), max_params=s.max_params)

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
    def mutation_operators(self) -> dict[str, Callable[..., NetGenome | None]]:
        ops = {name: getattr(self, name) for name in INSTRUCTION_OPERATORS.values()}
        if len(self.rules) > 1:
            ops["change_rule"] = self.change_rule
        return ops
