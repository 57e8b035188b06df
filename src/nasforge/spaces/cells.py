"""The ``cells`` genome family: TS-ENAS's chain of published cells (SPEC §2, seed 004).

A network is a stem, N cells and a classifier. Cell j (1-based) has two inputs: a1 = j-1,
the previous cell (0 is the stem), and a2, any output in [0, j-1]; its code a3 picks one of
the 8 published cells of Table II (1-4 normal, 5-8 reduction: AmoebaNet-A, NASNet-A,
DARTS (V2), CARS-H; see cell_plan). That triple is the paper's level-1 encoding (``level1()``).

Level 2 is each cell's inside: intermediate nodes k = 2, 3, ... as 4-tuples
``(x_i, x_j, o_i, o_j)`` (two earlier nodes, two op codes of vocabulary.CELL_OPS; nodes 0
and 1 are the cell inputs: 0 reads a2, 1 reads the previous cell, as in the DARTS genotype
format). The genome always stores level 2, so a fine-stage edit is just another genome.

Cell output: each published cell keeps its own rule, read off its published concat list:
AmoebaNet and NASNet concatenate the nodes no other node reads (the paper's rule, "all
intermediate nodes with a single output"), DARTS and CARS-H every intermediate node. An
edited cell recomputes its output with its rule, so no node is ever left dangling.

Space rules: min_cells <= N <= max_cells and fewer reductions than half the cells (2k < N;
the text of Algorithm 3 would allow k = ceil(N/2), its prose says fewer reductions than
normal cells). A reduction on a 1x1 map works (every op maps a side n to ceil(n/2)).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import InvalidGenome, NasforgeError
from ..flags import flag
from .base import SPACES, Genome, ParamBudget, SearchSpace, SpaceSettings
from .capabilities import Operator
from .cell_plan import (
    NORMAL_CODES,
    REDUCTION_CODES,
    CellPlan,
    Node,
    is_reduction,
    output_nodes,
    published_cells,
)  # fmt: skip
from .cells_diagram import cells_diagram
from .diagram import Stack
from .vocabulary import CELL_OPS as OPS

if TYPE_CHECKING:
    import torch

LETTERS = {"AmoebaNet": "A", "NASNet": "N", "DARTS_V2": "D", "CARS_H": "C"}
# What edge mutation may choose: every real op. ``none`` would only delete an edge, which
# node pruning already does more cleanly.
MUTABLE_OPS: tuple[int, ...] = tuple(code for code in OPS if code != 0)


class CellGene(BaseModel):
    """One cell: its code (type, which fixes normal/reduction and output rule), inputs (a1, a2)
    and its level-2 nodes."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    code: int = Field(ge=1, le=8)
    inputs: tuple[int, int]
    nodes: tuple[tuple[int, int, int, int], ...] = Field(min_length=1, max_length=32)

    @model_validator(mode="after")
    def _nodes_valid(self) -> CellGene:
        for k, (xi, xj, oi, oj) in enumerate(self.nodes, start=2):
            if not (0 <= xi < k and 0 <= xj < k):
                raise ValueError(f"node {k} reads ({xi}, {xj}); a node reads nodes 0..{k - 1}")
            if oi not in OPS or oj not in OPS:
                raise ValueError(f"node {k} has op codes ({oi}, {oj}); known codes are 0..{max(OPS)}")
        return self

    @property
    def reduction(self) -> bool:
        return is_reduction(self.code)

    def concat(self) -> tuple[int, ...]:
        return output_nodes(self.nodes, published_cells()[self.code].rule)

    @property
    def modified(self) -> bool:
        return self.nodes != published_cells()[self.code].nodes


def published_gene(code: int, inputs: tuple[int, int]) -> CellGene:
    return CellGene(code=code, inputs=inputs, nodes=published_cells()[code].nodes)


