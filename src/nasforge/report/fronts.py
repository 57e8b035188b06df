"""Pareto (multi-objective) runs in the report: a front for every pair of objectives, the genome
on hover, and the hypervolume of the front after each evaluation.

A run made with ``--objectives`` stores, per complete trial, ``values`` (each objective in its
own units, in the order of the config's ``objectives``) and ``point`` (the same with every
direction maximised); ``fitness`` is None. Trials over a limit (``violation > 0``) are drawn
apart; skipped ones (over a limit before training) have no values and are not drawn.

Hover: each drawn point is one element of a matplotlib collection given a placeholder URL;
:func:`_with_tooltips` turns each placeholder ``<a>`` into a ``<g class="point">`` whose first
child is an SVG ``<title>`` (trial, genome, objective values), which every browser shows as a
tooltip with no script and no network.

Hypervolume: each objective is scaled so that the reference point is 0 and the best value any
complete trial reached is 1 (see :class:`Reference`), so the number is a share of that box
(1 would be one trial best at everything) and runs with the same objectives compare when they
share one reference.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from markupsafe import Markup, escape
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter

from .. import pareto
from ..objectives import MEASURES, Measure, format_value
from ..storage import TrialRecord
from . import drawing
from .plots import COLORS, _finish, plain, told_order

MARGIN = 0.1  # the reference point lies this share of each objective's range beyond its worst value
_TIP = "#nasforge-tip-"


def objective_names(config: dict[str, Any] | None) -> list[str]:
    """The objectives of a Pareto run, in stored order; [] for a single-objective run."""
    names = [str(n) for n in (config or {}).get("objectives") or []]
    return names if len(names) > 1 and all(n in MEASURES for n in names) else []


def measures(names: Sequence[str]) -> list[Measure]:
    return [MEASURES[n] for n in names]


def direction(m: Measure) -> str:
    return "max" if m.maximise else "min"


def axis_label(m: Measure) -> str:
    """e.g. ``params (min): parameters``: the objective, its direction and its unit."""
    return f"{m.name} ({direction(m)}): {m.unit}"


def scored(trials: Sequence[TrialRecord], n: int) -> list[TrialRecord]:
    """Complete trials with all ``n`` objective values (what a front is made of)."""
    return [t for t in trials if t.state == "complete" and t.values is not None and t.point is not None
            and len(t.values) == n and len(t.point) == n and all(math.isfinite(v) for v in t.point)]


def feasible(trials: Sequence[TrialRecord]) -> list[TrialRecord]:
    """The trials within the run's limits, or all of them when none is (as ``best_trial`` does)."""
    within = [t for t in trials if t.violation <= 0]
    return within or list(trials)


def front(trials: Sequence[TrialRecord]) -> list[TrialRecord]:
    """The full (n-D) Pareto front of scored trials, within the limits when any trial is."""
    pool = feasible(trials)
    return [pool[i] for i in pareto.pareto_front([t.point for t in pool])] if pool else []


def objective_text(t: TrialRecord, ms: Sequence[Measure], sep: str = " · ") -> str:
    """``accuracy 0.8667 · params 1,027 · latency 0.02166`` (``-`` where a value is missing)."""
    values = t.values if t.values is not None and len(t.values) == len(ms) else [None] * len(ms)
    return sep.join(f"{m.name} {format_value(v)}" for m, v in zip(ms, values))


def tooltip(t: TrialRecord, ms: Sequence[Measure]) -> str:
    """What hovering a point shows: the trial, its genome and each objective with its unit."""
    lines = [f"trial {t.number}: {drawing.summary(t)}"]
    lines += [f"{m.name} = {format_value(v)} ({m.unit})" for m, v in zip(ms, t.values or [])]
    if t.violation > 0:
        lines.append(f"over a limit (violation {format_value(t.violation)})")
    return "\n".join(lines)


def _with_tooltips(svg: Markup, tips: Sequence[tuple[int, str, str]]) -> Markup:
    """Each placeholder link ``#nasforge-tip-K`` becomes ``<g class="point ROLE" data-point=TRIAL>``
    with ``<title>`` (escaped) first: the browser's own tooltip, no script needed. ROLE is
    ``trial``, ``over-limit``, ``front`` or ``chosen``."""
    def point(match: re.Match[str]) -> str:
        number, role, text = tips[int(match.group(1))]
        return (f'<g class="point {role}" data-point="{number}"><title>{escape(text)}</title>'
                f'{match.group(2)}</g>')

    return Markup(re.sub(r'<a xlink:href="#nasforge-tip-(\d+)"[^>]*>(.*?)</a>', point, str(svg), flags=re.S))


def _pairs(ms: Sequence[Measure]) -> list[tuple[int, int]]:
    """Every pair of objectives once; a minimised objective goes on x when the other is
    maximised (cost across, accuracy up, as in the single-objective fronts)."""
    out = []
    for i, j in combinations(range(len(ms)), 2):
        out.append((j, i) if ms[i].maximise and not ms[j].maximise else (i, j))
    return out


