"""Every name list that more than one module needs, in one torch-free place.

Genomes validate against these names (pydantic ``Literal`` types built from the tuples),
search spaces check their grids against them, the torch builders map them to modules and
the configuration lists them for the user. Before this module the learning rules alone
were spelled out three times; one tuple now decides what every one of those accepts.
Order matters: it is the order of the JSON Schema enums an LLM designer sees and of the
grids a space draws from.
"""
from __future__ import annotations

from typing import Literal

ACTIVATIONS: tuple[str, ...] = ("relu", "tanh", "sigmoid", "gelu", "elu", "leaky_relu", "silu")
"""Activation functions by name (torch classes: :mod:`nasforge.nets.mlp_model`)."""

LEARNING_RULES: tuple[str, ...] = ("backprop", "fa", "usf", "brsf", "frsf")
"""Every learning rule a layer can use, in the order the SPEC lists them (:mod:`nasforge.learning_rules`)."""

INITS: tuple[str, ...] = ("default", "kaiming", "xavier", "orthogonal")
"""Weight initialisers of the ``net`` family ("default" keeps torch's)."""

POOL_OPS: tuple[str, ...] = ("max", "avg")
"""Kinds of pooling of the ``net`` family's pool and global-pool layers."""

CELL_OPS: dict[int, str] = {
    0: "none",
    1: "skip_connect",  # Table I "identity"
    2: "conv_1x3_3x1",
    3: "conv_7x1_1x7",  # Table I "1x7 then 7x1"; AmoebaNet's name for it
    4: "dil_conv_3x3",
    5: "avg_pool_3x3",
    6: "max_pool_3x3",
    7: "max_pool_5x5",
    8: "max_pool_7x7",
    9: "conv_1x1",
    10: "conv_3x3",
    11: "sep_conv_3x3",
    12: "sep_conv_5x5",
    13: "sep_conv_7x7",
    14: "dil_conv_5x5",
}
"""Operation codes inside TS-ENAS cells: 1-13 are Table I of the paper in its order, 14 (used
by CARS-H) and 0 (DARTS's zero op) make every published cell expressible; names follow the
DARTS genotype format (modules: :mod:`nasforge.nets.cell_ops`)."""

NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""The five NAS-Bench-201 edge operations, in the benchmark's order."""

# Literal types for pydantic fields, built from the tuples so the two cannot drift apart.
Activation = Literal[ACTIVATIONS]  # type: ignore[valid-type]
Rule = Literal[LEARNING_RULES]  # type: ignore[valid-type]
Init = Literal[INITS]  # type: ignore[valid-type]
