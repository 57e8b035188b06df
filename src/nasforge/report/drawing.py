"""Architectures and lineages drawn as inline SVG, generated from the stored genome dict.

What an architecture looks like is the genome's own ``diagram()``, plain data in the shapes of
:mod:`nasforge.spaces.diagram` (a stack of boxes, a cell graph); this module draws those
shapes and never names a family, so a new family draws itself (or, without a diagram, gets
the generic view of its JSON).

Drawn by hand rather than with matplotlib so that every part is an element the page (and a
test) can point at: each layer is a ``<g data-layer="i">``, each skip a ``data-skip``
path. Arrowheads are polygons, not ``<marker>`` definitions, because several drawings share
one HTML document and marker ids would clash. All genome text goes through ``html.escape``
(a genome may have been written by an LLM designer), which is why the finished drawings are
handed to the page templates as ``Markup``.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

from markupsafe import Markup

from ..errors import NasforgeError
from ..spaces import genome_from_dict
from ..spaces.diagram import CellGraph, Stack
from ..storage import TrialRecord

BOX_H, GAP, CHAR_W = 30, 22, 7.0
FILL = {"input": "#eceff1", "dense": "#e3f2fd", "conv": "#e8f5e9", "pool": "#fff3e0", "global_pool": "#fff3e0",
        "dropout": "#f3e5f5", "output": "#fce4ec", "item": "#e3f2fd", "trial": "#f5f5f5", "best": "#fff8e1"}


def _text(x: float, y: float, content: Any, anchor: str = "middle", size: int = 12, cls: str = "", fill: str = "#212121") -> str:
    extra = f' class="{cls}"' if cls else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="{fill}"{extra}>'
            f"{escape(str(content))}</text>")


def _arrow(x: float, y1: float, y2: float, label: str = "") -> str:
    """A downward arrow from y1 to y2 at x, with an optional label on its right."""
    parts = [f'<line x1="{x:.1f}" y1="{y1:.1f}" x2="{x:.1f}" y2="{y2 - 5:.1f}" stroke="#616161"/>',
             f'<polygon points="{x - 4:.1f},{y2 - 6:.1f} {x + 4:.1f},{y2 - 6:.1f} {x:.1f},{y2:.1f}" fill="#616161"/>']
    if label:
        parts.append(_text(x + 8, (y1 + y2) / 2 + 4, label, anchor="start", size=11, fill="#6a1b9a"))
    return "".join(parts)


def _attrs(attrs: Mapping[str, Any]) -> str:
    return "".join(f' {k}="{escape(str(v))}"' for k, v in attrs.items())


def _svg(width: float, height: float, body: Sequence[str], label: str) -> str:
    return (f'<svg class="arch" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{escape(label)}" '
            f'font-family="system-ui, sans-serif">{"".join(body)}</svg>')


def stack(items: Sequence[tuple[str, str, str, dict[str, Any]]], skips: Sequence[tuple[int, int]] = (),
          footer: Sequence[str] = (), label: str = "architecture") -> str:
    """Boxes top to bottom joined by arrows. ``items`` are (kind, text, badge, attributes), as a
    :class:`~nasforge.spaces.diagram.StackItem`; ``skips`` are (i, j) item indices joined by an
    arc on the right."""
    width = max([len(text) for _, text, _, _ in items] + [24]) * CHAR_W + 120
    rule_x = width - 8
    arc_room = 30 + 16 * len(skips)
    body, y = [], 10.0
    tops: list[float] = []
    for i, (kind, text, rule, attrs) in enumerate(items):
        tops.append(y)
        attr = _attrs(attrs)
        body.append(f'<g class="layer"{attr}><rect x="8" y="{y:.1f}" width="{width - 8:.1f}" height="{BOX_H}" rx="5" '
                    f'fill="{FILL.get(kind, FILL["item"])}" stroke="#546e7a"/>')
        body.append(_text(20, y + BOX_H / 2 + 4, text, anchor="start"))
        if rule:
            body.append(_text(rule_x - 4, y + BOX_H / 2 + 4, rule, anchor="end", size=11, cls="rule", fill="#6a1b9a"))
        body.append("</g>")
        if i + 1 < len(items):
            body.append(_arrow(width / 2, y + BOX_H, y + BOX_H + GAP))
        y += BOX_H + GAP
    for rank, (i, j) in enumerate(sorted(skips, key=lambda s: (s[1] - s[0], s))):
        if not (0 <= i < len(items) and 0 <= j < len(items)):
            continue
        y1, y2, bend = tops[i] + BOX_H / 2, tops[j] + BOX_H / 2, width + 22 + 16 * rank
        body.append(f'<path data-skip="{i}-{j}" d="M {width:.1f} {y1:.1f} C {bend:.1f} {y1:.1f} {bend:.1f} {y2:.1f} '
                    f'{width + 6:.1f} {y2:.1f}" fill="none" stroke="#c62828" stroke-width="1.6"/>')
        body.append(f'<polygon points="{width + 6:.1f},{y2:.1f} {width + 13:.1f},{y2 - 4:.1f} {width + 13:.1f},{y2 + 4:.1f}" '
                    f'fill="#c62828"/>')
    for line in footer:
        body.append(_text(8, y + 4, line, anchor="start", size=11, fill="#455a64"))
        y += 16
    return _svg(width + arc_room, y + 4, body, label)


def draw_stack(d: Stack) -> str:
    """A :class:`~nasforge.spaces.diagram.Stack` (layers or cells in a chain)."""
    return stack(d.items, d.skips, d.footer, d.label)


def _lift(span: int) -> float:
    """How far an edge over ``span`` nodes bends: neighbours straight, then above and below in turn."""
    if span <= 1:
        return 0
    return -70 - 25 * (span - 2) if span % 2 == 0 else 95 + 25 * (span - 3)


def draw_cell_graph(d: CellGraph) -> str:
    """Nodes on a line at x_i, each edge an arc labelled with its text: over two nodes above the
    line, over three below (a NAS-Bench-201 cell); a faint edge dashed and grey."""
    xs = [50 + 190 * n for n in range(len(d.nodes))]
    lifts = [_lift(e.dst - e.src) for e in d.edges]
    mid = max(150, 60 + 0.75 * -min(lifts + [0]))
    height = max(290, mid + 0.75 * max(lifts + [0]) + 55)
    body = []
    for edge, lift in zip(d.edges, lifts):
        x1, x2 = xs[edge.src] + 22, xs[edge.dst] - 22
        cx = (x1 + x2) / 2
        dash = ' stroke-dasharray="4 4"' if edge.faint else ""
        color = "#9e9e9e" if edge.faint else "#1565c0"
        label_y = mid + lift * 0.75 + (-6 if lift <= 0 else 14)
        body.append(f'<g class="edge"{_attrs(edge.attrs)}>'
                    f'<path d="M {x1} {mid} Q {cx} {mid + lift * 1.5} {x2} {mid}" fill="none" stroke="{color}" stroke-width="1.8"{dash}/>'
                    f'<polygon points="{x2},{mid} {x2 - 9},{mid - 4} {x2 - 9},{mid + 4}" fill="{color}"/>'
                    + _text(cx, label_y, edge.label, size=11, fill=color) + "</g>")
    for n, (x, name) in enumerate(zip(xs, d.nodes)):
        body.append(f'<g class="node"><circle cx="{x}" cy="{mid}" r="20" fill="#eceff1" stroke="#546e7a"/>'
                    + _text(x, mid + 4, n) + _text(x, mid + 36, name, size=10, fill="#546e7a") + "</g>")
    return _svg(xs[-1] + 50 if xs else 100, height, body, d.label)


def _compact(item: Any) -> str:
    if isinstance(item, dict):
        return " · ".join(f"{k}={json.dumps(v) if isinstance(v, (dict, list)) else v}" for k, v in item.items())
    return json.dumps(item)


def draw_generic(g: dict[str, Any]) -> str:
    """Families without their own drawing: a box per entry of the genome's first list, then its JSON."""
    lists = [(k, v) for k, v in g.items() if isinstance(v, list) and v]
    parts = []
    if lists:
        key, values = lists[0]
        items = [(str(v.get("kind", "item")) if isinstance(v, dict) else "item", f"{key}[{i}] {_compact(v)}"[:140], "",
                  {"data-layer": i}) for i, v in enumerate(values)]
        parts.append(stack(items, label=f"{g.get('family', 'genome')} genome"))
    text = json.dumps(g, indent=2, sort_keys=True)
    opened = "" if lists else " open"
    parts.append(f'<details{opened}><summary>genome JSON</summary><pre class="genome-json">{escape(text)}</pre></details>')
    return "".join(parts)


