"""Genomes as fixed-length numeric vectors, for a learned performance predictor (issue #20).

One mechanism, registered per family: :func:`encoder` declares how a family's genomes
become a vector of a length fixed by the space (not by the genome), and :func:`encode`
stacks them into a matrix a regressor trains on. Families differ only in what they say:

- ``nb201``: the op of each of the 6 edges one-hot (adjacency encoding) and the path
  encoding of BANANAS (White et al. 2021): one feature per input-to-output path of
  non-``none`` ops, 4 + 16 + 16 + 64 of them.
- ``cells``: per cell slot (up to ``max_cells``) whether it exists, its published code
  one-hot, where its second input reads from and whether it was edited inside; plus the
  op counts over all cells and over each slot (the cells' adjacency, summarised).
- ``mlp`` and ``net``: per layer slot (padded to the space's most layers) its kind, width
  (log2), activation and rule, plus whole-genome features (depth, skips, dropout, weight
  decay, init, log parameter count).

Nothing here imports torch: the ``cells`` parameter count builds on torch's meta device
only when a predictor asks for it.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import NasforgeError
from .base import Genome, SearchSpace
from .cell_plan import published_cells
from .cells import CellsGenome, CellsSpace
from .mlp import MLPGenome, MLPSpace
from .nb201 import EDGES, NB201Genome
from .net import REGULARIZATIONS, NetGenome
from .net_layers import NET_ACTIVATIONS, ConvLayer, DenseLayer, DropoutLayer, PoolLayer
from .vocabulary import ACTIVATIONS, CELL_OPS, INITS, LEARNING_RULES, NB201_OPS

Encode = Callable[[Any, Any], list[float]]


@dataclass(frozen=True)
class Encoder:
    """How one family's genomes become vectors; ``params`` (optional) counts a genome's
    parameters without training, for predictors whose objectives include the size."""

    family: str
    encode: Encode
    params: Callable[[Any, Any], int] | None = None


ENCODERS: dict[str, Encoder] = {}


def encoder(family: str, params: Callable[[Any, Any], int] | None = None) -> Callable[[Encode], Encode]:
    """Decorator: register ``fn(space, genome) -> list of floats`` as ``family``'s encoding."""
    def register(fn: Encode) -> Encode:
        ENCODERS[family] = Encoder(family, fn, params)
        return fn
    return register


def encoder_for(space: SearchSpace) -> Encoder:
    """The space's family's encoder; a one-line error for a family without one."""
    found = ENCODERS.get(space.name)
    if found is None:
        raise NasforgeError(f"the {space.name} space has no encoding for a predictor; encoded families: "
                            f"{', '.join(sorted(ENCODERS))}")
    return found


def encode(space: SearchSpace, genomes: Sequence[Genome]) -> np.ndarray:
    """One row per genome, every row as long as the space says."""
    fn = encoder_for(space).encode
    return np.array([fn(space, g) for g in genomes], dtype=float).reshape(len(genomes), -1)


def one_hot(value: Any, choices: Sequence[Any]) -> list[float]:
    """1 at ``value``'s place among ``choices`` (all zeros if it is not one of them)."""
    return [float(value == c) for c in choices]


def log2(x: float) -> float:
    return math.log2(x) if x > 0 else 0.0


# --- nb201: adjacency one-hot + path encoding ---
NB201_PATHS: tuple[tuple[int, ...], ...] = ((3,), (0, 4), (1, 5), (0, 2, 5))
"""Every input-to-output path of the cell as edge indices into ``EDGES``: 0->3, 0->1->3, 0->2->3, 0->1->2->3."""
assert all(EDGES[p[0]][1] == 0 and EDGES[p[-1]][0] == 3 for p in NB201_PATHS)
PATH_OPS = tuple(op for op in NB201_OPS if op != "none")


def _nb201_paths(g: NB201Genome) -> list[float]:
    features = []
    for path in NB201_PATHS:
        ops = [g.ops[e] for e in path]
        live = "none" not in ops
        index = sum(PATH_OPS.index(op) * len(PATH_OPS) ** i for i, op in enumerate(ops)) if live else -1
        features += one_hot(index, range(len(PATH_OPS) ** len(path)))
    return features


def _nb201_params(space: Any, g: NB201Genome) -> int:
    return g.n_params()


