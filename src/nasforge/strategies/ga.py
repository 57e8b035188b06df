"""The genetic-algorithm toolkit the evolutionary strategies are composed from (issue #14).

Regularized evolution, TS-ENAS and the bi-level GA differ in which parents they draw, which
members survive and what "better" means, not in how a tournament, a novelty check or a tie
works. Those shared rules live here once, as small operators in the spirit of pymoo's
operators-as-objects, so the strategies cannot drift apart on them:

- ``Member``: one evaluated genome in a population;
- ``rank_key``: the tie rule of every ranking (higher fitness, then fewer parameters, then earlier);
- ``selection_keys``: what "better" means in a population under the run's goal: the rank key
  within the user's limits first, or with several objectives Pareto rank then crowding
  (NSGA-II's crowded comparison, Deb's constrained domination), measured on
  ``Goal.ranking_point`` (sizes, times and rates on log10);
- ``ranked`` and ``tournament``: order a population, or pick the best of a uniform sample;
- ``Seen``: the novelty filter, so the budget is not spent evaluating a known genome again;
- survival: ``aging`` (regularized evolution), ``mu_plus_lambda`` (bi-level) and
  ``environmental_selection`` (TS-ENAS's rough stage).

Every random draw goes through the strategy's own generator in the order the strategy makes
it, so a search replayed from its tells asks the same genomes again.
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from .. import pareto
from ..spaces import Genome

if TYPE_CHECKING:
    from ..objectives import Goal

T = TypeVar("T")
G = TypeVar("G", bound=Genome)


def rank_key(fitness: float, params: float, order: int) -> tuple[float, float, int]:
    """The tie rule, larger is better: higher fitness, then fewer parameters, then earlier.

    ``order`` is whatever says "earlier" (a trial number, the position of a tell). Take
    ``max`` for the best, ``ranked`` for an ordering; an objective to minimise enters as its
    negation. Fewer parameters break ties because, at equal fitness, the smaller network is
    the cheaper one to train, deploy and explain.
    """
    return (fitness, -params, -order)


@dataclass(frozen=True)
class Member:
    """One evaluated genome in a population.

    The fields come in TS-ENAS's order (genome, fitness, trial, ...), which its tests build
    positionally. ``slot`` and ``perf`` serve one strategy each; the others leave them None.
    """

    genome: Genome
    fitness: float
    trial: int
    params: int = 0
    order: int = 0  # position among the strategy's tells: the last tie-breaker
    slot: int | None = None  # TS-ENAS fine stage: the population place this child competes for
    perf: float | None = None  # bi-level: the lower level's score, re-scored into F whenever tau moves
    point: tuple[float, ...] | None = None  # several objectives, all to maximise (Goal.ranking_point)
    violation: float = 0.0  # how far it breaks the user's limits (0: within them)

    def key(self) -> tuple[float, ...]:
        """Within the limits first, then ``rank_key`` of this member's fitness, parameters and order."""
        return (-self.violation, *rank_key(self.fitness, self.params, self.order))

    @classmethod
    def told(cls, goal: Goal, genome: Genome, fitness: float, trial: int, metrics: dict[str, Any] | None,
             **fields: Any) -> Member:
        """A member from a tell: its objectives and limits read off the metrics under ``goal``."""
        metrics = metrics or {}
        point = goal.ranking_point(metrics) if goal.multi else None
        return cls(genome, fitness, trial, point=point, violation=goal.violation(metrics), **fields)


def told_member(strategy: Any, proposal: Any, fitness: float | None, metrics: dict[str, Any] | None,
                **fields: Any) -> Member | None:
    """The member a tell makes under ``strategy.goal``, or None for a failed trial (no finite
    fitness), which gives an initial proposal's place back (``strategy.initial_open``: the
    initial proposals out or told, as evolution and the predictor count them)."""
    if fitness is None or not math.isfinite(fitness):
        if proposal.info.get("initial"):
            strategy.initial_open -= 1
        return None
    assert proposal.trial is not None, "the study numbers a proposal before telling it"
    return Member.told(strategy.goal, proposal.genome, fitness, proposal.trial, metrics,
                       params=int((metrics or {}).get("params", 0)), **fields)


def selection_keys(members: Sequence[Member], multi: bool) -> list[tuple[float, ...]]:
    """One key per member, larger is better. One objective: ``Member.key``. Several: Pareto
    rank under constrained domination, then crowding distance (on ``Goal.ranking_point``:
    ratio objectives on log10), then fewer parameters and the earlier tell. Keys compare members of the same population only."""
    if not multi:
        return [m.key() for m in members]
    ranks = pareto.rank_keys([m.point or () for m in members], [m.violation for m in members])
    return [(float(r[0]), r[1], -float(m.params), -float(m.order)) for r, m in zip(ranks, members)]