def pairs_figure(trials: Sequence[TrialRecord], ms: Sequence[Measure], chosen: int | None) -> Markup | None:
    """One panel per pair of objectives: every complete trial (grey; hollow red when over a
    limit), that pair's 2-D front of the trials within the limits, and the chosen model (the
    knee of the full front) as a star. Every point has its trial's tooltip."""
    done = scored(trials, len(ms))
    if not done:
        return None
    pairs = _pairs(ms)
    cols = min(len(pairs), 3)
    rows = math.ceil(len(pairs) / cols)
    fig = Figure(figsize=(3.9 * cols + 0.4, 3.5 * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    tips: list[tuple[int, str, str]] = []
    text = {t.number: tooltip(t, ms) for t in done}

    def scatter(ax: Any, role: str, group: Sequence[TrialRecord], x: int, y: int, **style: Any) -> None:
        if not group:
            return
        artist = ax.scatter([t.values[x] for t in group], [t.values[y] for t in group], **style)
        artist.set_urls([f"{_TIP}{len(tips) + k}" for k in range(len(group))])
        tips.extend((t.number, role, text[t.number]) for t in group)

    within = [t for t in done if t.violation <= 0]
    over = [t for t in done if t.violation > 0]
    pool = within or done
    star = [t for t in done if t.number == chosen]
    for ax, (x, y) in zip(axes, pairs):
        ax.set_gid(f"pair-{ms[x].name}-{ms[y].name}")
        scatter(ax, "trial", within, x, y, s=16, color="#9e9e9e", alpha=0.75, label="trials", zorder=2)
        scatter(ax, "over-limit", over, x, y, s=22, facecolors="none", edgecolors="#d32f2f", linewidths=1.2,
                label="over a limit", zorder=2)
        two = sorted((pool[i] for i in pareto.pareto_front([(t.point[x], t.point[y]) for t in pool])),
                     key=lambda t: (t.values[x], t.values[y], t.number))
        ax.step([t.values[x] for t in two], [t.values[y] for t in two], where="pre" if ms[x].maximise else "post",
                color=COLORS[0], linewidth=1.3, zorder=3)
        scatter(ax, "front", two, x, y, s=26, color=COLORS[0], label="front of this pair", zorder=4)
        scatter(ax, "chosen", star, x, y, marker="*", s=240, color="#ffb300", edgecolors="black",
                label="chosen model (knee of the full front)", zorder=5)
        for k, set_scale, axis in ((x, ax.set_xscale, ax.xaxis), (y, ax.set_yscale, ax.yaxis)):
            values = [t.values[k] for t in done]
            if not ms[k].maximise and min(values) > 0 and max(values) / min(values) > 50:  # a cost over decades
                set_scale("log")
                axis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(plain(axis_label(ms[x])), fontsize=9)
        ax.set_ylabel(plain(axis_label(ms[y])), fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[len(pairs):]:
        ax.set_visible(False)
    return _with_tooltips(_finish(fig, list(axes[:len(pairs)])), tips)


@dataclass(frozen=True)
class Reference:
    """Hypervolume's frame, in maximised coordinates: ``low`` is the reference point (each
    objective's worst value over all complete trials, moved MARGIN of its range further so the
    extreme trials count), ``high`` the best value any complete trial reached."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    def scale(self, point: Sequence[float]) -> tuple[float, ...]:
        return tuple((p - lo) / (hi - lo) for p, lo, hi in zip(point, self.low, self.high))

    def describe(self, ms: Sequence[Measure]) -> str:
        """The reference point in the objectives' own units."""
        return ", ".join(f"{m.name} {format_value(v if m.maximise else -v)}" for m, v in zip(ms, self.low))


def reference(trial_lists: Sequence[Sequence[TrialRecord]], n: int) -> Reference | None:
    """One frame for all the runs given (so their hypervolumes compare); None without a scored trial."""
    points = [t.point for trials in trial_lists for t in scored(trials, n)]
    if not points:
        return None
    low, high = [], []
    for k in range(n):
        worst, best = min(p[k] for p in points), max(p[k] for p in points)
        margin = MARGIN * (best - worst) if best > worst else MARGIN * abs(worst) or 1.0
        low.append(worst - margin)
        high.append(best)
    return Reference(tuple(low), tuple(high))


def hypervolume(trials: Sequence[TrialRecord], ref: Reference) -> float:
    """Hypervolume of the trials' front within the limits (0 while no trial is within them)."""
    within = [t for t in scored(trials, len(ref.low)) if t.violation <= 0]
    return pareto.hypervolume([ref.scale(t.point) for t in within], (0.0,) * len(ref.low))


def hypervolume_series(trials: Sequence[TrialRecord], ref: Reference) -> tuple[list[int], list[float]]:
    """(evaluations, hypervolume after each) in the order results were told to the strategy;
    exact at every step (fronts of a search are small)."""
    ordered = told_order(trials)
    return list(range(1, len(ordered) + 1)), [hypervolume(ordered[:k], ref) for k in range(1, len(ordered) + 1)]


def hypervolume_figure(runs: Sequence[tuple[str, list[int], list[float]]]) -> Markup:
    """Hypervolume of the front within the limits against evaluations, one line per run."""
    fig = Figure(figsize=(6.5, 3.9), layout="constrained")
    ax = fig.subplots()
    single = len(runs) == 1
    for i, (name, xs, hv) in enumerate(runs):
        ax.step(xs, hv, where="post", color=COLORS[i % len(COLORS)], marker="o" if len(xs) <= 60 else None,
                markersize=3, label="hypervolume of the front" if single else plain(name))
    ax.set_xlabel("evaluations (in the order they were told)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("hypervolume (scaled, 1 = ideal)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    return _finish(fig, [ax])


__all__ = ["Reference", "axis_label", "front", "hypervolume", "hypervolume_figure", "hypervolume_series",
           "objective_names", "objective_text", "pairs_figure", "reference", "scored", "tooltip"]
