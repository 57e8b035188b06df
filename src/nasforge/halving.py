"""Successive halving: which candidates train longer (multi-fidelity search, issue #16).

Candidates train in rungs of epochs (``rungs``: ``max_epochs / eta**k`` down to ``min_epochs``,
e.g. 1, 3, 9, 27). After each rung a candidate either continues to the next rung or stops
there (an Optuna PRUNED trial); only the last rung makes a fully trained candidate. Three
ways to decide, one mechanism:

- ``asha`` (Li et al. 2020, the stopping variant as in Ray Tune and Optuna's pruner): decided
  at once against every result at that rung so far: continue if in the best
  ``max(1, floor(n / eta))`` of the ``n`` results there, the paper's ``top_k(rung, n / eta)``
  (also Optuna's rule). Except at a rung's cold start: its first ``eta - 1`` results wait
  (their training state is saved, no worker waits) until the ``eta``-th arrives, and then the
  best of those ``eta`` goes on. A pruner that cannot suspend a trial (Optuna's) has to let
  each of them on while it is the best so far instead, so the first candidate at every rung
  trains to the end whatever it is (with the lighter lower rungs, this took mnist-5k's
  screening rate in benchmarks/fidelity.py from 2.5x to 3.1x full fidelity's). While fewer than ``2 * eta`` have reported, only the best so far
  continues. Once the budget is spent (:meth:`Halving.close_brackets`) nothing more will
  arrive: the waiting results are decided with what there is (the best goes on) and later
  ones at once, until a new candidate starts (a raised budget). (Rounding up instead, as Ray
  Tune's percentile cut-off does, let 46 % of the first ten candidates on, against 38 %: a
  short search spent most of its time on them.)
- ``sha`` (Jamieson & Talwalkar 2016): candidates come in brackets of ``eta**(K-1)`` (K rungs);
  a rung's decisions wait until every member of the bracket still in it has a result, then
  the best ``max(1, floor(m / eta))`` of those ``m`` continue. New candidates do not wait:
  they fill the next bracket meanwhile.
- ``hyperband`` (Li et al. 2018): brackets in turn start at rung ``s_max``, ``s_max - 1``, ..., 0
  with ``ceil((s_max + 1) / (s + 1)) * eta**s`` candidates, each then halving as ``sha``;
  brackets that start late trade breadth for fidelity.

"Best" is one key per result: the fitness at that rung, or with several objectives the
Pareto rank among the rung's results, within the user's limits first, then within a front
(``promote``) each member's exclusive hypervolume (what the rung's front loses without it,
SMS-EMOA's order; the default) or its crowding distance (NSGA-II's, as Syne Tune's MOASHA).
Crowding ranks both ends of a front first, whatever they are: the smallest network always
looks lonely, so with params as an objective the first candidates fully trained were the
smallest, least accurate ones (mnist-5k: 35-52 % accuracy when full fidelity found 96 % at 8,906
params), and with a rung's few first results the tie between the two ends went to the
earlier. Hypervolume weighs an end by how far it reaches (its reference is a tenth of the
range below the rung's worst). A failed candidate leaves its bracket (the rung does not wait for
it). Decisions depend only on the order results arrive in, so replaying the stored results
in their order rebuilds the same state (resume).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from . import pareto
from .flags import flag

MODES = ("asha", "sha", "hyperband")


class SchedulerSettings(BaseModel):
    """Multi-fidelity training (the ``[scheduler]`` table): how long candidates train."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["none", "asha", "sha", "hyperband"] = Field(default="none", json_schema_extra=flag(
        "--scheduler"), description=("none (every candidate trains fully, the default), asha, sha or hyperband: train "
                                     "many candidates briefly and the promising ones longer"))
    min_epochs: int = Field(default=1, ge=1, le=100000, json_schema_extra=flag("--min-epochs"),
                            description="epochs of the first rung (default 1)")
    max_epochs: int | None = Field(default=None, ge=1, le=100000, json_schema_extra=flag("--max-epochs"),
                                   description="epochs of a fully trained candidate (default --epochs)")
    eta: int = Field(default=3, ge=2, le=100, json_schema_extra=flag("--eta"),
                     description="reduction factor: about 1 in eta candidates goes on to the next rung (default 3)")
    promote: Literal["hypervolume", "crowding"] = Field(default="hypervolume", json_schema_extra=flag("--promote"), description=(
        "with several objectives, which of a rung's non-dominated candidates go on first: hypervolume (those that "
        "add most to the rung's front, the default) or crowding (NSGA-II's crowding distance, as Syne Tune's MOASHA)"))

    @property
    def on(self) -> bool:
        return self.kind != "none"