@encoder("nb201", params=_nb201_params)
def encode_nb201(space: Any, g: NB201Genome) -> list[float]:
    return [x for op in g.ops for x in one_hot(op, NB201_OPS)] + _nb201_paths(g)


# --- cells: per-slot codes and inputs, op counts ---
def _op_counts(nodes: Sequence[tuple[int, int, int, int]]) -> list[float]:
    counts = dict.fromkeys(CELL_OPS, 0.0)
    for _, _, oi, oj in nodes:
        counts[oi] += 1
        counts[oj] += 1
    return list(counts.values())


def _cells_params(space: CellsSpace, g: CellsGenome) -> int:
    return g.n_params(space.input_shape, space.n_classes)


@encoder("cells", params=_cells_params)
def encode_cells(space: CellsSpace, g: CellsGenome) -> list[float]:
    codes = sorted(published_cells())
    features = [float(g.depth), float(g.reductions)]
    for slot in range(space.max_cells):
        if slot < g.depth:
            cell = g.cells[slot]
            back = slot - cell.inputs[1]  # how far back the second input reads (0: the previous cell)
            features += [1.0, *one_hot(cell.code, codes), float(back), float(cell.modified), *_op_counts(cell.nodes)]
        else:
            features += [0.0] * (1 + len(codes) + 2 + len(CELL_OPS))
    return features + _op_counts([n for c in g.cells for n in c.nodes])


# --- mlp and net: padded layer slots + whole-genome features ---
def _slots(rows: list[list[float]], slots: int, width: int) -> list[float]:
    rows = rows[:slots] + [[0.0] * width] * max(0, slots - len(rows))
    return [x for row in rows for x in row]


def _mlp_params(space: MLPSpace, g: MLPGenome) -> int:
    return g.n_params(space.input_dim, space.n_classes)


@encoder("mlp", params=_mlp_params)
def encode_mlp(space: MLPSpace, g: MLPGenome) -> list[float]:
    rows = [[1.0, log2(layer.units), *one_hot(layer.activation, ACTIVATIONS), *one_hot(layer.rule, LEARNING_RULES)]
            for layer in g.layers]
    width = 2 + len(ACTIVATIONS) + len(LEARNING_RULES)
    return [float(len(g.layers)), g.dropout, log2(_mlp_params(space, g)), *one_hot(g.output_rule, LEARNING_RULES),
            *_slots(rows, space.max_layers, width)]


NET_KINDS = ("conv", "pool", "dropout", "global_pool", "dense")
NET_SLOTS = 16  # layers encoded one by one; a longer net's tail shows only in the counts


def _net_layer(layer: Any) -> list[float]:
    width = getattr(layer, "channels", None) or getattr(layer, "units", None) or 0
    conv = isinstance(layer, ConvLayer)
    return [*one_hot(layer.kind, NET_KINDS), log2(width), float(layer.kernel if conv else 0),
            float(conv and layer.stride == 2), float(conv and layer.batch_norm),
            float(layer.rate if isinstance(layer, DropoutLayer) else 0.0),
            float(isinstance(layer, PoolLayer) and layer.op == "avg"),
            *one_hot(getattr(layer, "activation", None), NET_ACTIVATIONS),
            *one_hot(getattr(layer, "rule", None), LEARNING_RULES)]


def _net_params(space: Any, g: NetGenome) -> int:
    return g.n_params(space.input_shape, space.n_classes)


@encoder("net", params=_net_params)
def encode_net(space: Any, g: NetGenome) -> list[float]:
    width = len(NET_KINDS) + 6 + len(NET_ACTIVATIONS) + len(LEARNING_RULES)
    counts = [float(g.count(kind)) for kind in NET_KINDS]
    dense = [log2(layer.units) for layer in g.layers if isinstance(layer, DenseLayer)]
    return [float(len(g.layers)), *counts, float(len(g.skips)), sum(s.dst - s.src for s in g.skips) / 8.0,
            float(REGULARIZATIONS.index(g.regularization)), *one_hot(g.init, INITS),
            *one_hot(g.output_rule, LEARNING_RULES), max(dense, default=0.0), log2(_net_params(space, g)),
            *_slots([_net_layer(layer) for layer in g.layers], NET_SLOTS, width)]


__all__ = ["ENCODERS", "Encoder", "encode", "encoder", "encoder_for"]