class CellsGenome(Genome):
    family = "cells"
    cells: tuple[CellGene, ...] = Field(min_length=1, max_length=64)
    channels: int = Field(default=8, ge=1, le=1024, description="inner width C of the first cells")
    stem_size: int = Field(default=16, ge=1, le=4096, description="the stem strides larger inputs down to this side")

    @model_validator(mode="after")
    def _chain(self) -> CellsGenome:
        for j, cell in enumerate(self.cells, start=1):
            a1, a2 = cell.inputs
            if a1 != j - 1 or not 0 <= a2 <= j - 1:
                raise ValueError(f"cell {j} has inputs ({a1}, {a2}); it must read ({j - 1}, 0..{j - 1})")
        return self

    @property
    def depth(self) -> int:
        return len(self.cells)

    @property
    def reductions(self) -> int:
        return sum(c.reduction for c in self.cells)

    def level1(self) -> list[tuple[int, int, int]]:
        """The paper's first-layer code: (a1, a2, a3) per cell."""
        return [(c.inputs[0], c.inputs[1], c.code) for c in self.cells]

    def level2(self) -> list[tuple[Node, ...]]:
        """The paper's second-layer code: every cell's (x_i, x_j, o_i, o_j) nodes."""
        return [c.nodes for c in self.cells]

    @classmethod
    def from_codes(cls, level1: Sequence[Sequence[int]], level2: Sequence[Sequence[Sequence[int]]] | None = None,
                   **options: Any) -> CellsGenome:
        """Inverse of level1()/level2(); without level 2 the cells are the published ones."""
        cells = []
        for i, (a1, a2, code) in enumerate(level1):
            nodes = published_cells()[code].nodes if level2 is None else tuple(tuple(n) for n in level2[i])
            cells.append(CellGene(code=code, inputs=(a1, a2), nodes=nodes))
        return cls(cells=tuple(cells), **options)

    def plans(self) -> list[CellPlan]:
        return [CellPlan(c.code, c.inputs[0], c.inputs[1], c.nodes, c.concat(), c.reduction) for c in self.cells]

    def build(self, input_shape: tuple[int, ...], n_classes: int) -> torch.nn.Module:
        if len(input_shape) != 3:
            raise ValueError(f"cells networks take images (channels, height, width), got input shape {input_shape}")
        from ..nets.cell_model import CellsNetwork

        return CellsNetwork(self.plans(), tuple(input_shape), n_classes, self.channels, self.stem_size)

    def n_params(self, input_shape: tuple[int, ...], n_classes: int) -> int:
        """Parameter count, summed from cells counted once each (nets.cell_model.count_params)."""
        from ..nets.cell_model import count_params

        return count_params(self.plans(), tuple(input_shape), n_classes, self.channels, self.stem_size)

    def diagram(self) -> Stack:
        return cells_diagram(self)

    def summary(self) -> str:
        """E.g. ``An<0 Nr<0 Dn*<1 C8``: type letter, n/r, * if edited inside, <a2."""
        parts = []
        for c in self.cells:
            name = published_cells()[c.code].name
            parts.append(f"{LETTERS[name]}{'r' if c.reduction else 'n'}{'*' if c.modified else ''}<{c.inputs[1]}")
        return " ".join(parts) + f" C{self.channels}"


def _pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def _points(rng: np.random.Generator, candidates: Sequence[int]) -> list[int]:
    """Multi-point mutation: each candidate with probability 1/len, at least one."""
    chosen = [i for i in candidates if rng.random() < 1.0 / len(candidates)]
    return chosen or [_pick(rng, candidates)]


def _with_cells(g: CellsGenome, cells: Sequence[CellGene]) -> CellsGenome:
    """A validated copy (model_copy would skip the validators above)."""
    return CellsGenome(cells=tuple(cells), channels=g.channels, stem_size=g.stem_size)


def _replace(g: CellsGenome, index: int, **changes: Any) -> CellsGenome:
    cells = list(g.cells)
    cells[index] = CellGene(**{**cells[index].model_dump(), **changes})
    return _with_cells(g, cells)


class CellsSettings(SpaceSettings, ParamBudget):
    family: Literal["cells"] = "cells"
    min_cells: int = Field(default=3, ge=1, le=64, json_schema_extra=flag("--min-cells"), description="fewest cells")
    max_cells: int = Field(default=5, ge=1, le=64, json_schema_extra=flag("--max-cells"), description="most cells")
    channels: int = Field(default=8, ge=1, le=1024, json_schema_extra=flag("--channels"),
                          description="channels of the first cell")