def rungs(min_epochs: int, max_epochs: int, eta: int) -> list[int]:
    """Epochs at the end of each rung: ``max_epochs / eta**k`` (rounded) while >= ``min_epochs``."""
    if eta < 2:
        raise ValueError("eta must be at least 2")
    if not 1 <= min_epochs <= max_epochs:
        raise ValueError("min_epochs must be between 1 and max_epochs")
    out: list[int] = []
    value = float(max_epochs)
    while value >= min_epochs - 1e-9:
        epochs = max(min_epochs, round(value))
        if not out or epochs < out[-1]:
            out.append(epochs)
        value /= eta
    return out[::-1]


@dataclass(frozen=True)
class Result:
    """A candidate's measure at a rung: its point (every coordinate maximised) and violation."""

    trial: int
    point: tuple[float, ...]
    violation: float = 0.0
    order: int = 0  # when it arrived: ties go to the earlier


def best_first(results: list[Result], promote: str = "hypervolume") -> list[Result]:
    """Results best first: within the limits first; one objective by value, several by Pareto
    rank then ``promote`` (exclusive hypervolume or crowding distance); ties to the earlier."""
    if results and len(results[0].point) > 1:
        keys = pareto.rank_keys([r.point for r in results], [r.violation for r in results], spread=promote)
        order = sorted(range(len(results)), key=lambda i: (-keys[i][0], -keys[i][1], results[i].order))
    else:
        order = sorted(range(len(results)), key=lambda i: (results[i].violation, -results[i].point[0], results[i].order))
    return [results[i] for i in order]


@dataclass
class Bracket:
    start: int  # the rung its candidates start at
    size: int  # candidates it takes
    members: list[int] = field(default_factory=list)  # trials, in arrival order
    waiting: dict[int, dict[int, Result]] = field(default_factory=dict)  # rung -> trial -> result, undecided
    alive: dict[int, set[int]] = field(default_factory=dict)  # rung -> trials expected to report there


Decision = tuple[int, str]  # (trial, "continue" | "stop" | "complete")


