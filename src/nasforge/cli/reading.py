"""Commands that read runs and data without training anything: show, datasets, report,
compare, dashboard, and the summary printed at the end of a search. Torch-free; rich, Optuna
and the report are imported by the commands that use them, so ``--help`` stays instant."""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data import BUILTINS
from ..data.targets import quality_columns, quality_text
from ..errors import NasforgeError
from ..strategies import STRATEGIES

if TYPE_CHECKING:
    from ..config import SearchConfig
    from ..storage import TrialRecord


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def genome_text(record: TrialRecord) -> str:
    """A genome's summary, escaped: '[fa,usf]' is text, not a rich style tag."""
    from rich.markup import escape

    from ..spaces import genome_from_dict

    try:
        return escape(genome_from_dict(record.genome).summary())
    except NasforgeError:
        return escape(json.dumps(record.genome))


def print_best(out: Path, quiet: bool = False, config: SearchConfig | None = None) -> None:
    """The end of a search: the strategy's own summary (if it has one), then the best trial."""
    from ..runs import best_trial, read_trials

    trials = read_trials(out)
    best = best_trial(trials)
    if quiet:
        return
    if config is not None:
        summary = STRATEGIES.get(config.strategy.name).summary(trials, config.strategy)
        if summary:
            print(summary)
    from rich.console import Console
    from rich.markup import escape

    console = Console(soft_wrap=True)
    if best is None:
        failed = [t for t in trials if t.state == "failed"]
        first = failed[0].error if failed else "no trials"
        console.print(f"no candidate trained successfully in {out}; first error: {escape(str(first))}")
        return
    b, m = best, best.metrics
    if b.fitness is None:  # several objectives
        from ..runs import pareto_trials

        front = pareto_trials(trials)
        console.print(f"\nPareto front: {len(front)} trials ({', '.join(str(t.number) for t in front)}); "
                      f"see them with: nasforge show {out} --front")
        console.print(f"chosen: trial {b.number}, the knee of the front  {genome_text(b)}")
    else:
        console.print(f"\nbest: trial {b.number}  {genome_text(b)}")
    if b.violation > 0:
        console.print(f"  [red]no trial is within the limits; this one is the nearest ({b.error or ''})[/red]")
    console.print("  " + quality_text(m))
    if "latency_ms" in m:
        where = f" on {m['measured_on']}" if m.get("measured_on") else ""  # older runs did not record it
        trained = f" on {m['device']}" if m.get("device") and m.get("device") != m.get("measured_on") else ""
        console.print(f"  {m['params']} parameters, {m['flops']} FLOPs, latency {fmt(m['latency_ms'], 3)} ms, "
                      f"{fmt(m['fps'], 0)} samples/s{where}, trained in {fmt(m['train_seconds'], 2)} s{trained}")
    failed = sum(t.state == "failed" and not t.interrupted for t in trials)
    saved = f"saved to {out}/best/" + (f"; in Python: nasforge.load_model({str(out)!r})"
                                        if (out / "best" / "model.pt").is_file() else "")
    console.print(f"  {sum(t.finished for t in trials)} evaluations ({failed} failed); {saved}")


COSTS = [("params", "params"), ("flops", "FLOPs"), ("latency_ms", "latency ms"), ("train_seconds", "train s")]


