"""The ``nb201`` genome family: the NAS-Bench-201 cell (Dong & Yang, ICLR 2020).

A cell is a fixed 4-node DAG: node 0 is the cell input, node j (1..3) sums one operation
applied to every earlier node, and node 3 is the cell output. Only the operation on each of
the 6 edges is searched, so the space has exactly 5**6 = 15,625 cells and every one of them
has a row in the benchmark table (see nasforge.evaluators.table).

Edge order follows the benchmark's string form ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``:
(1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2). ``op~i`` inside group k is the edge from
node i into node k+1.

Mutation: SPEC §1 lists op mutation and hidden-state mutation (rewire an edge to another
input node). The topology here is fixed -- every node already reads every earlier node --
so there is nothing to rewire; the benchmark expresses "no edge" as the ``none`` op, which
op mutation already reaches. Only the ``op`` operator exists for this family.

The network (:mod:`nasforge.nets.nb201_model`) is imported by ``build`` only, so the
genome and the tabular benchmark need no torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import InvalidGenome, NasforgeError
from .base import SPACES, Genome, SearchSpace, SpaceSettings
from .diagram import CellGraph, Edge
from .vocabulary import NB201_OPS as OPS

if TYPE_CHECKING:
    from torch import nn

Op = Literal[OPS]  # type: ignore[valid-type]
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from)
N_NODES = 4
SHORT_NAMES = {"none": "none", "skip_connect": "skip", "nor_conv_1x1": "conv 1x1", "nor_conv_3x3": "conv 3x3",
               "avg_pool_3x3": "avg pool 3x3"}  # edge labels of the drawing

# Genome-independent build options. Small by default so a CPU can train the network; the
# benchmark's own networks use C=16, N=5 (see BENCH_CHANNELS, BENCH_CELLS).
DEFAULT_CHANNELS = 8
DEFAULT_CELLS_PER_STAGE = 1
BENCH_CHANNELS = 16
BENCH_CELLS = 5


class NB201Genome(Genome):
    family = "nb201"
    ops: tuple[Op, Op, Op, Op, Op, Op]

    def to_string(self) -> str:
        groups = []
        for node in range(1, N_NODES):
            entries = [f"{self.ops[k]}~{src}" for k, (dst, src) in enumerate(EDGES) if dst == node]
            groups.append("|" + "|".join(entries) + "|")
        return "+".join(groups)

    @classmethod
    def from_string(cls, text: str) -> NB201Genome:
        """Parse the benchmark's string form; any deviation raises InvalidGenome saying where."""
        if not isinstance(text, str):
            raise InvalidGenome(f"an nb201 cell string must be text, got {type(text).__name__}")
        s = text.strip()
        groups = s.split("+")
        if len(groups) != N_NODES - 1:
            raise InvalidGenome(f"nb201 cell {text!r}: expected 3 '+'-separated node groups, got {len(groups)}")
        ops: list[str] = []
        for node, group in enumerate(groups, start=1):
            if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
                raise InvalidGenome(f"nb201 cell {text!r}: node {node} group {group!r} must be wrapped in '|'")
            entries = group[1:-1].split("|")
            if len(entries) != node:
                raise InvalidGenome(f"nb201 cell {text!r}: node {node} needs {node} inputs, got {len(entries)}")
            for src, entry in enumerate(entries):
                op, sep, index = entry.partition("~")
                if not sep or index != str(src):
                    raise InvalidGenome(f"nb201 cell {text!r}: node {node} entry {entry!r} should read 'OP~{src}'")
                if op not in OPS:
                    raise InvalidGenome(f"nb201 cell {text!r}: unknown op {op!r}; choose from {', '.join(OPS)}")
                ops.append(op)
        return cls(ops=tuple(ops))

    def summary(self) -> str:
        return self.to_string()

    def diagram(self) -> CellGraph:
        """The fixed 4-node cell, each edge labelled with its op (a ``none`` edge faint)."""
        nodes = ("input", *(f"node {n}" for n in range(1, N_NODES - 1)), "output")
        edges = tuple(Edge(src, dst, SHORT_NAMES.get(op, op), op == "none", {"data-layer": k, "data-op": op})
                      for k, ((dst, src), op) in enumerate(zip(EDGES, self.ops)))
        return CellGraph(nodes, edges, label="NAS-Bench-201 cell")

    def connected(self) -> bool:
        """Whether some path of non-``none`` edges leads from the cell input to its output."""
        reach = {0}
        for (dst, src), op in zip(EDGES, self.ops):  # EDGES is in topological order
            if op != "none" and src in reach:
                reach.add(dst)
        return N_NODES - 1 in reach

    def build(self, input_shape: tuple[int, ...], n_classes: int, channels: int = DEFAULT_CHANNELS,
              cells_per_stage: int = DEFAULT_CELLS_PER_STAGE) -> nn.Module:
        if len(input_shape) != 3:
            raise ValueError(f"nb201 networks take images (channels, height, width), got input shape {input_shape}")
        if channels < 1 or cells_per_stage < 1:
            raise ValueError(f"need channels >= 1 and cells_per_stage >= 1, got {channels}, {cells_per_stage}")
        from ..nets.nb201_model import NB201Network

        return NB201Network(self.ops, int(input_shape[0]), n_classes, channels, cells_per_stage)

    def n_params(self, in_channels: int = 3, n_classes: int = 10, channels: int = BENCH_CHANNELS,
                 cells_per_stage: int = BENCH_CELLS) -> int:
        """Parameter count of ``build`` computed in closed form (no network is built).

        Conv layers have no bias; every BatchNorm has an affine weight and bias. The default
        arguments give the benchmark's own network (C=16, N=5, CIFAR-10): 1,531,546 for the
        all-3x3-conv cell, NAS-Bench-201's published 1.53 MB.
        """
        def conv_bn(c_in: int, c_out: int, k: int) -> int:
            return c_in * c_out * k * k + 2 * c_out

        cell_per_c = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
        total = conv_bn(in_channels, channels, 3)
        for stage in range(3):
            c = channels * 2**stage
            cell = sum(conv_bn(c, c, cell_per_c[op]) for op in self.ops if op in cell_per_c)
            total += cells_per_stage * cell
            if stage < 2:  # residual reduction into the next stage
                total += conv_bn(c, 2 * c, 3) + conv_bn(2 * c, 2 * c, 3) + c * 2 * c
        c_last = 4 * channels
        return total + 2 * c_last + c_last * n_classes + n_classes


