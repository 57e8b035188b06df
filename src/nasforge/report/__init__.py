"""Reports on finished or running searches: one self-contained HTML file per run or comparison.

``write_report(out)`` reads a run directory (without taking its lock, so a running search can
be reported on) and writes ``out/report.html``: settings, best-so-far curves, accuracy
fronts, the best architecture and its lineage, strategy-specific views and a sortable table
of every trial. A Pareto run (``--objectives``) gets instead a front per pair of objectives
(genome on hover, the knee starred) and its hypervolume over evaluations (``fronts.py``). ``write_comparison`` puts several runs side by side, and
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
from ..files import write_text
from ..runs import best_trial, run_meta
from ..storage import RunStore, TrialRecord
from . import drawing, fronts, html, plots

__all__ = ["RunData", "load_run", "run_config", "render_report", "render_comparison", "write_report", "write_comparison",
           "dashboard_command"]

METRICS: tuple[tuple[str, str], ...] = (
    ("val_acc", "val acc"), ("test_acc", "test acc"), ("test_f1", "test F1"),
    ("val_r2", "val R²"), ("test_r2", "test R²"), ("test_rmse", "test RMSE"), ("test_mae", "test MAE"), ("params", "params"),
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

    @property
    def objectives(self) -> list[str]:
        """The objectives of a Pareto run (``--objectives``); [] for a single-objective run."""
        return fronts.objective_names(self.config)


def _open(out: str | Path) -> tuple[Path, str, str]:
    out = Path(out)
    if not (out / "run.json").is_file():
        raise NasforgeError(f"{out} holds no nasforge run (no run.json)")
    url, name = run_meta(out)
    return out, url, name


def load_run(out: str | Path) -> RunData:
    """Read a run's settings, trials and timestamps (safe while the search is running)."""
    out, url, name = _open(out)
    store = RunStore(url, name, create=False, read_only=True)
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
    return RunStore(url, name, create=False, read_only=True).get("config")


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


def chosen_as(run: RunData) -> str | None:
    """Why a Pareto run's chosen trial was chosen (None for a single-objective run or no trial)."""
    if not run.objectives or run.best is None:
        return None
    if run.best.violation > 0:
        return "the trial nearest to the limits (no trial is within them)"
    return "the knee of the Pareto front"


def _pareto_facts(run: RunData) -> list[tuple[str, Any]]:
    """A Pareto run's answer: the chosen trial and why, the front and its hypervolume."""
    ms = fronts.measures(run.objectives)
    done = fronts.scored(run.trials, len(ms))
    front = fronts.front(done)
    ref = fronts.reference([run.trials], len(ms))
    facts: list[tuple[str, Any]] = [
        ("chosen trial", run.best.number if run.best else None), ("chosen as", chosen_as(run)),
        ("chosen objectives", fronts.objective_text(run.best, ms) if run.best else None),
        ("Pareto front size", len(front)),
        ("Pareto front trials", ", ".join(str(t.number) for t in sorted(front, key=lambda t: t.number)) or None),
        ("front hypervolume", fronts.hypervolume(done, ref) if ref else None)]
    over = sum(t.violation > 0 for t in done)
    skipped = sum(t.state == "skipped" for t in run.trials)
    facts += [("over a limit", over)] if over else []
    facts += [("skipped (over a limit before training)", skipped)] if skipped else []
    return facts


def _facts(run: RunData) -> list[tuple[str, Any]]:
    finished = [t for t in run.trials if t.finished]
    failed = sum(t.state == "failed" for t in finished)
    cfg = run.config or {}
    answer = _pareto_facts(run) if run.objectives else [("best trial", run.best.number if run.best else None)]
    return [("directory", str(run.out)), ("storage", _safe_url(run.url)), ("study", run.study),
            ("data", data_label(run)), ("strategy", (cfg.get("strategy") or {}).get("name", "?")),
            ("search space", (cfg.get("space") or {}).get("family", "?")), ("evaluations", len(finished)), ("failed", failed),
            ("interrupted attempts", sum(t.interrupted for t in run.trials)),
            ("running", sum(t.state == "running" for t in run.trials)),
            *answer,
            ("wall-clock (s)", max(run.wall.values()) if run.wall else None)]


