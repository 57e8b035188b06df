"""Reports on finished or running searches: one self-contained HTML file per run or comparison.

``write_report(out)`` reads a run directory (without taking its lock, so a running search can
be reported on) and writes ``out/report.html``: settings, best-so-far curves, accuracy
fronts, the best architecture and its lineage, strategy-specific views and a sortable table
of every trial. ``write_comparison`` puts several runs side by side, and
``dashboard_command`` gives the optuna-dashboard command line for a run, which works
because our trial store is Optuna's own.
"""
from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

from ..errors import NasforgeError
from ..runs import best_trial, run_meta
from ..storage import RunStore, TrialRecord
from . import drawing, html, plots

__all__ = ["RunData", "load_run", "run_config", "render_report", "render_comparison", "write_report", "write_comparison",
           "dashboard_command"]

METRICS: tuple[tuple[str, str], ...] = (
    ("val_acc", "val acc"), ("test_acc", "test acc"), ("test_f1", "test F1"), ("params", "params"),
    ("flops", "FLOPs"), ("latency_ms", "latency ms"), ("fps", "samples/s"), ("train_energy_kwh", "train kWh"),
    ("train_seconds", "train s"), ("simulated_seconds", "simulated s"),
)
LEMONADE_KEYS = ("instructions", "designer", "changes")


@dataclass
class RunData:
    """What a report needs from one run, read once."""

    out: Path
    url: str
    study: str
    config: dict[str, Any] | None
    task: dict[str, Any] | None
    trials: list[TrialRecord]
    best: TrialRecord | None
    wall: dict[int, float] = field(default_factory=dict)  # trial -> seconds from the run's first start to its end

    @property
    def label(self) -> str:
        return self.out.resolve().name


def _open(out: str | Path) -> tuple[Path, str, str]:
    out = Path(out)
    if not (out / "run.json").is_file():
        raise NasforgeError(f"{out} holds no nasforge run (no run.json)")
    url, name = run_meta(out)
    return out, url, name


def load_run(out: str | Path) -> RunData:
    """Read a run's settings, trials and timestamps (safe while the search is running)."""
    out, url, name = _open(out)
    store = RunStore(url, name, create=False)
    trials = store.records()
    frozen = store.study.get_trials(deepcopy=False)
    starts = [t.datetime_start for t in frozen if t.datetime_start is not None]
    first = min(starts, default=None)
    wall = {t.number: (t.datetime_complete - first).total_seconds()
            for t in frozen if first is not None and t.datetime_complete is not None}
    return RunData(out, url, name, store.get("config"), store.get("task"), trials, best_trial(trials), wall)


def run_config(out: str | Path) -> dict[str, Any] | None:
    """The configuration stored with a run (the dict ``SearchConfig.model_dump`` made)."""
    out, url, name = _open(out)
    return RunStore(url, name, create=False).get("config")


def dashboard_command(out: str | Path) -> list[str]:
    """``optuna-dashboard STORAGE_URL`` for a run; the executable next to this Python if it is
    installed there, so the virtualenv's copy is used even when the venv is not activated."""
    _, url, _ = _open(out)
    beside = Path(sys.executable).parent / "optuna-dashboard"
    exe = str(beside) if beside.is_file() else shutil.which("optuna-dashboard") or "optuna-dashboard"
    return [exe, url]


