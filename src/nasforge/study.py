"""A run: its settings, its storage and the parts that search it, created or loaded.

``create_study`` starts a run in a directory, or continues the one there if its settings
are the same; ``load_study`` opens a run with its stored settings (Optuna's
``create_study`` / ``load_study``). Each builds the run's parts once, from the registries:
task (data), search space, evaluator; the strategy is built by the loop
(:mod:`nasforge.loop`), which replays the stored history into it.
"""
from __future__ import annotations

import fcntl
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from . import device
from .config import SearchConfig, build_config
from .data import Task, load_task, reload_task
from .errors import InvalidGenome, NasforgeError, TrialFailed
from .evaluators import EVALUATORS, Evaluator
from .files import remove_temporaries, write_bytes
from .loop import Callback, SearchLoop
from .objectives import Goal, check_task_objectives
from .proxies import NO_PROXY, ProxyScorer, make_scorer
from .runs import best_trial, read_meta, run_meta, write_meta
from .spaces import Genome, SearchSpace, genome_from_dict, make_space
from .storage import RunStore, TrialRecord
from .strategies import Strategy, check_strategy, make_strategy, strategy_class
from .trackers import open_trackers


@dataclass
class Parts:
    """What a configuration is searched with: data (None in table mode), space, evaluator."""

    task: Task | None
    space: SearchSpace
    evaluator: Evaluator
    proxy: ProxyScorer | None = None  # the run's zero-cost proxy (--proxy)


def build_parts(config: SearchConfig, out: Path, task: Task | None = None) -> Parts:
    """Each part from its registry; a bad dataset, space or pair of strategy and space fails here."""
    kind = EVALUATORS.get(config.evaluator_kind)
    if kind.needs_task:
        task = task or _load_configured_task(config)
        check_task_objectives(config.objectives, task.kind)
    space = make_space(config.space, task)
    check_strategy(config.strategy.name, space)
    if config.proxy != NO_PROXY and not strategy_class(config.strategy.name).uses_proxy:
        raise NasforgeError(f"the {config.strategy.name} strategy does not start from sampled genomes, so --proxy "
                            "cannot pick them; leave --proxy out or use another strategy")
    proxy = make_scorer(config.proxy, space, task, config.seed, config.benchmark.dataset if config.benchmark else None)
    return Parts(task, space, kind.from_config(config, task, space, out), proxy)


PLAN_BUDGET = "plan_budget"  # the run-level attribute holding the budget the strategy plans with


DEVICE = "device"  # run attribute: where the run last trained (the run header's words), to note a change


