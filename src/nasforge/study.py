"""A search run: the loop, its storage, and exact resume.

Resume works by replay. The strategy is rebuilt from the configuration and seed, then is
shown the stored asks and tells in their original order (``ask_index``, ``asked_after``,
``told_seq``), so its state after resume is the state it would have had. A trial that was
running when the process died is marked failed with ``interrupted`` and its ask is
evaluated again under the same seed: nothing finished is lost or evaluated twice.
Each evaluation's seed comes from the run seed and its ask index, so a re-run of an
interrupted ask gives what the uninterrupted run would have given.
"""
from __future__ import annotations

import fcntl
import json
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .config import SearchConfig, build_config
from .data import Task, load_task, reload_task
from .errors import NasforgeError
from .evaluators import EVALUATORS, Evaluator
from .executors import Job, Outcome, make_executor
from .spaces import Genome, SearchSpace, genome_from_dict, make_space
from .runs import best_trial
from .storage import RunStore, TrialRecord, sqlite_url
from .strategies import Proposal, Strategy, check_strategy, make_strategy

Callback = Callable[[TrialRecord, "Study"], None]


def trial_seed(seed: int, ask_index: int) -> int:
    return (seed * 1_000_003 + ask_index * 7919) % (2**31 - 1)


@dataclass
class _Pending:
    ask_index: int
    asked_after: int
    proposal: Proposal


