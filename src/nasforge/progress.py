"""Live progress of a search: a rich bar on a terminal, one plain line per finished trial on
stderr without one (a log file, CI, nohup), JSON lines on stdout for scripts, or nothing.

``auto`` picks the bar when stderr is a terminal and plain lines otherwise, so a search
whose output goes to a file still says what it is doing while it runs.
"""
from __future__ import annotations

import json
import math
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from . import pareto
from .data.targets import score_key
from .objectives import format_value
from .storage import TrialRecord

if TYPE_CHECKING:
    from .study import Study


MODES = ("bar", "lines", "jsonl", "quiet")


class ProgressReporter:
    """Call as the study's callback; use as a context manager around ``study.run``."""

    def __init__(self, mode: str, total: int, done: int, best: float | None = None):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "lines"
        if mode not in MODES:
            from .errors import NasforgeError

            raise NasforgeError(f"unknown progress {mode!r}; choose from auto, {', '.join(MODES)}")
        self.mode, self.total, self.best, self.done = mode, total, best, done
        self.points: list[tuple[float, ...]] = []  # a Pareto search: the feasible points so far
        self.progress: Progress | None = None
        if mode == "bar":
            self.progress = Progress(
                TextColumn("[bold]searching"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                console=Console(stderr=True), transient=False,
            )
            self.task_id = self.progress.add_task(self._label(), total=total, completed=done)

    def _label(self) -> str:
        if self.points:
            return f"front {len(pareto.pareto_front(self.points))}"
        return f"best {self.best:.4f}" if self.best is not None else "best -"

    def _result(self, record: TrialRecord, study: Study) -> str:
        if record.state == "pruned":
            return f"stopped after {record.rungs[-1]['epochs'] if record.rungs else '?'} epochs"
        if record.state != "complete":
            return f"{record.state}: {record.error}"
        if record.fitness is not None:
            return f"fitness {record.fitness:.4f}"
        return ", ".join(f"{name} {format_value(value)}" for name, value in zip(study.goal.names, record.values or []))

    def __enter__(self) -> ProgressReporter:
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress:
            self.progress.stop()

    def __call__(self, record: TrialRecord, study: Study) -> None:
        if record.fitness is not None and math.isfinite(record.fitness):
            self.best = record.fitness if self.best is None else max(self.best, record.fitness)
        if record.fitness is None and record.point is not None and record.violation <= 0:
            self.points.append(record.point)
        self.done += 1
        if self.progress:
            self.progress.update(self.task_id, advance=1, description=self._label())
        elif self.mode == "lines":
            print(f"trial {record.number} ({self.done}/{self.total}) {self._result(record, study)}; {self._label()}",
                  file=sys.stderr,
                  flush=True)
        elif self.mode == "jsonl":
            line = {"trial": record.number, "state": record.state, "fitness": record.fitness, "values": record.values,
                    "best": self.best,
                    "genome": record.genome, "parents": record.parents, "error": record.error,
                    **{k: record.metrics.get(k) for k in (score_key(record.metrics, "val"), score_key(record.metrics, "test"),
                                                          "params", "train_seconds")}}
            print(json.dumps(line), file=sys.stdout, flush=True)