def _safe_url(url: str) -> str:
    """The storage URL with any password masked: a report is meant to be shared."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # SQLAlchemy cannot parse it: drop whatever precedes "@", where credentials go
        return url.split("@")[-1] if "@" in url else url


def data_label(run: RunData) -> str:
    cfg = run.config or {}
    if cfg.get("benchmark"):
        b = cfg["benchmark"]
        return f"{b.get('name')} / {b.get('dataset')} (table {b.get('file')})"
    d = cfg.get("data") or {}
    return str(d.get("dataset") or d.get("csv") or d.get("path") or "?")


def _facts(run: RunData) -> list[tuple[str, Any]]:
    finished = [t for t in run.trials if t.finished]
    failed = sum(t.state == "failed" for t in finished)
    cfg = run.config or {}
    return [("directory", str(run.out)), ("storage", _safe_url(run.url)), ("study", run.study),
            ("data", data_label(run)), ("strategy", (cfg.get("strategy") or {}).get("name", "?")),
            ("search space", (cfg.get("space") or {}).get("family", "?")), ("evaluations", len(finished)), ("failed", failed),
            ("interrupted attempts", sum(t.interrupted for t in run.trials)),
            ("running", sum(t.state == "running" for t in run.trials)),
            ("best trial", run.best.number if run.best else None),
            ("wall-clock (s)", max(run.wall.values()) if run.wall else None)]


def shown_settings(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """The settings that shaped the run: a tabular benchmark trains and measures nothing, so
    its data, training and measurement defaults would only mislead."""
    if not config or not config.get("benchmark"):
        return config
    kept = {k: v for k, v in config.items() if k not in ("data", "train", "measure", "space")}
    return {**kept, "space": {"family": (config.get("space") or {}).get("family")}}


def _trial_table(run: RunData) -> html.Table:
    metric_cols = [(k, label) for k, label in METRICS if any(k in t.metrics for t in run.trials)]
    has_gen = any("generation" in t.info for t in run.trials)
    columns = [html.Column("trial", "#", True), html.Column("state", "state"), html.Column("genome", "genome"),
               html.Column("operator", "operator"), html.Column("parents", "parents")]
    columns += [html.Column("generation", "generation", True)] if has_gen else []
    columns += [html.Column("fitness", "fitness", True)] + [html.Column(k, label, True) for k, label in metric_cols]
    columns += [html.Column("error", "error", cls="error")]
    rows = []
    for t in sorted(run.trials, key=lambda t: t.number):
        state = t.state + (" (interrupted)" if t.interrupted else "")
        values: list[Any] = [t.number, state, drawing.summary(t), t.operator, ", ".join(map(str, t.parents))]
        values += [t.info.get("generation")] if has_gen else []
        values += [plots.usable(t.fitness)] + [t.metrics.get(k) for k, _ in metric_cols] + [t.error or ""]
        klass = "best" if run.best is not None and t.number == run.best.number else t.state
        rows.append(({"data-trial": str(t.number), "class": klass}, values))
    return html.Table("trial-table", columns, rows)


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(v if isinstance(v, str) else json.dumps(v, sort_keys=True) for v in value)
    return value if isinstance(value, str) or value is None else json.dumps(value, sort_keys=True)


def _lemonade(run: RunData) -> html.Table | None:
    """LEMONADE: each iteration's instructions, the designer that wrote them and what changed."""
    rows = [t for t in sorted(run.trials, key=lambda t: t.number) if any(k in t.info for k in LEMONADE_KEYS)]
    if not rows:
        return None
    columns = [html.Column("trial", "#", True), html.Column("iteration", "iteration", True),
               html.Column("designer", "designer"), html.Column("instructions", "instructions", cls="text"),
               html.Column("changes", "what changed", cls="text"), html.Column("fitness", "fitness", True),
               html.Column("state", "state")]
    data = [({"data-iteration": str(t.number)},
             [t.number, t.info.get("ask", t.info.get("iteration")), _text(t.info.get("designer")),
              _text(t.info.get("instructions")), _text(t.info.get("changes")), plots.usable(t.fitness), t.state])
            for t in rows]
    return html.Table("designer-table", columns, data)


@dataclass
class BestModel:
    """What ``sections/best.html.j2`` shows of the chosen trial."""

    number: int
    facts: list[tuple[str, Any]]
    drawing: Markup  # from drawing.py, which escapes every text it draws
    lineage: Markup


def _best_section(run: RunData) -> html.Section:
    b = run.best
    if b is None:
        first = next((t.error for t in run.trials if t.error), "no trials yet")
        return html.Section("best", "Best model", "note", f"No trial completed. First error: {first}")
    facts = [("trial", b.number), ("genome", drawing.summary(b)), ("fitness", plots.usable(b.fitness))]
    facts += [(label, b.metrics[k]) for k, label in METRICS if k in b.metrics]
    facts += [("energy source", b.metrics["energy_source"])] if "energy_source" in b.metrics else []
    model = BestModel(b.number, facts, drawing.draw_genome(b.genome), drawing.draw_lineage(b, run.trials))
    return html.Section("best", "Best model", "best", model)