class Study:
    """An open run. Make one with :func:`create_study` or :func:`load_study`."""

    def __init__(self, out: Path, config: SearchConfig, store: RunStore, parts: Parts, lock: IO[str] | None):
        self.out, self.config, self.store, self._lock = out, config, store, lock
        self.task, self.space, self.evaluator, self.proxy = parts.task, parts.space, parts.evaluator, parts.proxy
        self.device: str | None = None  # where candidates train (the run header says it), once checked
        self.notes: list[str] = []  # what a user continuing this run should know (printed before it runs)

    def strategy(self) -> Strategy:
        """A fresh strategy for this run, before any replay. It plans with the budget the run
        started with (defaults such as the population follow it), so a run whose budget is
        raised continues the same search instead of planning another one."""
        cfg = self.config
        budget = self.store.get(PLAN_BUDGET) or cfg.budget
        return make_strategy(cfg.strategy.name, self.space, np.random.default_rng(cfg.seed), budget, cfg.strategy,
                             task=self.task.name if self.task else cfg.label, goal=self.goal, proxy=self.proxy,
                             proxy_pool=cfg.proxy_pool)

    @property
    def goal(self) -> Goal:
        """What the run optimises: one fitness or several objectives, and its limits."""
        return Goal.of(self.config, self.task.kind if self.task else "classification")

    def strategy_description(self) -> str:
        return self.strategy().describe()

    # --- reading ---
    def trials(self) -> list[TrialRecord]:
        return self.store.records()

    def finished(self) -> list[TrialRecord]:
        return [t for t in self.trials() if t.finished]

    def best(self) -> TrialRecord | None:
        return best_trial(self.trials())

    def genome(self, record: TrialRecord) -> Genome:
        return genome_from_dict(record.genome)

    # --- running ---
    def run(self, callback: Callback | None = None) -> TrialRecord | None:
        """Evaluate until the budget of finished trials is spent; return the best trial."""
        if self._lock is None:
            self._lock = _lock_run(self.out)
        self.check_device()
        remove_temporaries(self.out)  # what writes cut off by a kill left (nothing reads them)
        if self.task is not None:  # again: a damaged or deleted task.pkl is whole after a resume
            _save_task_info(self.out, self.task)
        trackers = open_trackers(self.config, self.out, self.store)
        try:
            trackers.trials(self.trials())  # what a tracker missed before (a resume, a tracker that was down)

            def tracked(record: TrialRecord, study: Study) -> None:
                trackers.trials([record])
                if callback:
                    callback(record, study)

            best = SearchLoop(self).run(tracked if trackers.trackers else callback)
            trackers.best(best, self.out)
            return best
        finally:
            trackers.close()

    def check_device(self, where: str | None = None) -> None:
        """Before it trains: the run's device exists here (one-line NasforgeError otherwise; ``where``:
        already checked, its description), ``device`` says where, and a note says when that is not
        where the run trained last (a run resumed on another machine or device)."""
        if self.device is not None or self.config.evaluator_kind != "training":
            return
        self.device = where or _check_device(self.config)
        previous = self.store.get(DEVICE)
        if previous is not None and previous != self.device:
            self.notes.append(f"this run trained on {previous}; it continues on {self.device}: later candidates "
                              "train and are timed there, so their speed and energy are not comparable with earlier "
                              "ones' (each trial's metrics name its device), and another device does not give "
                              "bit-identical training")
        if previous != self.device:
            self.store.set(DEVICE, self.device)

    def model_path(self, number: int) -> Path:
        return self.out / "models" / f"trial-{number:05d}.pt"

    def state_path(self, number: int) -> Path:
        """Multi-fidelity: where a trial between rungs keeps its training state."""
        return self.out / "models" / f"trial-{number:05d}.state.pt"

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def create_study(out: str | Path, config: SearchConfig, storage: str | None = None, task: Task | None = None) -> Study:
    """Start a run in ``out``, or continue the run there when its settings are the same (the
    budget may grow). Nothing is written before the data, space and strategy are checked."""
    out = Path(out)
    meta = read_meta(out)
    where = _check_device(config) if config.evaluator_kind == "training" else None
    parts = build_parts(config, out, task) if not meta else None
    if parts is not None:
        check_limits(config, parts)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NasforgeError(f"cannot make the run directory {out}: {exc.strerror or exc}") from None
    lock = _lock_run(out)
    try:
        store = RunStore(*run_meta(out, storage), create=True, directions=Goal.of(config).directions)
        stored = store.get("config")
        moved = False
        if stored is not None:
            before = build_config(stored, stored=True)
            _check_same_run(before, config, out)
            moved = before.device != config.device
        if parts is None:
            parts = build_parts(config, out, task or _stored_task(store))
        if store.get(PLAN_BUDGET) is None:  # runs made before 0.2 planned with the budget they last stored
            store.set(PLAN_BUDGET, store.get("budget", config.budget))
        if stored is None or store.get("budget") != config.budget or moved:  # a plain resume continues alike
            store.set("config", config.model_dump(mode="json"))

            store.set("budget", config.budget)
        if parts.task is not None:
            if store.get("task") is None:
                store.set("task", parts.task.spec)
            _save_task_info(out, parts.task)
        write_meta(out, store.url, store.name)
    except BaseException:
        lock.close()
        raise
    study = Study(out, config, store, parts, lock)
    study.check_device(where)
    return study


LIMIT_PROBES = 64  # random networks a new run's limits are tried on before anything is written