def cmd_show(args: argparse.Namespace) -> None:
    from ..runs import best_trial, read_trials

    records = read_trials(args.run)
    trials = sorted(records, key=lambda t: t.number)
    if args.front:
        show_front(args, records)
        return
    if args.top:
        trials = top_trials(args.run, trials, args.top)
    if args.json:
        print(json.dumps([t.__dict__ for t in trials], indent=1, default=str))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..objectives import format_value

    multi = any(t.values and len(t.values) > 1 for t in records)
    columns = quality_columns(t.metrics for t in records) + COSTS
    fidelity = any(t.rungs for t in records)  # a multi-fidelity search: which rung each trial reached
    devices = sorted({t.metrics["device"] for t in records if t.metrics.get("device")})
    if len(devices) > 1:  # resumed on another device: say per trial where it trained
        columns = [*columns, ("device", "device")]
    table = Table(title=f"{args.run}: {len(records)} trials",
                  caption=f"trained on {devices[0]}" if len(devices) == 1 else None)
    for name in ["#", "status", "genome", "objectives" if multi else "fitness", *(["rung"] if fidelity else []),
                 *(label for _, label in columns), "parent", "operator"]:
        table.add_column(name, overflow="fold")
    best = best_trial(records)
    best_number = best.number if best else None
    for t in trials:
        chosen = " *chosen*" if multi else " *best*"
        status = t.state + (" (interrupted)" if t.interrupted else "") + (chosen if t.number == best_number else "")
        cells = [fmt(t.metrics.get(key), 3 if key == "latency_ms" else 2 if key == "train_seconds" else 4) for key, _ in columns]
        score = fmt(t.fitness) if t.fitness is not None or not t.values else " / ".join(
            format_value(v) for v in t.values)
        reached = [e for e in t.rungs if not e.get("failed")]
        rung = ([f"{reached[-1]['rung'] + 1} ({reached[-1]['epochs']} ep)" if reached else "-"] if fidelity else [])
        table.add_row(str(t.number), status, genome_text(t), score, *rung, *cells,
                      ",".join(map(str, t.parents)) or "-", t.operator)
        if t.error:
            table.add_row("", "", f"[red]{escape(t.error)}[/red]", *[""] * (len(columns) + 3 + fidelity))
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def top_trials(run: Path, trials: list[TrialRecord], n: int) -> list[TrialRecord]:
    """``show --top N``: the best N trained trials. One objective by fitness; several by Pareto
    rank, then crowding on the points a search ranks (sizes, times and energy on log10, as
    :meth:`Goal.ranking_point`), so that the small end of a front is not all crowded together."""
    from .. import pareto
    from ..objectives import MEASURES
    from ..runs import read_stored_config

    done = [t for t in trials if t.state == "complete" and t.point is not None]
    if not any(len(t.point) > 1 for t in done):
        return sorted(done, key=lambda t: (-t.violation, t.point[0]), reverse=True)[:n]
    names = read_stored_config(run).get("objectives") or []
    points = [tuple(MEASURES[name].ranked(v) for name, v in zip(names, t.values)) if len(names) == len(t.values or [])
              else t.point for t in done]
    keys = pareto.rank_keys(points, [t.violation for t in done])
    return [t for _, t in sorted(zip(keys, done), key=lambda kt: kt[0], reverse=True)][:n]


def show_front(args: argparse.Namespace, records: list[TrialRecord]) -> None:
    """``show --front``: the Pareto front of a search with several objectives."""
    from ..objectives import MEASURES, format_value
    from ..runs import best_trial, pareto_trials, read_stored_config

    names = read_stored_config(args.run).get("objectives") or []
    if len(names) < 2:
        raise NasforgeError(f"{args.run} searched one objective (no --objectives): it has a best trial, not a "
                            "front; see it with 'nasforge show RUN --top 1'")
    front, best = pareto_trials(records), best_trial(records)
    test_key, test_label = quality_columns(t.metrics for t in records)[1]
    if args.json:
        print(json.dumps([{"trial": t.number, "genome": t.genome, "chosen": best is not None and t.number == best.number,
                           **dict(zip(names, t.values or [])), test_key: t.metrics.get(test_key),
                           "within_limits": t.violation <= 0} for t in front], indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{args.run}: Pareto front, {len(front)} of {sum(t.state == 'complete' for t in records)} "
                        "trained trials", caption=f"* the chosen trial (the knee of the front); {test_label} is "
                                                  "read only, never searched on")
    for name in ["#", "genome", *(f"{n} ({MEASURES[n].direction[:3]})" for n in names), test_label]:
        table.add_column(name, overflow="fold")
    for t in sorted(front, key=lambda t: t.values or []):
        mark = " *" if best is not None and t.number == best.number else ""
        table.add_row(f"{t.number}{mark}", genome_text(t), *(format_value(v) for v in t.values or []),
                      fmt(t.metrics.get(test_key)))
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def cmd_datasets(args: argparse.Namespace) -> None:
    for name in sorted(BUILTINS):
        print(f"{name:10s} {BUILTINS[name].description}")
    print("your own:  --csv FILE --target COLUMN")


def cmd_report(args: argparse.Namespace) -> None:
    from ..report import write_report

    print(write_report(args.run, args.output))


def cmd_compare(args: argparse.Namespace) -> None:
    from ..report import write_comparison

    print(write_comparison(args.runs, args.output))


def cmd_dashboard(args: argparse.Namespace) -> None:
    from ..report import dashboard_command

    command = dashboard_command(args.run)
    if Path(command[0]).is_file() or shutil.which(command[0]):
        os.execvp(command[0], command)
    print("optuna-dashboard is not installed: pip install optuna-dashboard, then run:\n  " + " ".join(command))