def shown_settings(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """The settings that shaped the run: a tabular benchmark trains and measures nothing, so
    its data, training and measurement defaults would only mislead."""
    if config and fronts.objective_names(config):  # a Pareto run: the fitness weights play no part
        config = {k: v for k, v in config.items() if k != "objective"}
    if not config or not config.get("benchmark"):
        return config
    kept = {k: v for k, v in config.items() if k not in ("data", "train", "measure", "space")}
    return {**kept, "space": {"family": (config.get("space") or {}).get("family")}}


def _objective_value(t: TrialRecord, ms: Sequence[Any], k: int) -> Any:
    """Objective ``k`` of a trial as measured (a count stays an int), None when it has none."""
    if t.values is None or len(t.values) != len(ms):
        return None
    measured = t.metrics.get(ms[k].metric)
    return measured if plots.usable(measured) is not None and float(measured) == t.values[k] else plots.usable(t.values[k])


def _score_columns(run: RunData) -> tuple[list[html.Column], Any]:
    """The columns a trial is judged by, and a function giving a trial's cells for them: the
    fitness, or in a Pareto run each objective, whether the trial is on the front, and how far
    it is over a limit (when any trial is)."""
    ms = fronts.measures(run.objectives)
    if not ms:
        return [html.Column("fitness", "fitness", True)], lambda t: [plots.usable(t.fitness)]
    on_front = {t.number for t in fronts.front(fronts.scored(run.trials, len(ms)))}
    limits = any(t.violation > 0 for t in run.trials)
    columns = [html.Column(f"objective-{m.name}", f"{m.name} ({fronts.direction(m)})", True) for m in ms]
    columns += [html.Column("front", "on front")] + ([html.Column("violation", "over limit by", True)] if limits else [])

    def cells(t: TrialRecord) -> list[Any]:
        return ([_objective_value(t, ms, k) for k in range(len(ms))] + [t.number in on_front]
                + ([t.violation if t.violation > 0 else None] if limits else []))

    return columns, cells


def _trial_table(run: RunData) -> html.Table:
    objective_metrics = {m.metric for m in fronts.measures(run.objectives)}  # shown as objectives already
    metric_cols = [(k, label) for k, label in METRICS
                   if k not in objective_metrics and any(k in t.metrics for t in run.trials)]
    has_gen = any("generation" in t.info for t in run.trials)
    has_rungs = any(t.rungs for t in run.trials)  # multi-fidelity: the epochs each trial reached
    score_cols, score = _score_columns(run)
    columns = [html.Column("trial", "#", True), html.Column("state", "state"), html.Column("genome", "genome"),
               html.Column("operator", "operator"), html.Column("parents", "parents")]
    columns += [html.Column("generation", "generation", True)] if has_gen else []
    columns += [html.Column("epochs", "epochs reached (rung)", True)] if has_rungs else []
    columns += score_cols + [html.Column(k, label, True) for k, label in metric_cols]
    columns += [html.Column("error", "error", cls="error")]
    rows = []
    for t in sorted(run.trials, key=lambda t: t.number):
        state = t.state + (" (interrupted)" if t.interrupted else "")
        values: list[Any] = [t.number, state, drawing.summary(t), t.operator, ", ".join(map(str, t.parents))]
        values += [t.info.get("generation")] if has_gen else []
        values += [_reached(t)] if has_rungs else []
        values += score(t) + [t.metrics.get(k) for k, _ in metric_cols] + [t.error or ""]
        klass = "best" if run.best is not None and t.number == run.best.number else t.state
        rows.append(({"data-trial": str(t.number), "class": klass}, values))
    return html.Table("trial-table", columns, rows)


def _reached(t: TrialRecord) -> str | None:
    """'9 (rung 3)': how far a multi-fidelity trial trained."""
    done = [e for e in t.rungs if not e.get("failed")]
    return f"{done[-1]['epochs']} (rung {done[-1]['rung'] + 1})" if done else None


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(v if isinstance(v, str) else json.dumps(v, sort_keys=True) for v in value)
    return value if isinstance(value, str) or value is None else json.dumps(value, sort_keys=True)


def _lemonade(run: RunData) -> html.Table | None:
    """LEMONADE: each iteration's instructions, the designer that wrote them and what changed."""
    rows = [t for t in sorted(run.trials, key=lambda t: t.number) if any(k in t.info for k in LEMONADE_KEYS)]
    if not rows:
        return None
    ms = fronts.measures(run.objectives)
    score = (html.Column("objectives", "objectives") if ms else html.Column("fitness", "fitness", True))
    columns = [html.Column("trial", "#", True), html.Column("iteration", "iteration", True),
               html.Column("designer", "designer"), html.Column("instructions", "instructions", cls="text"),
               html.Column("changes", "what changed", cls="text"), score, html.Column("state", "state")]
    data = [({"data-iteration": str(t.number)},
             [t.number, t.info.get("ask", t.info.get("iteration")), _text(t.info.get("designer")),
              _text(t.info.get("instructions")), _text(t.info.get("changes")),
              (fronts.objective_text(t, ms) if t.values else None) if ms else plots.usable(t.fitness), t.state])
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
    ms = fronts.measures(run.objectives)
    facts: list[tuple[str, Any]] = [("trial", b.number), ("genome", drawing.summary(b))]
    if ms:  # a Pareto run: no fitness; why this trial, and its objectives in their units
        facts += [("chosen as", chosen_as(run))]
        facts += [(f"{m.name} ({fronts.direction(m)}, {m.unit})", _objective_value(b, ms, k)) for k, m in enumerate(ms)]
        facts += [("over limit by", b.violation)] if b.violation > 0 else []
    else:
        facts += [("fitness", plots.usable(b.fitness))]
    shown = {m.metric for m in ms}
    facts += [(label, b.metrics[k]) for k, label in METRICS if k in b.metrics and k not in shown]
    facts += [("energy source", b.metrics["energy_source"])] if "energy_source" in b.metrics else []
    model = BestModel(b.number, facts, drawing.draw_genome(b.genome), drawing.draw_lineage(b, run.trials))
    return html.Section("best", "Chosen model" if ms else "Best model", "best", model)


def _pareto_sections(run: RunData) -> list[html.Section]:
    """A Pareto run's fronts (every pair of objectives) and hypervolume over evaluations."""
    ms = fronts.measures(run.objectives)
    sections = []
    svg = fronts.pairs_figure(run.trials, ms, run.best.number if run.best else None)
    if svg is not None:
        over = "; hollow red, one over a limit" if any(t.violation > 0 for t in fronts.scored(run.trials, len(ms))) else ""
        sections.append(html.Section(
            "fronts", "Pareto fronts", "figure", svg,
            f"Every pair of objectives: grey, each completed trial{over}; blue, the trials no other beats on this pair"
            f"{' (within the limits)' if over else ''}; star, the chosen model, the knee of the front of all "
            "objectives. Hover over a point for its trial, genome and objective values."))
    ref = fronts.reference([run.trials], len(ms))
    if ref is not None:
        xs, hv = fronts.hypervolume_series(run.trials, ref)
        sections.append(html.Section("hypervolume", "Hypervolume over evaluations", "figure",
                                     fronts.hypervolume_figure([(run.label, xs, hv)]), _hypervolume_note(ms, ref)))
    return sections


def _hypervolume_note(ms: Sequence[Any], ref: fronts.Reference) -> str:
    return ("Hypervolume of the Pareto front of the trials within the limits, after each evaluation in the order "
            "they were told to the strategy. Each objective is scaled so that the reference point is 0 and the best "
            "value any completed trial reached is 1 (1 would be one trial best at everything). Reference point: "
            f"each objective's worst value over all completed trials, {fronts.MARGIN:.0%} of its range further "
            f"so the extreme trials count: {ref.describe(ms)}.")


def render_report(run: RunData) -> str:
    """The report page of one run, as a string."""
    sections = [html.Section("settings", "Settings", "settings", html.settings_groups(shown_settings(run.config), _facts(run))),
                _best_section(run)]
    if run.objectives:  # a Pareto run: no single fitness to follow
        sections += _pareto_sections(run)
    elif any(t.finished for t in run.trials):
        prog = plots.progress(run.trials, run.wall)
        sections.append(html.Section("progress", "Progress", "figure", plots.progress_figure([(run.label, prog)]),
                                     "Best so far, in the order results were told to the strategy."))
    costs = [] if run.objectives else plots.measured_costs(run.trials)
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
    write_text(target, render_report(run))
    return target


def _labels(runs: Sequence[RunData]) -> list[str]:
    """Directory names, with the parent added where two runs share a name."""
    names = [r.label for r in runs]
    return [f"{r.out.resolve().parent.name}/{n}" if names.count(n) > 1 else n for r, n in zip(runs, names)]


def _shared_reference(runs: Sequence[RunData]) -> tuple[list[str], fronts.Reference | None]:
    """The objectives of the first Pareto run and one hypervolume reference for every run
    searched on those same objectives (so their hypervolumes compare)."""
    names = next((r.objectives for r in runs if r.objectives), [])
    same = [r.trials for r in runs if names and r.objectives == names]
    return names, fronts.reference(same, len(names)) if same else None


def _best_score(r: RunData) -> Any:
    """A run's best fitness, or for a Pareto run its chosen trial's objective values."""
    if r.best is None:
        return None
    if r.objectives:
        return fronts.objective_text(r.best, fronts.measures(r.objectives))
    return plots.usable(r.best.fitness)


def render_comparison(runs: Sequence[RunData]) -> str:
    labels = _labels(runs)
    names, ref = _shared_reference(runs)

    def front_hv(r: RunData) -> float | None:
        return fronts.hypervolume(r.trials, ref) if ref is not None and r.objectives == names else None

    def front_size(r: RunData) -> int | None:
        return len(fronts.front(fronts.scored(r.trials, len(r.objectives)))) if r.objectives else None

    pareto_runs = any(r.objectives for r in runs)
    quantities: list[tuple[str, Any]] = [
        ("data", lambda r: data_label(r)), ("strategy", lambda r: (r.config or {}).get("strategy", {}).get("name")),
        ("space", lambda r: (r.config or {}).get("space", {}).get("family")),
        ("evaluations", lambda r: sum(t.finished for t in r.trials)),
        ("failed", lambda r: sum(t.finished and t.state == "failed" for t in r.trials)),
        ("best trial", lambda r: r.best.number if r.best else None),
        ("best genome", lambda r: drawing.summary(r.best) if r.best else None),
        ("best fitness / chosen objectives" if pareto_runs else "best fitness", _best_score),
        ("objectives", lambda r: ", ".join(r.objectives) or None), ("chosen as", chosen_as),
        ("Pareto front size", front_size), ("front hypervolume", front_hv)]
    quantities += [(f"best {label}", lambda r, k=k: r.best.metrics.get(k) if r.best else None) for k, label in METRICS]
    quantities += [("total train s", lambda r: sum(plots.usable(t.metrics.get("train_seconds")) or 0 for t in r.trials)),
                   ("wall-clock s", lambda r: max(r.wall.values()) if r.wall else None)]
    rows = [({"data-quantity": name}, [name] + [get(r) for r in runs]) for name, get in quantities]
    rows = [row for row in rows if any(v is not None for v in row[1][1:])]
    columns = [html.Column("quantity", "")] + [html.Column(f"run{i}", label) for i, label in enumerate(labels)]
    sections = [html.Section("summary", "Side by side", "table", html.Table("compare-table", columns, rows, sortable=False))]
    progress = [(label, plots.progress(r.trials, r.wall)) for label, r in zip(labels, runs) if any(t.finished for t in r.trials)]
    if progress:
        sections.append(html.Section("progress", f"Best validation {plots.score_name(t for r in runs for t in r.trials)} so far",
                                     "figure", plots.progress_figure(progress)))
    if ref is not None:
        curves = [(label, *fronts.hypervolume_series(r.trials, ref)) for label, r in zip(labels, runs) if r.objectives == names]
        sections.append(html.Section("hypervolume", "Hypervolume over evaluations", "figure",
                                     fronts.hypervolume_figure(curves),
                                     f"Runs searched on {', '.join(names)}, one reference for all. "
                                     + _hypervolume_note(fronts.measures(names), ref)))
    costs = [c for c in plots.COSTS if any(c in plots.measured_costs(r.trials) for r in runs)]
    if costs:
        chosen = [(label, r.trials, r.best.number if r.best else None) for label, r in zip(labels, runs)]
        sections.append(html.Section("pareto", "Pareto fronts", "figure", plots.pareto_figure(chosen, costs),
                                     f"Each run's front of validation {plots.score_name(t for r in runs for t in r.trials)} "
                                     "against cost; stars mark the chosen models."))
    cards = [(label, r.out, drawing.draw_genome(r.best.genome) if r.best else None) for label, r in zip(labels, runs)]
    sections.append(html.Section("runs", "Best architectures", "runs", cards))
    return html.render("compare.html.j2", sections, labels=labels)


def write_comparison(runs: Sequence[str | Path], path: str | Path) -> Path:
    """Write one HTML page comparing ``runs`` (run directories) and return its path."""
    if not runs:
        raise NasforgeError("give at least one run to compare")
    data = [load_run(r) for r in runs]
    target = Path(path)
    write_text(target, render_comparison(data))
    return target