@SPACES.register
class CellsSpace(SearchSpace):
    """Chains of min_cells..max_cells published cells for one image shape (see module doc)."""

    name = "cells"
    genome_type = CellsGenome
    Settings = CellsSettings

    @classmethod
    def from_settings(cls, s: CellsSettings, task: Any) -> CellsSpace:
        assert task is not None, "the cells space is sized by the task"
        return cls(task.input_shape, task.n_outputs, min_cells=s.min_cells, max_cells=s.max_cells,
                   channels=s.channels, max_params=s.max_params)

    def weight_store(self, task: Any, train: Any, path: Any, seed: int, **options: Any) -> Any:
        """TS-ENAS's cell-based weight inheritance (``nasforge.train.inheritance``)."""
        from ..train.inheritance import CellWeightStore

        return CellWeightStore(task, self, train, path, seed=seed, **options)

    def __init__(self, input_shape: tuple[int, ...], n_classes: int, *, min_cells: int = 3, max_cells: int = 5,
                 channels: int = 8, stem_size: int = 16, max_params: int | None = None):
        if len(input_shape) != 3:
            raise NasforgeError(f"the cells space needs images (channels, height, width); got input shape {tuple(input_shape)}")
        if not 1 <= min_cells <= max_cells:
            raise NasforgeError(f"need 1 <= min_cells <= max_cells, got {min_cells}, {max_cells}")
        self.input_shape, self.n_classes = tuple(int(n) for n in input_shape), n_classes
        self.min_cells, self.max_cells = min_cells, max_cells
        self.channels, self.stem_size, self.max_params = channels, stem_size, max_params

    def genome(self, cells: Sequence[CellGene]) -> CellsGenome:
        return CellsGenome(cells=tuple(cells), channels=self.channels, stem_size=self.stem_size)

    def random_genome(self, rng: np.random.Generator) -> CellsGenome:
        """Algorithm 3: N uniform in [N_min, N_max]; cell j reads j-1 and a uniform earlier
        output; its code is uniform over all 8 while another reduction keeps 2k < N,
        otherwise over the normal cells."""
        n = int(rng.integers(self.min_cells, self.max_cells + 1))
        cells, k = [], 0
        for j in range(1, n + 1):
            a2 = int(rng.integers(0, j))
            code = int(rng.integers(1, 9)) if 2 * (k + 1) < n else int(rng.integers(1, 5))
            k += is_reduction(code)
            cells.append(published_gene(code, (j - 1, a2)))
        return self.genome(cells)

    def check(self, genome: Genome) -> None:
        if not isinstance(genome, CellsGenome):
            raise InvalidGenome(f"expected a cells genome, got {genome.family!r}")
        n, k = genome.depth, genome.reductions
        if not self.min_cells <= n <= self.max_cells:
            raise InvalidGenome(f"{n} cells; this space has {self.min_cells}..{self.max_cells}")
        if 2 * k >= n:
            raise InvalidGenome(f"{k} reduction cells in {n}: there must be fewer reductions than half the cells")
        if (genome.channels, genome.stem_size) != (self.channels, self.stem_size):
            raise InvalidGenome(f"channels/stem_size {genome.channels}/{genome.stem_size}; this space uses "
                                f"{self.channels}/{self.stem_size}")
        if self.max_params is not None:
            params = genome.n_params(self.input_shape, self.n_classes)
            if params > self.max_params:
                raise InvalidGenome(f"{params} parameters, above the budget of {self.max_params}")

    # --- rough stage: level 1 ---
    def mutate_cell(self, g: CellsGenome, rng: np.random.Generator) -> CellsGenome:
        """Cell mutation: at one or more points, another published cell of the same kind."""
        for i in _points(rng, range(g.depth)):
            cell = g.cells[i]
            kind = REDUCTION_CODES if cell.reduction else NORMAL_CODES
            code = _pick(rng, [c for c in kind if c != cell.code])
            g = _replace(g, i, code=code, nodes=published_cells()[code].nodes)
        return g

    def mutate_connection(self, g: CellsGenome, rng: np.random.Generator) -> CellsGenome | None:
        """Connection mutation: at one or more cells, another second input a2 in [0, j-1]."""
        eligible = [i for i in range(g.depth) if i >= 1]  # cell j = i+1 has j >= 2 choices
        if not eligible:
            return None
        for i in _points(rng, eligible):
            a1, a2 = g.cells[i].inputs
            g = _replace(g, i, inputs=(a1, _pick(rng, [x for x in range(i + 1) if x != a2])))
        return g

    def crossover(self, a: CellsGenome, b: CellsGenome, rng: np.random.Generator) -> tuple[CellsGenome, CellsGenome]:
        """Multi-point crossover: the k-th normal cell of one parent may swap with the k-th
        normal cell of the other, reductions likewise, as far as the parent with fewer of that
        kind goes (so along the shorter parent). Each pair swaps with probability 1/2 (at
        least one differing pair swaps); a swap exchanges the cell's code and inside and keeps
        each position's connections, so both children keep their kinds, depth and validity."""
        ca, cb = list(a.cells), list(b.cells)
        pairs = []
        for reduction in (False, True):
            ia = [i for i, c in enumerate(ca) if c.reduction == reduction]
            ib = [i for i, c in enumerate(cb) if c.reduction == reduction]
            pairs += [(x, y) for x, y in zip(ia, ib) if (ca[x].code, ca[x].nodes) != (cb[y].code, cb[y].nodes)]
        swap = [p for p in pairs if rng.random() < 0.5]
        if pairs and not swap:
            swap = [_pick(rng, pairs)]
        for x, y in swap:
            cx, cy = ca[x], cb[y]
            ca[x] = CellGene(code=cy.code, inputs=cx.inputs, nodes=cy.nodes)
            cb[y] = CellGene(code=cx.code, inputs=cy.inputs, nodes=cx.nodes)
        return _with_cells(a, ca), _with_cells(b, cb)

    # --- fine stage: level 2 ---
    def mutate_edge(self, g: CellsGenome, rng: np.random.Generator, cell: int | None = None) -> CellsGenome:
        """Edge mutation: one edge of one cell gets another op."""
        i = int(rng.integers(g.depth)) if cell is None else cell
        nodes = [list(n) for n in g.cells[i].nodes]
        k, side = int(rng.integers(len(nodes))), 2 + int(rng.integers(2))
        nodes[k][side] = _pick(rng, [op for op in MUTABLE_OPS if op != nodes[k][side]])
        return _replace(g, i, nodes=tuple(tuple(n) for n in nodes))

    def mutate_node_input(self, g: CellsGenome, rng: np.random.Generator, cell: int | None = None) -> CellsGenome:
        """Node-input mutation: one input of one node reads another earlier node."""
        i = int(rng.integers(g.depth)) if cell is None else cell
        nodes = [list(n) for n in g.cells[i].nodes]
        k, side = int(rng.integers(len(nodes))), int(rng.integers(2))
        nodes[k][side] = _pick(rng, [x for x in range(k + 2) if x != nodes[k][side]])
        return _replace(g, i, nodes=tuple(tuple(n) for n in nodes))

    def fine_mutation(self, g: CellsGenome, rng: np.random.Generator) -> CellsGenome:
        """The fine stage's p1: every cell gets an edge or a node-input mutation, with equal
        probability (Section IV-C applies both kinds to an individual at the same time)."""
        for i in range(g.depth):
            g = (self.mutate_edge if rng.random() < 0.5 else self.mutate_node_input)(g, rng, i)
        return g

    def prune_node(self, g: CellsGenome, rng: np.random.Generator) -> CellsGenome | None:
        """Node pruning: delete one intermediate node of one cell (cells keep at least one).
        Nodes that read it read its first input instead (**ours**: the paper zeroes its code
        and says nothing of its readers); later nodes are renumbered."""
        eligible = [i for i, c in enumerate(g.cells) if len(c.nodes) > 1]
        if not eligible:
            return None
        i = _pick(rng, eligible)
        nodes = g.cells[i].nodes
        gone = 2 + int(rng.integers(len(nodes)))
        heir = nodes[gone - 2][0]

        def renumber(x: int) -> int:
            return heir if x == gone else x - (x > gone)

        kept = tuple((renumber(xi), renumber(xj), oi, oj) for k, (xi, xj, oi, oj) in enumerate(nodes, start=2) if k != gone)
        return _replace(g, i, nodes=kept)

    def mutation_operators(self) -> dict[str, Operator]:
        return {"cell": self.mutate_cell, "connection": self.mutate_connection, "edge": self.mutate_edge,
                "node_input": self.mutate_node_input, "prune": self.prune_node}
