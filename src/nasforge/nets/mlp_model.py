"""Torch modules of the ``mlp`` family, and the two pieces the ``net`` family builds with too.

Kept apart from :mod:`nasforge.spaces.mlp` so that genomes and search spaces import without
torch; :meth:`~nasforge.spaces.mlp.MLPGenome.build` imports this module when it is called.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .mlp import MLPGenome

ACTIVATION_MODULES: dict[str, type[torch.nn.Module]] = {
    "relu": torch.nn.ReLU,
    "tanh": torch.nn.Tanh,
    "sigmoid": torch.nn.Sigmoid,
    "gelu": torch.nn.GELU,
    "elu": torch.nn.ELU,
    "leaky_relu": torch.nn.LeakyReLU,
    "silu": torch.nn.SiLU,
}
"""The module of every name in :data:`~nasforge.spaces.vocabulary.ACTIVATIONS`."""


def linear_layer(n_in: int, n_out: int, rule: str, bias: bool = True) -> torch.nn.Linear:
    """A Linear layer trained with ``rule`` (plain nn.Linear for backprop)."""
    if rule == "backprop":
        return torch.nn.Linear(n_in, n_out, bias=bias)
    from ..learning_rules import RuleLinear

    return RuleLinear(n_in, n_out, bias=bias, rule=rule)


def build_mlp(genome: MLPGenome, input_shape: tuple[int, ...], n_classes: int) -> torch.nn.Sequential:
    """Flatten, then per hidden layer Linear, activation and (if the genome has one) dropout."""
    modules: list[torch.nn.Module] = [torch.nn.Flatten()]
    width = math.prod(input_shape)
    for layer in genome.layers:
        modules += [linear_layer(width, layer.units, layer.rule), ACTIVATION_MODULES[layer.activation]()]
        if genome.dropout > 0:
            modules.append(torch.nn.Dropout(genome.dropout))
        width = layer.units
    modules.append(linear_layer(width, n_classes, genome.output_rule))
    return torch.nn.Sequential(*modules)