def pareto_select(pool: Sequence[T], size: int, keys: Sequence[Any]) -> list[T]:
    """NSGA-II survival: the ``size`` best of ``pool`` by ``keys`` (whole fronts while they fit,
    the front that overflows by crowding)."""
    order = sorted(range(len(pool)), key=lambda i: keys[i], reverse=True)
    return [pool[i] for i in order[:size]]


def keyed_tournament(population: Sequence[T], keys: Sequence[Any], size: int, rng: np.random.Generator,
                     replace: bool = False) -> T:
    """``tournament`` with keys computed over the whole population (Pareto ranks); the same draws."""
    index = tournament(range(len(population)), size, rng, key=lambda i: keys[i], replace=replace)
    return population[index]


def ranked(members: Iterable[T], key: Callable[[T], Any]) -> list[T]:
    """Best first by ``key`` (larger is better)."""
    return sorted(members, key=key, reverse=True)


def tournament(population: Sequence[T], size: int, rng: np.random.Generator, key: Callable[[T], Any],
               replace: bool = False) -> T:
    """The best by ``key`` of ``size`` members drawn uniformly; ties go to the first drawn.

    Without replacement (regularized evolution, bi-level) the sample is
    ``rng.choice(n, min(size, n), replace=False)``; with it (TS-ENAS's binary tournament)
    ``rng.integers(n, size=size)``. The two draws consume the generator differently, which is
    why both are kept: a strategy's recorded searches depend on its own.
    """
    n = len(population)
    picks = rng.integers(n, size=size) if replace else rng.choice(n, size=min(size, n), replace=False)
    return max((population[int(i)] for i in picks), key=key)


class Seen:
    """The novelty filter: ids of every genome asked, and of the batch being bred.

    A genome in either is not new. Ids are hashes of the canonical JSON, so equal ids mean
    equal genomes. ``valid`` (optional) makes a genome the space rejects count as not new, for
    strategies whose operators may produce one.
    """

    def __init__(self, valid: Callable[[Genome], bool] | None = None):
        self.asked: set[str] = set()  # membership only, never iterated (order-free)
        self.batch: set[str] = set()
        self.valid = valid

    def add(self, genome: Genome) -> None:
        """Record a genome handed out by ``ask``."""
        self.asked.add(genome.id)

    def start_batch(self) -> None:
        self.batch = set()

    def keep(self, genome: Genome) -> None:
        """Record a genome put in the batch being bred."""
        self.batch.add(genome.id)

    def is_new(self, genome: Genome | None) -> bool:
        return (genome is not None and genome.id not in self.asked and genome.id not in self.batch
                and (self.valid is None or self.valid(genome)))

    def novel(self, genome: G | None, again: Callable[[G], G | None], tries: int) -> G | None:
        """``genome``, or while it is not new, ``again(genome)``, at most ``tries`` times.

        Bounded because a small space runs out of new genomes: the last one is returned
        whether new or not (the caller decides whether a repeat will do), and None from
        ``again`` (nothing left to try) ends the search.
        """
        for _ in range(tries):
            if genome is None or self.is_new(genome):
                break
            genome = again(genome)
        return genome


# --- survival ---
def aging(population: deque[T], member: T, size: int) -> None:
    """Regularized evolution: the newcomer joins and, past ``size``, the OLDEST leaves (not the
    worst), so no lucky early evaluation stays forever."""
    population.append(member)
    if len(population) > size:
        population.popleft()


def mu_plus_lambda(parents: Sequence[T], children: Sequence[T], size: int, key: Callable[[T], Any]) -> list[T]:
    """(mu + lambda): parents and children compete, the best ``size`` by ``key`` survive."""
    return ranked([*parents, *children], key)[:size]


def environmental_selection(pool: Sequence[T], size: int, alpha: float, fitness: Callable[[T], float],
                            depth: Callable[[T], int]) -> list[T]:
    """TS-ENAS's rough-stage selection: levels of accuracy within ``alpha`` of each level's best,
    filled whole while they fit; the overflowing level gives its places one at a time to its
    member with the lowest density (chosen individuals with the same depth so far), ties to
    the fitter, then the earlier in ``pool``. Density keeps networks of every depth alive."""
    order = sorted(range(len(pool)), key=lambda i: -fitness(pool[i]))  # stable
    chosen: list[int] = []
    start = 0
    while start < len(order) and len(chosen) < size:
        top = fitness(pool[order[start]])
        end = start
        while end < len(order) and top - fitness(pool[order[end]]) < alpha:
            end += 1
        level = order[start:end]
        if len(chosen) + len(level) <= size:
            chosen += level
        else:
            while len(chosen) < size:
                density = {i: sum(depth(pool[c]) == depth(pool[i]) for c in chosen) for i in level}
                pick = min(level, key=lambda i: (density[i], -fitness(pool[i]), i))
                chosen.append(pick)
                level.remove(pick)
        start = end
    return [pool[i] for i in chosen]


__all__ = ["Member", "Seen", "aging", "environmental_selection", "keyed_tournament", "mu_plus_lambda", "pareto_select",
           "rank_key", "ranked", "selection_keys", "told_member", "tournament"]