class NB201Settings(SpaceSettings):
    family: Literal["nb201"] = "nb201"


@SPACES.register
class NB201Space(SearchSpace):
    """All 15,625 NAS-Bench-201 cells; ``reject_disconnected`` drops cells whose output
    cannot see the input (off by default: the benchmark includes and scores them)."""

    name = "nb201"
    genome_type = NB201Genome
    Settings = NB201Settings

    @classmethod
    def from_settings(cls, s: NB201Settings, task: Any) -> NB201Space:
        if task is not None and len(task.input_shape) != 3:
            raise NasforgeError(f"the nb201 space needs images; {task.name} has flat features (use --space mlp)")
        return cls()

    def __init__(self, *, reject_disconnected: bool = False):
        self.reject_disconnected = reject_disconnected

    def random_genome(self, rng: np.random.Generator) -> NB201Genome:
        return NB201Genome(ops=tuple(OPS[int(i)] for i in rng.integers(len(OPS), size=len(EDGES))))

    def check(self, genome: Genome) -> None:
        if not isinstance(genome, NB201Genome):
            raise InvalidGenome(f"expected an nb201 genome, got {genome.family!r}")
        if self.reject_disconnected and not genome.connected():
            raise InvalidGenome(f"cell {genome.to_string()} has no path from its input to its output")

    def mutate_op(self, genome: NB201Genome, rng: np.random.Generator) -> NB201Genome:
        """One edge, chosen uniformly, gets a different op chosen uniformly."""
        edge = int(rng.integers(len(EDGES)))
        others = [op for op in OPS if op != genome.ops[edge]]
        ops = list(genome.ops)
        ops[edge] = others[int(rng.integers(len(others)))]
        return NB201Genome(ops=tuple(ops))

    def mutation_operators(self) -> dict[str, Any]:
        return {"op": self.mutate_op}