class Halving:
    """The decisions of one search's successive halving. ``start(trial)`` when a candidate is
    asked (returns the rung it starts at), ``report(trial, rung, result)`` when it finishes a
    rung (result None: it failed); both return the decisions now made."""

    def __init__(self, mode: str, rung_epochs: list[int], eta: int, promote: str = "hypervolume"):
        if mode not in MODES:
            raise ValueError(f"unknown scheduler {mode!r}; choose from {', '.join(MODES)}")
        self.mode, self.rungs, self.eta, self.promote = mode, rung_epochs, eta, promote
        self.recorded: list[list[Result]] = [[] for _ in rung_epochs]  # asha: every result per rung
        self.cold: list[list[Result]] = [[] for _ in rung_epochs]  # asha: results waiting for a rung's first eta
        self.open = True  # asha: more candidates may come (False once the budget is spent, until one starts)
        self.brackets: list[Bracket] = []
        self.bracket_of: dict[int, Bracket] = {}
        self.arrivals = 0

    @property
    def last(self) -> int:
        return len(self.rungs) - 1

    # --- brackets ---
    def _bracket_shape(self, index: int) -> tuple[int, int]:
        """(starting rung, size) of the index-th bracket."""
        s_max = self.last
        if self.mode == "sha":
            return 0, self.eta**s_max
        s = s_max - index % (s_max + 1)
        return s_max - s, math.ceil((s_max + 1) / (s + 1)) * self.eta**s

    def start(self, trial: int) -> int:
        """A new candidate: the rung index it starts at (trains up to ``rungs[index]`` epochs)."""
        if self.mode == "asha":
            self.open = True
            return 0
        if not self.brackets or len(self.brackets[-1].members) >= self.brackets[-1].size:
            start, size = self._bracket_shape(len(self.brackets))
            self.brackets.append(Bracket(start, size, alive={start: set()}))
        bracket = self.brackets[-1]
        bracket.members.append(trial)
        bracket.alive[bracket.start].add(trial)
        self.bracket_of[trial] = bracket
        return bracket.start

    def close_brackets(self) -> list[Decision]:
        """No more candidates will come (the budget is spent): the last bracket is as full as it
        gets, so its rungs decide with the members it has; asha's waiting results are decided
        with the results their rung has (the best goes on), and later ones at once."""
        decisions: list[Decision] = []
        if self.mode == "asha":
            self.open = False
            for rung in range(len(self.cold)):
                decisions += self._cold_start(rung)
        if self.brackets:
            bracket = self.brackets[-1]
            bracket.size = len(bracket.members)
            for rung in sorted(bracket.waiting):
                decisions += self._decide(bracket, rung)
        return decisions

    # --- results ---
    def report(self, trial: int, rung: int, result: Result | None) -> list[Decision]:
        """A candidate finished rung ``rung`` with ``result`` (None: it failed there)."""
        if result is not None:
            result = Result(result.trial, result.point, result.violation, self.arrivals)
            self.arrivals += 1
        if self.mode == "asha":
            if result is None:
                return []
            if rung == self.last:
                return [(trial, "complete")]
            self.recorded[rung].append(result)
            if self.open and len(self.recorded[rung]) < self.eta:
                self.cold[rung].append(result)  # too few to judge: it waits for the rung's eta-th result
                return []
            if self.cold[rung]:
                self.cold[rung].append(result)
                return self._cold_start(rung)
            ranked = best_first(self.recorded[rung], self.promote)
            keep = max(1, len(ranked) // self.eta)
            return [(trial, "continue" if result in ranked[:keep] else "stop")]
        bracket = self.bracket_of[trial]
        if result is None:
            bracket.alive.get(rung, set()).discard(trial)
            return self._decide(bracket, rung)
        if rung == self.last:
            return [(trial, "complete")]
        bracket.waiting.setdefault(rung, {})[trial] = result
        return self._decide(bracket, rung)

    def _cold_start(self, rung: int) -> list[Decision]:
        """asha: decide the results that waited at ``rung`` (all of the rung's so far): the best goes on."""
        waiting, self.cold[rung] = self.cold[rung], []
        if not waiting:
            return []
        ranked = best_first(waiting, self.promote)
        return [(r.trial, "continue" if i == 0 else "stop") for i, r in enumerate(ranked)]

    def _decide(self, bracket: Bracket, rung: int) -> list[Decision]:
        """Decide a bracket's rung once every candidate still expected there has reported."""
        waiting = bracket.waiting.get(rung, {})
        expected = bracket.alive.get(rung, set())
        full = rung != bracket.start or len(bracket.members) >= bracket.size
        if not waiting or not full or set(waiting) != expected:
            return []
        ranked = best_first(list(waiting.values()), self.promote)
        keep = max(1, len(ranked) // self.eta)
        del bracket.waiting[rung]
        bracket.alive[rung + 1] = {r.trial for r in ranked[:keep]}
        return [(r.trial, "continue" if i < keep else "stop") for i, r in enumerate(ranked)]


__all__ = ["Bracket", "Halving", "MODES", "Result", "best_first", "rungs"]