def render_report(run: RunData) -> str:
    """The report page of one run, as a string."""
    sections = [html.Section("settings", "Settings", "settings", html.settings_groups(shown_settings(run.config), _facts(run))),
                _best_section(run)]
    if any(t.finished for t in run.trials):
        prog = plots.progress(run.trials, run.wall)
        sections.append(html.Section("progress", "Progress", "figure", plots.progress_figure([(run.label, prog)]),
                                     "Best so far, in the order results were told to the strategy."))
    costs = plots.measured_costs(run.trials)
    if costs:
        svg = plots.pareto_figure([(run.label, run.trials, run.best.number if run.best else None)], costs)
        sections.append(html.Section("pareto", "Accuracy against cost", "figure", svg,
                                     "Grey: every completed trial; line: the Pareto front; star: the chosen model."))
    generations = plots.generation_figure(run.trials)
    if generations:
        sections.append(html.Section("generations", "Population per generation", "figure", generations))
    lemonade = _lemonade(run)
    if lemonade:
        sections.append(html.Section("designer", "Designer iterations", "table", lemonade,
                                     "Instructions given each iteration and what changed in the network."))
    trials = _trial_table(run)
    sections.append(html.Section("trials", f"Trials ({len(trials.rows)})", "table", trials, "Click a column header to sort."))
    return html.render("report.html.j2", sections, label=run.label, data_label=data_label(run),
                       evaluations=sum(t.finished for t in run.trials), out=run.out)


def write_report(out: str | Path, path: str | Path | None = None) -> Path:
    """Write the HTML report of run ``out`` (default ``out/report.html``) and return its path."""
    run = load_run(out)
    target = Path(path) if path is not None else run.out / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_report(run), encoding="utf-8")
    return target


def _labels(runs: Sequence[RunData]) -> list[str]:
    """Directory names, with the parent added where two runs share a name."""
    names = [r.label for r in runs]
    return [f"{r.out.resolve().parent.name}/{n}" if names.count(n) > 1 else n for r, n in zip(runs, names)]


def render_comparison(runs: Sequence[RunData]) -> str:
    labels = _labels(runs)
    quantities: list[tuple[str, Any]] = [
        ("data", lambda r: data_label(r)), ("strategy", lambda r: (r.config or {}).get("strategy", {}).get("name")),
        ("space", lambda r: (r.config or {}).get("space", {}).get("family")),
        ("evaluations", lambda r: sum(t.finished for t in r.trials)),
        ("failed", lambda r: sum(t.finished and t.state == "failed" for t in r.trials)),
        ("best trial", lambda r: r.best.number if r.best else None),
        ("best genome", lambda r: drawing.summary(r.best) if r.best else None),
        ("best fitness", lambda r: plots.usable(r.best.fitness) if r.best else None)]
    quantities += [(f"best {label}", lambda r, k=k: r.best.metrics.get(k) if r.best else None) for k, label in METRICS]
    quantities += [("total train s", lambda r: sum(plots.usable(t.metrics.get("train_seconds")) or 0 for t in r.trials)),
                   ("wall-clock s", lambda r: max(r.wall.values()) if r.wall else None)]
    rows = [({"data-quantity": name}, [name] + [get(r) for r in runs]) for name, get in quantities]
    rows = [row for row in rows if any(v is not None for v in row[1][1:])]
    columns = [html.Column("quantity", "")] + [html.Column(f"run{i}", label) for i, label in enumerate(labels)]
    sections = [html.Section("summary", "Side by side", "table", html.Table("compare-table", columns, rows, sortable=False))]
    progress = [(label, plots.progress(r.trials, r.wall)) for label, r in zip(labels, runs) if any(t.finished for t in r.trials)]
    if progress:
        sections.append(html.Section("progress", "Best validation accuracy so far", "figure", plots.progress_figure(progress)))
    costs = [c for c in plots.COSTS if any(c in plots.measured_costs(r.trials) for r in runs)]
    if costs:
        fronts = [(label, r.trials, r.best.number if r.best else None) for label, r in zip(labels, runs)]
        sections.append(html.Section("pareto", "Pareto fronts", "figure", plots.pareto_figure(fronts, costs),
                                     "Each run's front of validation accuracy against cost; stars mark the chosen models."))
    cards = [(label, r.out, drawing.draw_genome(r.best.genome) if r.best else None) for label, r in zip(labels, runs)]
    sections.append(html.Section("runs", "Best architectures", "runs", cards))
    return html.render("compare.html.j2", sections, labels=labels)


def write_comparison(runs: Sequence[str | Path], path: str | Path) -> Path:
    """Write one HTML page comparing ``runs`` (run directories) and return its path."""
    if not runs:
        raise NasforgeError("give at least one run to compare")
    data = [load_run(r) for r in runs]
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_comparison(data), encoding="utf-8")
    return target