class Study:
    """Create a run in ``out`` (or continue the one there) and run it."""

    def __init__(self, out: str | Path, config: SearchConfig | None = None, storage: str | None = None, task: Task | None = None):
        self.out = Path(out)
        meta_path = self.out / "run.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        if config is None and not meta and storage is None:
            raise NasforgeError(f"{self.out} holds no nasforge run; start one with 'nasforge search'")
        fresh = config is not None and not meta
        if fresh:  # bad data or settings fail here, before anything is written
            self.task, self.evaluator, self.space = self._components(config, task, self.out)
            check_strategy(config.strategy.name, self.space)
        self.out.mkdir(parents=True, exist_ok=True)
        self._lock = _lock_run(self.out) if config is not None else None
        url = storage or meta.get("storage") or sqlite_url(self.out)
        name = meta.get("study") or self.out.resolve().name
        self.store = RunStore(url, name, create=config is not None)
        stored = self.store.get("config")
        if config is None:
            if stored is None:
                raise NasforgeError(f"{self.out} holds no nasforge run; start one with 'nasforge search'")
            config = build_config(stored, stored=True)
        elif stored is not None:
            _check_same_run(build_config(stored, stored=True), config, self.out)
        self.config = config
        if not fresh:
            stored_task = self.store.get("task")
            self.task, self.evaluator, self.space = self._components(
                config, task or (reload_task(stored_task) if stored_task else None), self.out)
        if stored is None or self.store.get("budget") != config.budget:
            self.store.set("config", config.model_dump(mode="json"))
            self.store.set("budget", config.budget)
        if self.task is not None and self.store.get("task") is None:
            self.store.set("task", self.task.spec)
        meta_path.write_text(json.dumps({"storage": url, "study": name}, indent=1))
        if self.task is not None and self._lock is not None:
            _save_task_info(self.out, self.task)

    @staticmethod
    def _components(config: SearchConfig, task: Task | None, out: Path) -> tuple[Task | None, Evaluator, SearchSpace]:
        """The task, evaluator and search space a configuration describes."""
        kind = EVALUATORS.get(config.evaluator_kind)
        if kind.needs_task:
            task = task or _load_configured_task(config)
        space = make_space(config.space, task)
        return task, kind.from_config(config, task, space, out), space

    def _make_strategy(self) -> Strategy:
        cfg = self.config
        return make_strategy(cfg.strategy.name, self.space, np.random.default_rng(cfg.seed), cfg.budget, cfg.strategy,
                             task=self.task.name if self.task else cfg.label)

    def strategy_description(self) -> str:
        return self._make_strategy().describe()

    # --- reading ---
    def trials(self) -> list[TrialRecord]:
        return self.store.records()

    def finished(self) -> list[TrialRecord]:
        return [t for t in self.trials() if t.finished]

    def best(self) -> TrialRecord | None:
        return best_trial(self.trials())

    def genome(self, record: TrialRecord) -> Genome:
        return genome_from_dict(record.genome)

    # --- the loop ---
    def _replay(self, strategy: Strategy, records: list[TrialRecord]) -> tuple[list[_Pending], int, int]:
        """Bring a fresh strategy to the stored state; return asks still to evaluate."""
        by_ask: dict[int, TrialRecord] = {}
        for r in records:  # a finished record of an ask wins over its interrupted attempts
            if not r.genome:
                continue  # stopped between creating the trial and storing its proposal: never asked for the record
            if r.finished or r.ask_index not in by_ask:
                by_ask[r.ask_index] = r
        pending: dict[int, _Pending] = {}
        next_ask = tells = 0

        def ask_up_to(n_tells: int) -> None:
            nonlocal next_ask
            while next_ask in by_ask and by_ask[next_ask].asked_after <= n_tells:
                record = by_ask[next_ask]
                proposal = strategy.replay(genome_from_dict(record.genome), record)
                pending[next_ask] = _Pending(next_ask, record.asked_after, proposal)
                next_ask += 1

        for record in sorted((r for r in by_ask.values() if r.finished), key=lambda r: r.told_seq or 0):
            ask_up_to(tells)
            item = pending.pop(record.ask_index)
            item.proposal.trial = record.number
            strategy.tell(item.proposal, record.fitness, record.metrics)
            tells += 1
        ask_up_to(tells)
        return sorted(pending.values(), key=lambda p: p.ask_index), next_ask, tells

    def run(self, callback: Callback | None = None) -> TrialRecord | None:
        """Evaluate until the budget of finished trials is spent; return the best trial.

        Asks go out while the executor has free slots; results are stored and told in the
        order they arrive (asynchronous evolution with several workers). With one slot this
        is the plain serial loop: ask, evaluate, tell.
        """
        cfg = self.config
        if self._lock is None:
            self._lock = _lock_run(self.out)
        self._close_running("interrupted: the search process stopped; the ask is evaluated again")
        records = self.trials()
        strategy = self._make_strategy()
        pending, next_ask, tells = self._replay(strategy, records)
        done = sum(r.finished for r in records)
        executor = make_executor(cfg, self.evaluator)
        inflight: dict[int, tuple[_Pending, TrialRecord, int]] = {}
        try:
            while True:
                while done + len(inflight) < cfg.budget and len(inflight) < executor.slots:
                    if pending:
                        item = pending.pop(0)
                    else:
                        item = _Pending(next_ask, tells, strategy.ask())
                        next_ask += 1
                    record = self._start(item)
                    inflight[record.number] = (item, record, 0)
                    executor.submit(record.number, self._job(item))
                if not inflight:
                    break
                for number, outcome in executor.wait():
                    item, record, attempts = inflight.pop(number)
                    if outcome.worker_died and attempts < cfg.executor.retries:
                        inflight[number] = (item, record, attempts + 1)
                        executor.submit(number, self._job(item))
                        continue
                    if outcome.worker_died:
                        outcome.error = f"{outcome.error} (after {attempts + 1} attempts)"
                    self._finish(record, outcome, told_seq=tells)
                    strategy.tell(item.proposal, record.fitness, record.metrics)
                    tells += 1
                    done += 1
                    if callback:
                        callback(record, self)
        except KeyboardInterrupt:
            executor.cancel_all()
            self._close_running("interrupted by the user; the ask is evaluated again on resume")
            raise
        finally:
            executor.close()
        best = self.best()
        if best is not None:
            self._save_best(best)
        return best

    def _close_running(self, reason: str) -> None:
        """Mark every trial still 'running' as failed and interrupted (its ask is re-run)."""
        for record in self.trials():
            if record.state == "running":
                self.store.fail(record.number, reason if record.genome else reason + " (stopped before it was stored)",
                                told_seq=None, interrupted=True)

    def _job(self, item: _Pending) -> Job:
        return Job(item.proposal.genome.to_dict(), trial_seed(self.config.seed, item.ask_index),
                   self.evaluator.weights)

    def _start(self, item: _Pending) -> TrialRecord:
        """Store an ask as a running trial before it is evaluated."""
        p = item.proposal
        record = TrialRecord(number=-1, state="running", genome=p.genome.to_dict(), fitness=None,
                             parents=list(p.parents), operator=p.operator, info=p.info,
                             ask_index=item.ask_index, asked_after=item.asked_after)
        record.number = p.trial = self.store.start(
            {k: getattr(record, k) for k in ("genome", "parents", "operator", "info", "ask_index", "asked_after")})
        return record

    def _finish(self, record: TrialRecord, outcome: Outcome, told_seq: int) -> None:
        """Store a result: weights first, then the trial (a crash between them loses nothing)."""
        record.told_seq = told_seq
        evaluation = outcome.evaluation
        if evaluation is not None:
            try:
                fitness = self.config.objective.fitness(evaluation.metrics)
                if evaluation.state_dict:
                    _atomic_save(evaluation.state_dict, self.model_path(record.number))
                self.evaluator.learn(genome_from_dict(record.genome), evaluation)
            except Exception as exc:  # e.g. a metric the objective needs is missing
                outcome.error = f"{type(exc).__name__}: {exc}"
            else:
                self.store.finish(record.number, fitness, evaluation.metrics, told_seq)
                record.state, record.fitness, record.metrics = "complete", fitness, evaluation.metrics
                return
        record.state, record.error = "failed", outcome.error or "unknown failure"
        self.store.fail(record.number, record.error, told_seq)

    # --- files ---
    def model_path(self, number: int) -> Path:
        return self.out / "models" / f"trial-{number:05d}.pt"

    def _save_best(self, best: TrialRecord) -> None:
        folder = self.out / "best"
        folder.mkdir(exist_ok=True)
        (folder / "genome.json").write_text(json.dumps(best.genome, indent=2, sort_keys=True))
        (folder / "metrics.json").write_text(json.dumps({"trial": best.number, "fitness": best.fitness, **best.metrics}, indent=2))
        if self.model_path(best.number).is_file():  # tabular benchmarks train nothing
            shutil.copyfile(self.model_path(best.number), folder / "model.pt")

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None


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


def _lock_run(out: Path):
    handle = open(out / ".lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise NasforgeError(f"another nasforge process is running the search in {out}") from None
    return handle


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _save_task_info(out: Path, task: Task) -> None:
    """What a saved model needs to predict on raw rows: classes, input shape, preprocessing."""
    info = {"name": task.name, "classes": task.classes, "input_shape": task.input_shape,
            "feature_names": task.feature_names, "preprocessor": task.preprocessor}
    tmp = out / "task.pkl.tmp"
    tmp.write_bytes(pickle.dumps(info))
    os.replace(tmp, out / "task.pkl")