RENDERERS: dict[type, Callable[[Any], str]] = {Stack: draw_stack, CellGraph: draw_cell_graph}
"""Each shape of nasforge.spaces.diagram and how it is drawn; families never appear here."""


def draw_genome(genome: dict[str, Any]) -> Markup:
    """An HTML fragment drawing ``genome`` as its family's ``diagram()`` asks; a genome that
    will not parse, has no diagram or will not draw falls back to its JSON.
    Markup: every text in it went through ``escape`` above."""
    try:
        diagram = genome_from_dict(genome).diagram()
        render = RENDERERS.get(type(diagram))
        if render is not None:
            return Markup(render(diagram))
    except (KeyError, TypeError, ValueError, AttributeError, NasforgeError):
        pass
    return Markup(draw_generic(genome))


def summary(record: TrialRecord) -> str:
    """The genome's one-line summary, or its JSON when the family is unknown here."""
    try:
        return genome_from_dict(record.genome).summary()
    except Exception:  # an unknown or future family must not break the report
        return json.dumps(record.genome, sort_keys=True)


def lineage(best: TrialRecord, trials: Sequence[TrialRecord], limit: int = 40) -> list[TrialRecord]:
    """The chain best <- parent <- ... back to a trial without parents (first parent each step)."""
    by_number = {t.number: t for t in trials}
    chain, seen = [best], {best.number}
    while chain[-1].parents and chain[-1].parents[0] in by_number and chain[-1].parents[0] not in seen:
        chain.append(by_number[chain[-1].parents[0]])
        seen.add(chain[-1].number)
    chain.reverse()
    return chain[-limit:]


