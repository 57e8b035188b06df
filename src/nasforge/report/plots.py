"""Matplotlib figures of a run, rendered to inline SVG text for the HTML report.

The report must open without a network and without a display, so figures are drawn with
the object-oriented API on the Agg canvas (no pyplot: no global figure state, safe in any
process) and saved as SVG with text kept as ``<text>`` elements: the page stays small and
searchable, and no per-figure glyph ``<defs>`` with clashing ids end up in one document.
"""
from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
from markupsafe import Markup

matplotlib.use("Agg", force=False)  # never pick a GUI backend for a headless report
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator, NullFormatter  # noqa: E402

from .. import pareto  # noqa: E402
from ..data.targets import kind_of, score  # noqa: E402
from ..storage import TrialRecord  # noqa: E402

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")
# (metric key, axis label): the costs an accuracy front is drawn against, when measured.
COSTS: tuple[tuple[str, str], ...] = (
    ("params", "parameters"),
    ("latency_ms", "latency (ms, one sample)"),
    ("train_energy_kwh", "training energy (kWh)"),
)


def plain(text: Any) -> str:
    """Label text with matplotlib's mathtext switched off (a ``$`` in a run name stays a ``$``)."""
    return str(text).replace("$", r"\$")


def figure_svg(fig: Figure) -> Markup:
    """The figure as an ``<svg>`` element (XML prolog and DOCTYPE dropped for inlining).

    Markup, so the page template inlines it as is: matplotlib's SVG writer XML-escapes every
    text it writes (a run name with ``<`` or ``&`` in a legend comes out as ``&lt;``, ``&amp;``)
    and the rest is markup it generates itself from numbers."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": None}):
        fig.savefig(buffer, format="svg")  # constrained layout fitted it; a "tight" bbox would draw twice
    text = buffer.getvalue()
    return Markup(text[text.index("<svg"):])


def _finish(fig: Figure, axes: Sequence[Any]) -> Markup:
    """One legend for the whole figure, below the axes, so it never hides a point."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncol=min(len(seen), 5), fontsize=8,
                   frameon=False)
    return figure_svg(fig)


