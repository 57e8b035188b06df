"""The drawing of a ``cells`` genome (kept out of cells.py, which is long enough): the stem,
one box per cell (published name, normal or reduction, edited or not, nodes, ops), an arc
from each cell's second input when it is not the previous cell, the classifier."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .cell_plan import published_cells
from .diagram import Stack, StackItem
from .vocabulary import CELL_OPS

if TYPE_CHECKING:
    from .cells import CellsGenome


def cells_diagram(g: CellsGenome) -> Stack:
    names = published_cells()
    items = [StackItem("input", f"stem: 3x3 conv, {g.channels} channels", "", {"data-role": "stem"})]
    skips = []
    for i, cell in enumerate(g.cells):
        ops = sorted({CELL_OPS[o] for node in cell.nodes for o in node[2:]})
        text = (f"cell {i + 1}: {names[cell.code].name} {'reduction' if cell.reduction else 'normal'}"
                f"{' (edited)' if cell.modified else ''} · {len(cell.nodes)} nodes · {', '.join(ops)}")
        kind = "pool" if cell.reduction else "conv"
        items.append(StackItem(kind, text[:160], "", {"data-layer": i, "data-code": cell.code}))
        if cell.inputs[1] != cell.inputs[0]:
            skips.append((cell.inputs[1], i + 1))  # outputs are numbered like items: 0 is the stem
    items.append(StackItem("output", "global pool → linear classifier → classes", "", {"data-role": "output"}))
    return Stack(tuple(items), tuple(skips), label="TS-ENAS cell network")
