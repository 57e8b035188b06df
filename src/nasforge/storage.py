"""The trial store: Optuna's RDB storage (SQLite file by default, any SQLAlchemy URL).

One nasforge run is one Optuna study (named after the run directory, so many runs can share
one PostgreSQL database); one evaluation is one Optuna trial
whose value is the fitness (or, in a Pareto search, whose values are the objectives, in the
study's directions) and whose two user attributes hold the proposal (genome,
parents, operator, and the bookkeeping resume needs (``ask_index``: the order of asks; ``asked_after``: how many tells
had happened when it was asked; ``told_seq``: the order of tells) and the result (metrics or error). Optuna gives crash-safe
commits and lets ``optuna-dashboard`` open our runs unchanged. A candidate skipped before
training (it broke a limit known from the built network) is a PRUNED trial: stored and told
to the strategy, but not counted against the budget. In a multi-fidelity search each rung a
candidate finishes is appended to its ``rungs`` attribute (epochs, metrics) and, with one
objective, reported as an intermediate value; one stopped at a rung is PRUNED with its
``stopped_at`` epochs (it counts against the budget: it was evaluated, briefly).

The study's process is the only writer (workers return results to it), so SQLite is safe.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import TrialState

from .errors import NasforgeError
from .files import environment_problem

optuna.logging.set_verbosity(optuna.logging.WARNING)


def sqlite_url(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"


@dataclass
class TrialRecord:
    """One evaluation as stored, in plain Python types."""

    number: int
    state: str  # "complete", "failed", "running", "skipped" (never trained), "pruned" (stopped at a rung)
    genome: dict[str, Any]
    fitness: float | None  # a Pareto search: None (see values)
    metrics: dict[str, Any] = field(default_factory=dict)
    parents: list[int] = field(default_factory=list)
    operator: str = "random"
    info: dict[str, Any] = field(default_factory=dict)
    ask_index: int = 0
    asked_after: int = 0
    told_seq: int | None = None
    error: str | None = None
    interrupted: bool = False
    values: list[float] | None = None  # what the Optuna trial holds: the fitness, or each objective
    violation: float = 0.0  # how far the metrics break the run's limits (0: within them all)
    point: tuple[float, ...] | None = None  # the values with every direction maximised (minimised ones negated)
    rungs: list[dict[str, Any]] = field(default_factory=list)  # multi-fidelity: each rung finished, in order
    repeat_of: int | None = None  # a genome evaluated before: the trial whose result it reused

    @property
    def finished(self) -> bool:
        """Counts against the budget: complete or failed, but not cut off by a stop."""
        return self.state in ("complete", "failed", "pruned") and not self.interrupted

    @property
    def told(self) -> bool:
        """Told to the strategy: finished, or skipped before training."""
        return self.finished or self.state == "skipped"


_STATES = {TrialState.COMPLETE: "complete", TrialState.FAIL: "failed", TrialState.RUNNING: "running",
           TrialState.WAITING: "running", TrialState.PRUNED: "skipped"}


class RunStore:
    def __init__(self, url: str, name: str, create: bool, directions: list[str] | None = None, read_only: bool = False):
        """Open (``create``: or start) the study ``name`` at ``url``. ``read_only``: for commands
        that only read (show, report, export, load_model); a SQLite run is then opened so that
        not a byte of it changes, and one this process may not write (another user's, a
        read-only mount) can still be read."""
        database = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
        if not create and database is not None and not database.is_file():  # optuna would make an empty one
            raise NasforgeError(f"the run's database {database} is missing; nothing can be read without it")
        self.read_only = read_only and not create
        if not self.read_only and database is not None and database.is_file() and not _writable(database):
            raise NasforgeError(f"cannot write the run's database {database}: this process may only read it (another "
                                "user's run, a read-only mount); show, report --output and export --output still work")
        self.url, self.name = url, name
        try:
            if self.read_only and database is not None and not _writable(database) and _has_journal(database):
                # immutable=1 would ignore the trials still in the write-ahead log: read a private copy of both
                self._snapshot = tempfile.TemporaryDirectory(prefix="nasforge-read-")
                copy = Path(self._snapshot.name) / database.name
                for suffix in ("", "-wal"):
                    shutil.copyfile(f"{database}{suffix}", f"{copy}{suffix}")
                storage = optuna.storages.RDBStorage(f"sqlite:///{copy}", skip_table_creation=True)
            elif self.read_only and database is not None:  # no checkpoint, no journal; immutable where unwritable
                immutable = "" if _writable(database) else "&immutable=1"
                storage = optuna.storages.RDBStorage(f"sqlite:///file:{database}?mode=ro{immutable}&uri=true",
                                                     skip_table_creation=True)
            else:
                # a server's idle connections may be dropped: test each before use (a SQLite file needs no test)
                storage = optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": not url.startswith("sqlite")},
                                                     skip_table_creation=self.read_only)
                if url.startswith("sqlite"):
                    _fast_durable_sqlite(storage)
            names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        except Exception as exc:  # bad URL, driver missing, server down, a damaged file
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            problem = environment_problem(exc)
            if problem is not None:
                raise NasforgeError(f"cannot open the run's database {database or url}: {problem}") from None
            if database is not None and database.is_file() and database.stat().st_size:
                raise NasforgeError(
                    f"the run's database {database} cannot be read ({reason}); the trials are lost with it, but "
                    f"{database.parent / 'best'} still holds the chosen model and models/ each trial's weights; "
                    "a copy of study.db from before the damage restores the run") from None
            raise NasforgeError(f"cannot open storage {url}: {reason}") from None
        if name not in names and not create:
            held = ", ".join(repr(n) for n in names) or "no run"
            raise NasforgeError(f"no nasforge run named {name!r} in {url} (it holds {held}); if run.json was edited, "
                                "its \"study\" must name one of these")
        if name in names:  # an existing study keeps the directions it was made with
            self.study = optuna.load_study(storage=storage, study_name=name)
        else:
            self.study = optuna.create_study(storage=storage, study_name=name, directions=directions or ["maximize"])
        # Trials are written through the storage's public API, not optuna.Trial and study.tell: nasforge
        # never samples through Optuna, and the sampler and validation steps of ask and tell cost several
        # reads per call (a third of the store's time per candidate in a multi-fidelity search). The
        # study reads them back as it reads trials another process wrote.
        self._backend, self._study_id = storage, storage.get_study_id_from_name(name)
        self._ids: dict[int, int] = {}  # trial number -> Optuna trial id, for the trials this process writes
        self._last_value: dict[int, float] = {}  # the last intermediate value reported, a pruned trial's value

    # --- run-level attributes ---
    def get(self, key: str, default: Any = None) -> Any:
        return self.study.user_attrs.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.study.set_user_attr(key, value)

    # --- trials ---
    def start(self, proposal: dict[str, Any]) -> int:
        """Store an ask as a running trial, its proposal in the same write."""
        template = optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs={"proposal": proposal})
        trial_id = self._backend.create_new_trial(self._study_id, template_trial=template)
        number = self._backend.get_trial_number_from_id(trial_id)
        self._ids[number] = trial_id
        return number

    def finish(self, number: int, values: list[float], metrics: dict[str, Any], told_seq: int,
               violation: float = 0.0) -> None:
        """Store a result: the fitness (a list of one) or each objective, in the study's directions."""
        directions = self.study.directions
        assert len(values) == len(directions), f"{len(values)} values for {len(directions)} objectives"
        result = {"metrics": _json_safe(metrics), "told_seq": told_seq} | ({"violation": violation} if violation else {})
        worst = [-1e308 if d == optuna.study.StudyDirection.MAXIMIZE else 1e308 for d in directions]
        self._close(number, {"result": result}, TrialState.COMPLETE,
                    [float(v) if math.isfinite(v) else w for v, w in zip(values, worst)])

    def skip(self, number: int, reason: str, metrics: dict[str, Any], told_seq: int, violation: float,
             repeat_of: int | None = None) -> None:
        """Store a candidate that was not trained (a PRUNED trial), with what was measured of it
        (or, for a repeat, the result of the trial it repeats)."""
        result = {"skipped": reason, "metrics": _json_safe(metrics), "told_seq": told_seq,
                  "violation": violation} | ({"repeat_of": repeat_of} if repeat_of is not None else {})
        self._close(number, {"result": result}, TrialState.PRUNED)

    def fail(self, number: int, error: str, told_seq: int | None, interrupted: bool = False,
             extra: dict[str, Any] | None = None) -> None:
        """Record a failed trial; also closes a trial left running by a process that died."""
        result = {"error": error, "interrupted": interrupted, "told_seq": told_seq, **(extra or {})}
        self._close(number, {"result": result}, TrialState.FAIL)

    def rung(self, number: int, rungs: list[dict[str, Any]], value: float | None) -> None:
        """Store the rungs a running trial has finished (the last one just now); ``value``: its
        single objective at that rung, an intermediate value Optuna's dashboard plots."""
        trial_id = self._trial_id(number)
        if value is not None and math.isfinite(value):
            self._backend.set_trial_intermediate_value(trial_id, int(rungs[-1]["epochs"]), float(value))
            self._last_value[number] = float(value)
        self._backend.set_trial_user_attr(trial_id, "rungs", [{**r, "metrics": _json_safe(r["metrics"])} for r in rungs])

    def prune(self, number: int, metrics: dict[str, Any], told_seq: int, stopped_at: int, violation: float = 0.0) -> None:
        """Store a candidate stopped at a rung: PRUNED, with its metrics there and, as Optuna's
        own pruning does, its last intermediate value as the trial's value."""
        last = self._last_value.get(number)
        if last is None and number not in self._ids:  # rungs reported by a process that died
            reported = self._backend.get_trial(self._trial_id(number)).intermediate_values
            last = reported[max(reported)] if reported else None
        result = {"metrics": _json_safe(metrics), "told_seq": told_seq, "stopped_at": stopped_at} | (
            {"violation": violation} if violation else {})
        self._close(number, {"result": result}, TrialState.PRUNED,
                    [last] if last is not None and len(self.study.directions) == 1 else None)

    def _close(self, number: int, attrs: dict[str, Any], state: TrialState, values: list[float] | None = None) -> None:
        """Write a trial's last attributes, then its final state (a trial is only finished once
        everything it holds is stored)."""
        trial_id = self._trial_id(number)
        for key, value in attrs.items():
            self._backend.set_trial_user_attr(trial_id, key, value)
        self._backend.set_trial_state_values(trial_id, state, values)
        self._ids.pop(number, None)
        self._last_value.pop(number, None)

    def _trial_id(self, number: int) -> int:
        """The Optuna id of trial ``number``, also of one a process that died left running."""
        trial_id = self._ids.get(number)
        if trial_id is None:
            trial_id = self._backend.get_trial_id_from_study_id_trial_number(self._study_id, number)
        return trial_id

    def records(self) -> list[TrialRecord]:
        signs = [1.0 if d == optuna.study.StudyDirection.MAXIMIZE else -1.0 for d in self.study.directions]
        records = [self._record(t) for t in self.study.get_trials(deepcopy=False)]
        for r in records:
            if r.values is not None:
                r.point = tuple(s * v for s, v in zip(signs, r.values))
        return records

    @staticmethod
    def _record(t: optuna.trial.FrozenTrial) -> TrialRecord:
        p, r = t.user_attrs.get("proposal", {}), t.user_attrs.get("result", {})
        values = list(t.values) if t.state == TrialState.COMPLETE and t.values else None
        state = _STATES.get(t.state, "failed")
        if state == "skipped" and "stopped_at" in r:
            state = "pruned"
        return TrialRecord(
            number=t.number, state=state, genome=p.get("genome", {}),
            fitness=values[0] if values and len(values) == 1 else None, metrics=r.get("metrics", {}),
            parents=p.get("parents", []), operator=p.get("operator", "random"), info=p.get("info", {}),
            ask_index=p.get("ask_index", t.number), asked_after=p.get("asked_after", 0),
            told_seq=r.get("told_seq"), error=r.get("error") or r.get("skipped"), interrupted=r.get("interrupted", False),
            values=values, violation=float(r.get("violation", 0.0)),
            rungs=t.user_attrs.get("rungs", []) + ([r["rung_failed"]] if "rung_failed" in r else []),
            repeat_of=r.get("repeat_of"),
        )


def _has_journal(database: Path) -> bool:
    """Whether committed trials may still sit in the SQLite write-ahead log beside the file."""
    wal = Path(f"{database}-wal")
    return wal.is_file() and wal.stat().st_size > 0


def _writable(database: Path) -> bool:
    """Whether this process may write the SQLite file and its directory (its journal lives there)."""
    return os.access(database, os.W_OK) and os.access(database.parent, os.W_OK)


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

