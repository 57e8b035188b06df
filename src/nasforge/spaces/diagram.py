"""How a genome asks to be drawn, as plain data: the shapes the report knows how to draw.

A genome's ``diagram()`` returns one of these (or None: the report then shows a generic
view), so a new family draws itself without an edit of the report, which renders shapes and
never families. Only data here: no HTML and no escaping (the report escapes every text and
attribute value it writes), and no torch.

- :class:`Stack`: boxes top to bottom joined by arrows (a chain of layers or cells), with
  skips drawn as arcs on the right and footer lines under the last box.
- :class:`CellGraph`: a NAS-Bench-201 style cell: numbered nodes on a line and labelled
  edges between them, drawn as arcs above or below the line by how many nodes they span.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class StackItem(NamedTuple):
    """One box of a :class:`Stack`. ``kind`` picks its fill (input, dense, conv, pool,
    global_pool, dropout, output; anything else gets the plain item fill), ``badge`` is a
    short note at its right end (e.g. the learning rule; empty for none) and ``attrs`` the
    attributes of its group (``data-layer``, ``data-kind``, ``data-role``, ``data-code``...)."""

    kind: str
    text: str
    badge: str = ""
    attrs: Mapping[str, Any] = {}


@dataclass(frozen=True)
class Stack:
    """Items top to bottom; ``skips`` are (i, j) pairs of item indices joined by an arc."""

    items: tuple[StackItem, ...]
    skips: tuple[tuple[int, int], ...] = ()
    footer: tuple[str, ...] = ()
    label: str = "architecture"  # what a screen reader says (aria-label)


@dataclass(frozen=True)
class Edge:
    """An edge of a :class:`CellGraph` from node ``src`` to node ``dst`` (src < dst), with
    its ``label``; a ``faint`` edge carries nothing and is drawn dashed and grey."""

    src: int
    dst: int
    label: str
    faint: bool = False
    attrs: Mapping[str, Any] = field(default_factory=dict)  # e.g. data-layer, data-op


@dataclass(frozen=True)
class CellGraph:
    """Nodes named in order on a line (drawn with their index and name), and the edges in
    the order they are drawn."""

    nodes: tuple[str, ...]
    edges: tuple[Edge, ...]
    label: str = "cell"  # what a screen reader says (aria-label)


Diagram = Stack | CellGraph

__all__ = ["CellGraph", "Diagram", "Edge", "Stack", "StackItem"]
