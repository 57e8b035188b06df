"""The search loop: ask, evaluate, tell, store; and exact resume by replay.

Resume works by replay. The strategy is rebuilt from the configuration and seed, then is
shown the stored asks and tells in their original order (``ask_index``, ``asked_after``,
``told_seq``), so its state after resume is the state it would have had. A trial that was
running when the process died is marked failed with ``interrupted`` and its ask is
evaluated again under the same seed: nothing finished is lost or evaluated twice.
Each evaluation's seed comes from the run seed and its ask index, so a re-run of an
interrupted ask gives what the uninterrupted run would have given.

Before a candidate is trained, :mod:`nasforge.gates` decides whether it needs to be: a
repeat of a genome the run evaluated reuses that result, one over a limit known before
training is skipped, the cheap-objectives screen may pass it over. With a scheduler
(:mod:`nasforge.rungs`) a candidate trains rung by rung and may be stopped between them.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from . import files
from .evaluators import Evaluation
from .executors import Job, Outcome, make_executor, run_job
from .gates import Gates, trial_seed
from .objectives import Goal
from .rungs import Rungs
from .spaces import genome_from_dict
from .storage import TrialRecord
from .strategies import Proposal, Strategy

if TYPE_CHECKING:
    from .study import Study

Callback = Callable[[TrialRecord, "Study"], None]




@dataclass
class Pending:
    """An ask not yet told: which ask it was, after how many tells, and what was proposed."""

    ask_index: int
    asked_after: int
    proposal: Proposal


@dataclass
class Active:
    """A trial being evaluated, or (multi-fidelity) waiting between rungs."""

    item: Pending
    record: TrialRecord
    rung: int = 0  # multi-fidelity: the rung its current or next job trains to
    attempts: int = 0
    evaluation: Evaluation | None = None  # its latest, for the weight source to learn from


class SearchLoop:
    """Runs one study's search to its budget; the study's only writer while it runs."""

    def __init__(self, study: Study):
        self.study, self.config, self.store = study, study.config, study.store
        self.goal: Goal = study.goal
        self.gates = Gates(study)
        self.rungs = (Rungs(self.config.scheduler, self.config.max_epochs, self.goal, self.store)
                      if self.config.scheduler.on else None)
        self.active: dict[int, Active] = {}  # trial number -> trial not concluded yet
        self.inflight: set[int] = set()  # trial numbers with a job out
        self.tells = self.done = 0
        self.callback: Callback | None = None

    def told_fitness(self, record: TrialRecord) -> float | None:
        """What a strategy's ``tell`` receives as the fitness: None for a failed or skipped
        trial; in a Pareto search the first objective, to maximise (strategies rank by
        ``Goal.point`` of the metrics then); for a candidate stopped at a rung, its fitness there."""
        if record.state == "complete":
            if record.fitness is not None:
                return record.fitness
            return record.point[0] if record.point else None
        if record.state == "pruned":
            try:
                return self.goal.point(record.metrics)[0]
            except (KeyError, TypeError, ValueError):
                return None
        original = self.gates.by_number.get(record.repeat_of) if record.repeat_of is not None else None
        if original is not None:
            return self.told_fitness(original)
        return None

    def replay(self, strategy: Strategy, records: list[TrialRecord]) -> tuple[list[Pending], int, int]:
        """Bring a fresh strategy to the stored state; return asks still to evaluate."""
        by_ask: dict[int, TrialRecord] = {}
        for r in records:  # a finished (or, multi-fidelity, live) record of an ask wins over its interrupted attempts
            if not r.genome:
                continue  # stopped between creating the trial and storing its proposal: never asked for the record
            if r.told or r.rungs or r.ask_index not in by_ask:
                by_ask[r.ask_index] = r
        pending: dict[int, Pending] = {}
        next_ask = tells = 0
        self.gates.replayed(records)

        def ask_up_to(n_tells: int) -> None:
            nonlocal next_ask
            while next_ask in by_ask and by_ask[next_ask].asked_after <= n_tells:
                record = by_ask[next_ask]
                proposal = strategy.replay(genome_from_dict(record.genome), record)
                pending[next_ask] = Pending(next_ask, record.asked_after, proposal)
                next_ask += 1

        for record in sorted((r for r in by_ask.values() if r.told), key=lambda r: r.told_seq or 0):
            ask_up_to(tells)
            item = pending.pop(record.ask_index)
            item.proposal.trial = record.number
            strategy.tell(item.proposal, self.told_fitness(record), record.metrics)
            tells += 1
        ask_up_to(tells)
        return sorted(pending.values(), key=lambda p: p.ask_index), next_ask, tells

    def run(self, callback: Callback | None = None) -> TrialRecord | None:
        """Evaluate until the budget of finished trials is spent; return the best trial.

        Asks go out while the executor has free slots; results are stored and told in the
        order they arrive (asynchronous evolution with several workers). With one slot this
        is the plain serial loop: ask, evaluate, tell.
        """
        cfg, study = self.config, self.study
        self._close_running("interrupted: the search process stopped; the ask is evaluated again")
        records = study.trials()
        strategy = self.strategy = study.strategy()
        pending, next_ask, self.tells = self.replay(strategy, records)
        self.done = sum(r.finished for r in records)
        self.callback = callback
        decisions = self.rungs.replay(records) if self.rungs else {}
        live = {r.ask_index: r for r in records if r.state == "running" and r.rungs}
        resumed = []
        for item in [p for p in pending if p.ask_index in live]:  # multi-fidelity trials between rungs
            pending.remove(item)
            record = live[item.ask_index]
            item.proposal.trial = record.number
            active = self.active[record.number] = Active(item, record, rung=record.rungs[-1]["rung"])
            last = decisions.get(item.ask_index)
            if last is not None and last[0] == active.rung:
                resumed.append((item.ask_index, last[1]))
        self.executor = executor = make_executor(cfg, study.evaluator)
        try:
            self._apply(resumed)
            while True:
                while (self.done + len(self.active) < cfg.budget and len(self.inflight) < executor.slots
                       and self.gates.ended_early is None):
                    if pending:
                        item = pending.pop(0)
                    else:
                        item = Pending(next_ask, self.tells, strategy.ask())
                        next_ask += 1
                    record = self._start(item)
                    original = self.gates.repeat(record, item, self.tells)
                    if original is not None:
                        strategy.tell(item.proposal, self.told_fitness(original), original.metrics)
                        self.tells += 1
                        continue
                    if self.gates.skip(record, item, self.tells, strategy.initial_size):
                        strategy.tell(item.proposal, None, record.metrics)
                        self.tells += 1
                        self.gates.check_feasible(strategy.initial_size)
                        continue
                    rung = self.rungs.start(item.ask_index) if self.rungs else 0
                    self.active[record.number] = active = Active(item, record, rung)
                    self._submit(active)
                if not self.inflight:
                    if self.rungs and self.active and not self.rungs.closed:  # the budget is spent: decide the rest
                        self._apply(self.rungs.close())
                        continue
                    break
                for number, outcome in executor.wait():
                    active = self.active[number]
                    self.inflight.discard(number)
                    if outcome.worker_died and active.attempts < cfg.executor.retries:
                        active.attempts += 1
                        self._submit(active)
                        continue
                    if outcome.worker_died:
                        outcome.error = f"{outcome.error} (after {active.attempts + 1} attempts)"
                    active.attempts = 0
                    if self.rungs:
                        self._rung_done(active, outcome)
                    else:
                        self._finish(active.record, outcome, told_seq=self.tells)
                        self._told(active)
            for active in list(self.active.values()):  # nothing left to decide them: stop them where they are
                self._conclude(active, "stop")
        except KeyboardInterrupt:
            executor.cancel_all()
            self._close_running("interrupted by the user; the ask is evaluated again on resume")
            raise
        finally:
            executor.close()
        best = study.best()
        if best is not None:
            self._save_best(best)
        return best

    # --- evaluations and their conclusions ---
    def _submit(self, active: Active) -> None:
        """Send a trial's next job: the whole evaluation, or (multi-fidelity) its next rung,
        continuing from the training state its last rung saved."""
        job = self._job(active.item)
        if self.rungs is not None:
            job.until = self.rungs.epochs[active.rung]
            if any(not entry.get("failed") for entry in active.record.rungs):
                job.resume = torch.load(self.study.state_path(active.record.number), weights_only=False,
                                        map_location="cpu")
        self.inflight.add(active.record.number)
        self.executor.submit(active.record.number, job)

    def _told(self, active: Active) -> None:
        """Tell the strategy a concluded trial, count it, report it."""
        record = active.record
        self.gates.note(record)
        self.strategy.tell(active.item.proposal, self.told_fitness(record), record.metrics)
        self.tells += 1
        self.done += 1
        del self.active[record.number]
        if self.callback:
            self.callback(record, self.study)
        self.gates.check_failing(record)
        self.gates.check_feasible(self.strategy.initial_size)

    def _rung_done(self, active: Active, outcome: Outcome) -> None:
        """Store a finished (or failed) rung, then act on the scheduler's decisions."""
        assert self.rungs is not None
        record, ask = active.record, active.item.ask_index
        evaluation = outcome.evaluation
        if evaluation is not None:
            metrics = dict(evaluation.metrics)
            try:
                self.goal.values(metrics)
            except Exception as exc:  # e.g. a metric the objective needs is missing
                outcome.error, evaluation = f"{type(exc).__name__}: {exc}", None
        if evaluation is None:
            entry, decisions = self.rungs.report(ask, active.rung, None)
            record.state, record.error, record.told_seq = "failed", outcome.error or "unknown failure", self.tells
            self.store.fail(record.number, record.error, self.tells, extra={"rung_failed": entry})
            self._told(active)
            self._apply(decisions)
            return
        before = [e["metrics"] for e in record.rungs if not e.get("failed")]
        for key in ("train_seconds", "train_energy_kwh"):  # the candidate's cost so far, not this rung's
            if before and isinstance(metrics.get(key), (int, float)):
                metrics[key] += float(before[-1].get(key) or 0.0)
        entry, decisions = self.rungs.report(ask, active.rung, metrics)
        self._save_rung(record.number, evaluation, {what for a, what in decisions if a == ask})
        record.rungs.append(entry)
        record.metrics, active.evaluation = metrics, evaluation
        self.store.rung(record.number, record.rungs, None if self.goal.multi else self.goal.fitness(metrics))
        self._apply(decisions)

    def _save_rung(self, number: int, evaluation: Evaluation, decided: set[str]) -> None:
        """Before a rung is stored, the files the candidate will need: its weights (the restored
        best) unless it trains on at once, and its training state unless it concludes now (a
        candidate left waiting for its bracket, or for its asha rung's first eta results, keeps both: it may go either way)."""
        if evaluation.state_dict and "continue" not in decided:
            files.save_torch(evaluation.state_dict, self.study.model_path(number))
        if evaluation.train_state is not None and not decided & {"stop", "complete"}:
            files.save_torch(evaluation.train_state, self.study.state_path(number))

    def _apply(self, decisions: list[tuple[int, str]]) -> None:
        """Act on the scheduler's decisions: train the next rung, or conclude the trial."""
        by_ask = {a.item.ask_index: a for a in self.active.values()}
        for ask, what in decisions:
            active = by_ask.get(ask)
            if active is None:
                continue  # concluded already (a decision replayed for a trial that was stored since)
            if what == "continue":
                active.rung += 1
                self._submit(active)
            else:
                self._conclude(active, what)

    def _conclude(self, active: Active, what: str) -> None:
        """Store a multi-fidelity trial as complete (it reached the last rung) or stopped."""
        record = active.record
        done = [e for e in record.rungs if not e.get("failed")]
        if not done:  # never finished a rung: nothing to keep
            record.state, record.error = "failed", "stopped before its first rung finished"
            self.store.fail(record.number, record.error, self.tells)
            self._told(active)
            return
        metrics = done[-1]["metrics"]
        record.metrics, record.told_seq = metrics, self.tells
        if what == "complete":
            if active.evaluation is not None:
                self.study.evaluator.learn(genome_from_dict(record.genome), active.evaluation)
            self._complete(record, metrics, self.goal.values(metrics))
        else:
            record.state, record.violation = "pruned", self.goal.violation(metrics)
            self.store.prune(record.number, metrics, self.tells, done[-1]["epochs"], record.violation)
        self.study.state_path(record.number).unlink(missing_ok=True)
        self._told(active)

    def _close_running(self, reason: str) -> None:
        """Mark every trial still 'running' as failed and interrupted (its ask is re-run); a
        multi-fidelity trial that finished a rung stays running: it continues from there."""
        for record in self.study.trials():
            if record.state == "running" and not record.rungs:
                self.store.fail(record.number, reason if record.genome else reason + " (stopped before it was stored)",
                                told_seq=None, interrupted=True)

    def _job(self, item: Pending) -> Job:
        return Job(item.proposal.genome.to_dict(), trial_seed(self.config.seed, item.ask_index),
                   self.study.evaluator.weights)

    def _start(self, item: Pending) -> TrialRecord:
        """Store an ask as a running trial before it is evaluated."""
        p = item.proposal
        scored = self.study.proxy.note(p.genome) if self.study.proxy is not None else None
        if scored is not None:  # a proxy picked it: its score, or that it had none
            p.info = {**p.info, "proxy": scored}
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
                values = self.goal.values(evaluation.metrics)
                if evaluation.state_dict:
                    files.save_torch(evaluation.state_dict, self.study.model_path(record.number))
                self.study.evaluator.learn(genome_from_dict(record.genome), evaluation)
            except Exception as exc:  # e.g. a metric the objective needs is missing
                if files.environment_problem(exc):
                    raise  # a full disk is not the candidate's fault: the search stops, a resume evaluates it again
                outcome.error = f"{type(exc).__name__}: {exc}"
            else:
                self._complete(record, evaluation.metrics, values)
                return
        record.state, record.error = "failed", outcome.error or "unknown failure"
        self.store.fail(record.number, record.error, told_seq)

    def _complete(self, record: TrialRecord, metrics: dict[str, Any], values: list[float]) -> None:
        """Store a trained trial as complete: its objectives (or fitness) and how far it breaks the limits."""
        assert record.told_seq is not None, "a trial's place among the tells is set before it is stored"
        violation = self.goal.violation(metrics)
        self.store.finish(record.number, values, metrics, record.told_seq, violation)
        record.state, record.metrics, record.values, record.violation = "complete", metrics, values, violation
        record.fitness = None if self.goal.multi else values[0]
        record.point = self.goal.point(metrics)

    def evaluate(self, item: Pending, told_seq: int) -> TrialRecord:
        """Store, evaluate in this process and store the result of one ask (no strategy
        involved): what every trial costs beyond training, for benchmarks/overhead.py."""
        record = self._start(item)
        self._finish(record, run_job(self.study.evaluator, self._job(item)), told_seq)
        return record

    def _save_best(self, best: TrialRecord) -> None:
        chosen = ({"chosen": "the knee of the Pareto front", **dict(zip(self.goal.names, best.values or []))}
                  if self.goal.multi else {"fitness": best.fitness})
        weights = self.study.model_path(best.number)
        files.write_together(self.study.out / "best", {  # tabular benchmarks train nothing: no model.pt
            **({"model.pt": weights.read_bytes()} if weights.is_file() else {}),
            "genome.json": json.dumps(best.genome, indent=2, sort_keys=True).encode(),
            "metrics.json": json.dumps({"trial": best.number, **chosen, **best.metrics}, indent=2).encode()})
