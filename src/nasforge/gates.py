"""What is decided about a candidate before anyone trains it.

In the order the loop asks (:mod:`nasforge.loop`):

1. **No repeats**: a genome the run evaluated before is not trained again (unless the run's
   ``repeats`` is on); the earlier result is stored as this trial's (a skipped trial with
   ``repeat_of``, no budget spent) and the strategy is told it. A strategy that proposes
   ``MAX_REPEATS_IN_A_ROW`` known genomes in a row has run out of space: the run ends,
   saying so (``ended_early``).
2. **Limits known before training** (``--max-size-kb``) are checked on the built network;
   a candidate over one is stored as skipped and told to the strategy as a failure.
3. **The cheap-objectives screen** (:mod:`nasforge.screening`) may pass a candidate over.

After every tell, :meth:`Gates.check_feasible` stops a search whose first population holds
no candidate within the user's limits, instead of spending the budget on models the user
said they cannot use, and :meth:`Gates.check_failing` one whose last ``MAX_FAILED_IN_A_ROW``
trained candidates all failed: then something beyond the candidates is wrong (the data, the
machine, the settings), and trying more only fills the study with failures.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import pareto, screening
from .errors import NasforgeError, TrialFailed
from .spaces import genome_from_dict
from .storage import TrialRecord

if TYPE_CHECKING:
    from .loop import Pending
    from .study import Study

# A run stops when this many candidates in a row broke a limit known before training.
MAX_SKIPPED_IN_A_ROW = 200
# A run ends (cleanly) when its strategy proposes this many genomes in a row that it evaluated before.
MAX_REPEATS_IN_A_ROW = 100
# A run stops (an error, its trials kept) when this many candidates in a row failed in training.
MAX_FAILED_IN_A_ROW = 20
ENDED_EARLY = "ended_early"  # run attribute: why a run stopped before spending its budget


def trial_seed(seed: int, ask_index: int) -> int:
    """The seed of an ask's evaluation: from the run seed and the ask's index alone."""
    return (seed * 1_000_003 + ask_index * 7919) % (2**31 - 1)


class Gates:
    """The before-training decisions of one run, and what they remember of it."""

    def __init__(self, study: Study):
        self.study, self.config, self.store, self.goal = study, study.config, study.store, study.goal
        self.feasible = False  # a complete trial within the limits has been seen
        self.trained: list[TrialRecord] = []  # complete trials, for the cheap-objectives screen
        self._trained_numbers: set[int] = set()
        self.evaluated: dict[str, TrialRecord] = {}  # genome id -> the trial that evaluated it first
        self.by_number: dict[int, TrialRecord] = {}
        self.repeats_in_a_row = 0
        self.failed_in_a_row = 0  # trained (not skipped) candidates told in a row that failed
        self.ended_early: str | None = None

    def replayed(self, records: list[TrialRecord]) -> None:
        """Learn the stored run (before a resume)."""
        for r in sorted(records, key=lambda r: r.number):
            self.note(r)
        told = sorted((r for r in records if r.told), key=lambda r: r.told_seq or 0)
        self.repeats_in_a_row = len(told) - max((i + 1 for i, r in enumerate(told) if r.repeat_of is None), default=0)
        trained = [r for r in told if r.state != "skipped"]
        self.failed_in_a_row = len(trained) - max((i + 1 for i, r in enumerate(trained) if r.state != "failed"), default=0)
        if self.store.get(ENDED_EARLY):
            self.store.set(ENDED_EARLY, None)  # a new attempt: say it again only if it ends early again

    def note(self, record: TrialRecord) -> None:
        """Remember a concluded trial: its genome's result is reused when it is proposed again
        (a finished trial, or one skipped for breaking a limit; not one the random screen
        passed over), and a complete one feeds the screen."""
        self.by_number[record.number] = record
        if record.state == "complete" and record.point is not None and record.number not in self._trained_numbers:
            self.trained.append(record)
            self._trained_numbers.add(record.number)
        reusable = record.finished or (record.state == "skipped" and record.repeat_of is None and record.violation > 0)
        if not reusable or not record.genome:
            return
        try:
            key = genome_from_dict(record.genome).id
        except NasforgeError:
            return
        self.evaluated.setdefault(key, record)

    def repeat(self, record: TrialRecord, item: Pending, told_seq: int) -> TrialRecord | None:
        """The trial whose result a repeated genome reuses (stored as this trial's), or None."""
        original = None if self.config.repeats else self.evaluated.get(item.proposal.genome.id)
        if original is None:
            self.repeats_in_a_row = 0
            return None
        reason = f"repeat of trial {original.number}: its result is reused, no training"
        self.store.skip(record.number, reason, original.metrics, told_seq, original.violation,
                        repeat_of=original.number)
        record.state, record.error, record.metrics, record.violation = "skipped", reason, original.metrics, original.violation
        record.repeat_of, record.told_seq = original.number, told_seq
        self.by_number[record.number] = record
        self.repeats_in_a_row += 1
        if self.repeats_in_a_row >= MAX_REPEATS_IN_A_ROW:
            self.ended_early = (f"ended before the budget: the {self.config.strategy.name} strategy proposed "
                                f"{self.repeats_in_a_row} genomes in a row that were evaluated already "
                                f"({len(self.evaluated)} distinct ones); the search space looks exhausted")
            self.store.set(ENDED_EARLY, self.ended_early)
        return original

    def skip(self, record: TrialRecord, item: Pending, told_seq: int, initial_size: int) -> bool:
        """Measure what is known before training on the built network and store the candidate
        as skipped (True) if it breaks a limit known then, or if the cheap-objectives screen
        (:mod:`nasforge.screening`) passes it over. A network that does not build is left to
        the evaluator, which records the failure with its reason."""
        constraints = self.goal.constraints
        screen = self.config.screening and screening.applies(self.goal) and not item.proposal.info.get("initial") \
            and len(self.trained) >= initial_size
        cheap = getattr(self.study.evaluator, "cheap_metrics", None)
        if cheap is None or not (constraints.cheap() or screen):
            return False
        try:
            metrics = cheap(item.proposal.genome, trial_seed(self.config.seed, item.ask_index))
        except TrialFailed:
            return False
        violation = constraints.violation(metrics, cheap_only=True)
        if violation > 0:
            reason = f"skipped before training: {constraints.broken(metrics)}"
        elif screen and (why := self.screened(metrics, item.ask_index)):
            reason = why
        else:
            return False
        self.store.skip(record.number, reason, metrics, told_seq, violation)
        record.state, record.error, record.metrics, record.violation = "skipped", reason, metrics, violation
        record.told_seq = told_seq
        self.note(record)
        return True

    def screened(self, metrics: dict[str, Any], ask_index: int) -> str | None:
        """The reason a candidate is passed over by the cheap-objectives screen, or None."""
        candidate = screening.cheap_coordinates(self.goal, metrics)
        if candidate is None:
            return None
        trained = [(r, screening.cheap_coordinates(self.goal, r.metrics)) for r in self.trained]
        trained = [(r, c) for r, c in trained if c is not None]
        feasible = [(r, c) for r, c in trained if r.violation <= 0] or trained
        front = [feasible[i][1] for i in pareto.pareto_front([r.point for r, _ in feasible])] if feasible else []
        chance = screening.chance(candidate, [c for _, c in trained], front)
        draw = float(np.random.default_rng([self.config.seed, ask_index, 7]).random())
        if draw < chance:
            return None
        return (f"skipped before training by the cheap-objectives screen: a front member is as cheap on "
                f"{', '.join(m.name for m in self.goal.measures if m.cheap)} and that place is crowded "
                f"(trained with probability {chance:.2f})")

    def check_failing(self, record: TrialRecord) -> None:
        """Count a trained candidate just told; stop the search (its trials are kept, a rerun
        resumes) once ``MAX_FAILED_IN_A_ROW`` in a row have failed."""
        self.failed_in_a_row = self.failed_in_a_row + 1 if record.state == "failed" else 0
        if self.failed_in_a_row >= MAX_FAILED_IN_A_ROW:
            error = (record.error or "unknown failure").splitlines()[0][:300]
            raise NasforgeError(f"stopped: the last {self.failed_in_a_row} candidates all failed (the last: {error}); "
                                "the trials so far are kept: fix the cause and run the same command to resume")

    def check_feasible(self, initial_size: int) -> None:
        """Stop a search that cannot meet its limits: no candidate within them once the
        strategy's first population is told, or too many skipped in a row."""
        constraints = self.goal.constraints
        if not constraints.any or self.feasible:
            return
        records = [r for r in self.study.trials() if r.told]
        if any(r.state == "complete" and r.violation <= 0 for r in records):
            self.feasible = True
            return
        told = sorted(records, key=lambda r: r.told_seq or 0)
        in_a_row = len(told) - max((i + 1 for i, r in enumerate(told) if r.state != "skipped"), default=0)
        if len(told) >= initial_size or in_a_row >= MAX_SKIPPED_IN_A_ROW:
            limits = ", ".join(f"{label} <= {limit:,.4g}" for _, limit, label in constraints.limits())
            seen = next((r.error or constraints.broken(r.metrics) for r in reversed(told) if r.error or r.metrics), "")
            raise NasforgeError(f"no candidate meets the limits ({limits}) after {len(told)} tried "
                                f"(last: {seen.removeprefix('skipped before training: ')}); loosen them or shrink "
                                "the search space")