def check_limits(config: SearchConfig, parts: Parts) -> None:
    """Before a new run is written: the space can make a network within its bounds
    (``--max-params``), and some of LIMIT_PROBES random ones are within the limits known
    before training (``--max-size-kb``). Otherwise one line says which limit to loosen."""
    rng = np.random.default_rng([config.seed, 17])  # the strategy's generator is left untouched
    try:
        genomes = [parts.space.sample(rng) for _ in range(LIMIT_PROBES if config.constraints.cheap() else 1)]
    except InvalidGenome as exc:
        bound = f" --max-params {config.space.max_params} may be too small;" if getattr(
            config.space, "max_params", None) else ""
        raise NasforgeError(f"{exc}:{bound} loosen the search space's bounds") from None
    cheap = getattr(parts.evaluator, "cheap_metrics", None)
    if cheap is None or not config.constraints.cheap():
        return
    measured = []
    for genome in genomes:
        try:
            measured.append(cheap(genome, config.seed))
        except TrialFailed:
            continue
    if measured and not any(config.constraints.violation(m, cheap_only=True) <= 0 for m in measured):
        nearest = min(measured, key=lambda m: config.constraints.violation(m, cheap_only=True))
        raise NasforgeError(f"none of {len(genomes)} random networks of the search space meets the limits "
                            f"(the nearest: {config.constraints.broken(nearest)}); loosen them or shrink the space")


def load_study(out: str | Path, storage: str | None = None, task: Task | None = None,
               read_only: bool = False) -> Study:
    """Open the run in ``out`` with its stored settings (to read it, resume it or retrain from it;
    ``read_only``: to read it only, see :class:`RunStore`)."""
    out = Path(out)
    meta = read_meta(out)
    if not meta and storage is None:
        raise NasforgeError(f"{out} holds no nasforge run; start one with 'nasforge search'")
    store = RunStore(*run_meta(out, storage), create=False, read_only=read_only)
    stored = store.get("config")
    if stored is None:
        raise NasforgeError(f"{out} holds no nasforge run; start one with 'nasforge search'")
    config = build_config(stored, stored=True)
    return Study(out, config, store, build_parts(config, out, task or _stored_task(store)), None)


def _check_device(config: SearchConfig) -> str:
    e = config.executor
    return device.check(config.device, e.workers, e.gpus_per_task if e.kind == "ray" else None)


def _stored_task(store: RunStore) -> Task | None:
    spec = store.get("task")
    return reload_task(spec) if spec else None


def _load_configured_task(config: SearchConfig) -> Task:
    return load_task(**config.data.load_args(), seed=config.seed)


def _check_same_run(stored: SearchConfig, new: SearchConfig, out: Path) -> None:
    a, b = stored.identity(), new.identity()
    if a != b:
        diff = sorted(_diff_keys(a, b))
        raise NasforgeError(
            f"{out} holds a run with other settings ({', '.join(diff[:4])}); use another --out, or 'nasforge resume {out}'"
        )


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [k for key in set(a) | set(b) for k in _diff_keys(a.get(key), b.get(key), f"{prefix}{key}.")]
    return [prefix.rstrip(".")] if a != b else []


def _lock_run(out: Path) -> IO[str]:
    """One search process per run directory; the lock file names the process holding it."""
    try:
        handle = open(out / ".lock", "a+")
    except OSError as exc:
        raise NasforgeError(f"cannot write in the run directory {out}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        raise NasforgeError(f"another nasforge process{f' (pid {holder})' if holder else ''} is running the "
                            f"search in {out}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _save_task_info(out: Path, task: Task) -> None:
    """What a saved model needs to predict on raw rows: classes, input shape, preprocessing, and
    for regression the target's scale."""
    info = {"name": task.name, "classes": task.classes, "input_shape": task.input_shape,
            "feature_names": task.feature_names, "preprocessor": task.preprocessor, "kind": task.kind,
            "target_scale": task.scale}
    write_bytes(out / "task.pkl", pickle.dumps(info))