def usable(value: Any) -> float | None:
    """A finite float, or None (NaN/inf are stored as text; -1e308 marks a non-finite fitness)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and value > -1e300 else None


def told_order(trials: Sequence[TrialRecord]) -> list[TrialRecord]:
    """Finished trials in the order the strategy learned of them (the run's real history)."""
    done = [t for t in trials if t.finished]
    return sorted(done, key=lambda t: (t.told_seq if t.told_seq is not None else 10**9, t.number))


@dataclass
class Progress:
    """Best-so-far curves of one run: x for evaluations and for time, y for fitness and accuracy."""

    evaluations: list[int]
    seconds: list[float] | None
    time_label: str
    fitness: list[float]
    accuracy: list[float]
    fitness_is_accuracy: bool
    each: list[float]  # every trial's own fitness (NaN when it failed)
    score_name: str = "accuracy"  # the validation score's name: accuracy, or R² for regression


def progress(trials: Sequence[TrialRecord], wall: dict[int, float] | None = None) -> Progress:
    """Best-so-far series in told order; time is cumulative training time, the simulated time of
    a tabular benchmark, or wall-clock seconds when neither was recorded."""
    ordered = told_order(trials)
    spent: list[float] = []
    label = ""
    for key, name in (("train_seconds", "cumulative training time (s)"), ("simulated_seconds", "simulated training time (s)")):
        values = [usable(t.metrics.get(key)) or 0.0 for t in ordered]
        if any(values):
            total = 0.0
            for v in values:
                total += v
                spent.append(total)
            label = name
            break
    if not spent and wall and all(t.number in wall for t in ordered):
        spent, label = [wall[t.number] for t in ordered], "wall-clock time since start (s)"
    best_fit = best_acc = -math.inf
    fitness, accuracy, same = [], [], True
    for t in ordered:
        fit, acc = usable(t.fitness), usable(score(t.metrics))
        if t.state == "complete":
            best_fit = max(best_fit, fit if fit is not None else -math.inf)
            best_acc = max(best_acc, acc if acc is not None else -math.inf)
            same = same and fit is not None and acc is not None and abs(fit - acc) < 1e-12
        fitness.append(best_fit if best_fit > -math.inf else math.nan)
        accuracy.append(best_acc if best_acc > -math.inf else math.nan)
    each = [usable(t.fitness) if t.state == "complete" else None for t in ordered]
    return Progress(list(range(1, len(ordered) + 1)), spent or None, label, fitness, accuracy, same,
                    [math.nan if v is None else v for v in each], score_name(ordered))


def progress_figure(runs: Sequence[tuple[str, Progress]]) -> Markup:
    """Best-so-far fitness and validation accuracy against evaluations and against time."""
    with_time = any(p.seconds for _, p in runs)
    fig = Figure(figsize=(10 if with_time else 5.5, 3.9), layout="constrained")
    axes = fig.subplots(1, 2 if with_time else 1, squeeze=False)[0]
    single = len(runs) == 1
    what = f"validation {runs[0][1].score_name if runs else 'accuracy'}"
    for i, (name, p) in enumerate(runs):
        color = COLORS[i % len(COLORS)]
        for ax, xs in zip(axes, (p.evaluations, p.seconds)):
            if not xs:
                continue
            if single:
                fit_label = f"best fitness (= {what})" if p.fitness_is_accuracy else "best fitness"
                ax.scatter(xs, p.each, s=12, color="#9e9e9e", alpha=0.7, label="each trial's fitness")
                ax.step(xs, p.fitness, where="post", color=color, label=fit_label)
                if not p.fitness_is_accuracy:
                    ax.step(xs, p.accuracy, where="post", color=COLORS[1], linestyle="--", label=f"best {what}")
            else:
                ax.step(xs, p.accuracy, where="post", color=color, label=plain(name))
    axes[0].set_xlabel("evaluations (in the order they were told)")
    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    if with_time:
        kinds: dict[str, list[str]] = {}
        for name, p in runs:
            if p.seconds:
                kinds.setdefault(p.time_label, []).append(plain(name))
        axes[1].set_xlabel(next(iter(kinds)) if len(kinds) == 1 else
                           "\n".join(f"{kind}: {', '.join(names)}" for kind, names in kinds.items()))
    for ax in axes:
        ax.set_ylabel("best so far" if single else f"best {what}")
        ax.grid(alpha=0.3)
    return _finish(fig, axes)


def score_name(trials: Iterable[TrialRecord]) -> str:
    """'accuracy', or 'R²' when the trials are a regression's."""
    return "R²" if any(kind_of(t.metrics) == "regression" for t in trials) else "accuracy"


def pareto_front(points: Sequence[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    """Points (cost, accuracy, trial) no other point beats on both (lower cost, higher accuracy),
    sorted by cost: the trade-offs worth choosing from."""
    chosen = sorted((points[i] for i in pareto.pareto_front([(-c, a) for c, a, _ in points])),
                    key=lambda p: (p[0], -p[1], p[2]))
    return [p for k, p in enumerate(chosen) if k == 0 or p[:2] != chosen[k - 1][:2]]  # one trial per point


def front_points(trials: Sequence[TrialRecord], cost: str) -> list[tuple[float, float, int]]:
    points = []
    for t in trials:
        c, a = usable(t.metrics.get(cost)), usable(score(t.metrics))
        if t.state == "complete" and c is not None and a is not None:
            points.append((c, a, t.number))
    return points


def measured_costs(trials: Sequence[TrialRecord]) -> list[tuple[str, str]]:
    """The costs some completed trial recorded (a tabular benchmark records parameters only)."""
    return [(key, label) for key, label in COSTS if front_points(trials, key)]


def pareto_figure(runs: Sequence[tuple[str, Sequence[TrialRecord], int | None]], costs: Sequence[tuple[str, str]]) -> Markup:
    """Validation accuracy against each measured cost: every trial, the front, the chosen model."""
    fig = Figure(figsize=(3.6 * len(costs) + 0.6, 3.9), layout="constrained")
    axes = fig.subplots(1, len(costs), squeeze=False)[0]
    single = len(runs) == 1
    what = f"validation {score_name(t for _, trials, _ in runs for t in trials)}"
    for ax, (cost, label) in zip(axes, costs):
        for i, (name, trials, chosen) in enumerate(runs):
            color = COLORS[i % len(COLORS)]
            points = front_points(trials, cost)
            if not points:
                continue
            if single:
                ax.scatter([p[0] for p in points], [p[1] for p in points], s=14, color="#9e9e9e", alpha=0.7, label="trials")
            front = pareto_front(points)
            ax.step([p[0] for p in front], [p[1] for p in front], where="post", marker="o", markersize=4,
                    color=color, label="Pareto front" if single else plain(name))
            mine = [p for p in points if p[2] == chosen]
            if mine:
                ax.scatter([mine[0][0]], [mine[0][1]], marker="*", s=220, color="#ffb300", edgecolors="black",
                           zorder=5, label="chosen model" if single or i == 0 else None)
        values = [p[0] for _, trials, _ in runs for p in front_points(trials, cost)]
        if values and min(values) > 0 and max(values) / min(values) > 50:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
    return _finish(fig, axes)


def generation_figure(trials: Sequence[TrialRecord]) -> Markup | None:
    """TS-ENAS: fitness of every member per generation, coloured by stage; None without generations."""
    rows = [(t.info.get("generation"), t.info.get("stage"), usable(t.fitness)) for t in trials if t.state == "complete"]
    rows = [(g, s, f) for g, s, f in rows if usable(g) is not None and f is not None]
    if not rows:
        return None
    fig = Figure(figsize=(6.5, 3.9), layout="constrained")
    ax = fig.subplots()
    stages = sorted({str(s) for _, s, _ in rows if s is not None})
    for i, stage in enumerate(stages or ["all"]):
        mine = [(g, f) for g, s, f in rows if (str(s) == stage if stages else True)]
        ax.scatter([g for g, _ in mine], [f for _, f in mine], s=18, alpha=0.75, color=COLORS[i % len(COLORS)],
                   label=f"stage {plain(stage)}" if stages else None)
    best: dict[float, float] = {}
    for g, _, f in rows:
        best[g] = max(best.get(g, -math.inf), f)
    ax.plot(sorted(best), [best[g] for g in sorted(best)], color="black", linewidth=1, label="best of generation")
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness")
    ax.grid(alpha=0.3)
    return _finish(fig, [ax])
