"""The trial store: Optuna's RDB storage (SQLite file by default, any SQLAlchemy URL).

One nasforge run is one Optuna study (named after the run directory, so many runs can share
one PostgreSQL database); one evaluation is one Optuna trial
whose value is the fitness and whose two user attributes hold the proposal (genome,
parents, operator, and the bookkeeping resume needs (``ask_index``: the order of asks; ``asked_after``: how many tells
had happened when it was asked; ``told_seq``: the order of tells) and the result (metrics or error). Optuna gives crash-safe
commits and lets ``optuna-dashboard`` open our runs unchanged.

The study's process is the only writer (workers return results to it), so SQLite is safe.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import TrialState

from .errors import NasforgeError

optuna.logging.set_verbosity(optuna.logging.WARNING)


def sqlite_url(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"


@dataclass
class TrialRecord:
    """One evaluation as stored, in plain Python types."""

    number: int
    state: str  # "complete", "failed", "running"
    genome: dict[str, Any]
    fitness: float | None
    metrics: dict[str, Any] = field(default_factory=dict)
    parents: list[int] = field(default_factory=list)
    operator: str = "random"
    info: dict[str, Any] = field(default_factory=dict)
    ask_index: int = 0
    asked_after: int = 0
    told_seq: int | None = None
    error: str | None = None
    interrupted: bool = False

    @property
    def finished(self) -> bool:
        """Counts against the budget: complete or failed, but not cut off by a stop."""
        return self.state in ("complete", "failed") and not self.interrupted


_STATES = {TrialState.COMPLETE: "complete", TrialState.FAIL: "failed", TrialState.RUNNING: "running",
           TrialState.WAITING: "running", TrialState.PRUNED: "failed"}


class RunStore:
    def __init__(self, url: str, name: str, create: bool):
        database = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
        if not create and database is not None and not database.is_file():  # optuna would make an empty one
            raise NasforgeError(f"the run's database {database} is missing; nothing can be read without it")
        try:
            storage = optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        except Exception as exc:  # bad URL, driver missing, server down
            raise NasforgeError(f"cannot open storage {url}: {str(exc).splitlines()[0]}") from None
        self.url, self.name = url, name
        if url.startswith("sqlite"):
            _fast_durable_sqlite(storage)
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        if name not in names and not create:
            raise NasforgeError(f"no nasforge run named {name!r} in {url}")
        self.study = optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True)
        self._open: dict[int, optuna.Trial] = {}

    # --- run-level attributes ---
    def get(self, key: str, default: Any = None) -> Any:
        return self.study.user_attrs.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.study.set_user_attr(key, value)

    # --- trials ---
    def start(self, proposal: dict[str, Any]) -> int:
        """Store an ask as a running trial (one attribute, so one write)."""
        trial = self.study.ask()
        trial.set_user_attr("proposal", proposal)
        self._open[trial.number] = trial
        return trial.number

    def finish(self, number: int, fitness: float, metrics: dict[str, Any], told_seq: int) -> None:
        trial = self._open.pop(number)
        trial.set_user_attr("result", {"metrics": _json_safe(metrics), "told_seq": told_seq})
        self.study.tell(trial, fitness if math.isfinite(fitness) else -1e308)

    def fail(self, number: int, error: str, told_seq: int | None, interrupted: bool = False) -> None:
        """Record a failed trial; also closes a trial left running by a process that died."""
        trial = self._open.pop(number, None)
        if trial is None:
            frozen = next(t for t in self.study.get_trials(deepcopy=False) if t.number == number)
            trial = optuna.trial.Trial(self.study, frozen._trial_id)
        trial.set_user_attr("result", {"error": error, "interrupted": interrupted, "told_seq": told_seq})
        self.study.tell(trial, state=TrialState.FAIL)

    def records(self) -> list[TrialRecord]:
        return [self._record(t) for t in self.study.get_trials(deepcopy=False)]

    @staticmethod
    def _record(t: optuna.trial.FrozenTrial) -> TrialRecord:
        p, r = t.user_attrs.get("proposal", {}), t.user_attrs.get("result", {})
        return TrialRecord(
            number=t.number, state=_STATES.get(t.state, "failed"), genome=p.get("genome", {}),
            fitness=t.value if t.state == TrialState.COMPLETE else None, metrics=r.get("metrics", {}),
            parents=p.get("parents", []), operator=p.get("operator", "random"), info=p.get("info", {}),
            ask_index=p.get("ask_index", t.number), asked_after=p.get("asked_after", 0),
            told_seq=r.get("told_seq"), error=r.get("error"), interrupted=r.get("interrupted", False),
        )


def _fast_durable_sqlite(storage: optuna.storages.RDBStorage) -> None:
    """WAL journal with synchronous=NORMAL: a commit survives a killed process (what resume
    needs) without an fsync per write; only a power cut can lose the last commits."""
    def on_connect(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    sqlalchemy.event.listen(storage.engine, "connect", on_connect)
    storage.engine.dispose()


def _json_safe(metrics: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN/inf: store them as strings so nothing is lost or rejected."""
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}

