"""Cells of the ``cells`` family without torch: the 8 published cells and the plan of one cell.

The published cells (Table II of TS-ENAS) are read from ``published_cells.json`` in the
DARTS genotype format. A :class:`CellPlan` is what a network needs to know of one cell: the
genome (:mod:`nasforge.spaces.cells`) makes plans and the torch networks
(:mod:`nasforge.nets.cell_model`) build them, so the genome imports without torch.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import NamedTuple

from ..errors import NasforgeError
from .vocabulary import CELL_OPS

Node = tuple[int, int, int, int]  # (x_i, x_j, o_i, o_j): two input nodes, their two op codes


class CellPlan(NamedTuple):
    """One cell of a network (built from a genome's cell)."""

    code: int
    prev: int  # a1: output index of the previous cell (0 is the stem)
    other: int  # a2: output index of the other input
    nodes: tuple[Node, ...]
    concat: tuple[int, ...]
    reduction: bool


PUBLISHED_FILE = Path(__file__).with_name("published_cells.json")
CELL_CODES: dict[int, tuple[str, str]] = {  # Table II
    1: ("AmoebaNet", "normal"), 2: ("NASNet", "normal"), 3: ("DARTS_V2", "normal"), 4: ("CARS_H", "normal"),
    5: ("AmoebaNet", "reduce"), 6: ("NASNet", "reduce"), 7: ("DARTS_V2", "reduce"), 8: ("CARS_H", "reduce"),
}
NORMAL_CODES, REDUCTION_CODES = (1, 2, 3, 4), (5, 6, 7, 8)
OP_CODES: dict[str, int] = {name: code for code, name in CELL_OPS.items()}


@dataclass(frozen=True)
class PublishedCell:
    code: int
    name: str
    reduction: bool
    nodes: tuple[Node, ...]
    rule: str  # "loose": concat the nodes nobody reads; "all": concat every intermediate node


def loose_nodes(nodes: Sequence[Node]) -> tuple[int, ...]:
    read = {x for node in nodes for x in node[:2]}
    return tuple(k for k in range(2, len(nodes) + 2) if k not in read)


def output_nodes(nodes: Sequence[Node], rule: str) -> tuple[int, ...]:
    return loose_nodes(nodes) if rule == "loose" else tuple(range(2, len(nodes) + 2))


@cache
def published_cells(path: Path = PUBLISHED_FILE) -> dict[int, PublishedCell]:
    """The 8 cells of Table II from a DARTS-genotype JSON file; the output rule of each cell
    is whichever of "loose" and "all" reproduces its published concat list."""
    data = json.loads(Path(path).read_text())["cells"]
    cells = {}
    for code, (name, kind) in CELL_CODES.items():
        pairs = data[name][kind]
        nodes = tuple((pairs[i][1], pairs[i + 1][1], OP_CODES[pairs[i][0]], OP_CODES[pairs[i + 1][0]])
                      for i in range(0, len(pairs), 2))
        concat = tuple(data[name][f"{kind}_concat"])
        rule = next((r for r in ("loose", "all") if output_nodes(nodes, r) == concat), None)
        if rule is None:
            raise NasforgeError(f"{path}: {name} {kind} concat {list(concat)} is neither its loose nodes nor all nodes")
        cells[code] = PublishedCell(code, name, kind == "reduce", nodes, rule)
    return cells


def is_reduction(code: int) -> bool:
    return code in REDUCTION_CODES
