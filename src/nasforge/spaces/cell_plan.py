"""What a network of the ``cells`` family needs to know of one cell, without torch.

Shared by the genome (:mod:`nasforge.spaces.cells`), which makes plans, and the torch
networks (:mod:`nasforge.spaces.cell_model`), which build them, so that the genome imports
without torch.
"""
from __future__ import annotations

from typing import NamedTuple

Node = tuple[int, int, int, int]  # (x_i, x_j, o_i, o_j): two input nodes, their two op codes


class CellPlan(NamedTuple):
    """One cell of a network (built from a genome's cell)."""

    code: int
    prev: int  # a1: output index of the previous cell (0 is the stem)
    other: int  # a2: output index of the other input
    nodes: tuple[Node, ...]
    concat: tuple[int, ...]
    reduction: bool