def draw_lineage(best: TrialRecord, trials: Sequence[TrialRecord]) -> Markup:
    """Ancestors top to bottom, each arrow labelled with the operator that made the child.
    Markup: every text in it went through ``escape`` above."""
    chain = lineage(best, trials)
    texts = []
    for t in chain:
        fit = f"{t.fitness:.4f}" if t.fitness is not None else t.state
        origin = "" if t.parents else " (random initial)"
        texts.append(f"trial {t.number} · {fit} · {summary(t)}"[:120] + origin)
    width = max(len(s) for s in texts) * CHAR_W + 40
    body, y = [], 10.0
    if chain[0].parents:
        body.append(_text(8, y + 8, f"… earlier ancestors of trial {chain[0].number} not shown", anchor="start", size=11))
        y += 18
    for i, (t, text) in enumerate(zip(chain, texts)):
        kind = "best" if t is best else "trial"
        body.append(f'<g class="ancestor" data-trial="{t.number}"><rect x="8" y="{y:.1f}" width="{width - 8:.1f}" '
                    f'height="{BOX_H}" rx="5" fill="{FILL[kind]}" stroke="#546e7a"/>'
                    + _text(18, y + BOX_H / 2 + 4, text, anchor="start") + "</g>")
        if i + 1 < len(chain):
            body.append(_arrow(40, y + BOX_H, y + BOX_H + GAP + 6, chain[i + 1].operator))
        y += BOX_H + GAP + 6
    return Markup(_svg(width + 120, y, body, "lineage of the best trial"))
