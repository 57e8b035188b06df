"""Regularized (aging) evolution, Real et al. 2019 (SPEC §1).

Fill a population of P random genomes; then repeatedly sample S members uniformly, mutate
the fittest of the sample, add the child and remove the OLDEST member (not the worst).
Aging keeps the search moving away from lucky early evaluations.

In the asynchronous form (several workers), asks may run ahead of tells: while the first P
random proposals are out, further asks are random too if nobody has been told yet.
A failed trial joins nothing; a failed initial genome is replaced by another random one.

The tournament ranks by fitness alone, ties to the first member drawn (the paper's rule and
this strategy's recorded behaviour), not by ``ga.rank_key``: the parameter count is not part
of the paper's selection. A member over the user's limits loses to every member within them.
With several objectives the tournament ranks by Pareto rank within the population, then
crowding distance (NSGA-II's crowded comparison) with sizes, times and rates on log10
(``Goal.ranking_point``); the oldest member still leaves.
"""
from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from ..flags import flag
from .base import STRATEGIES, Proposal, Strategy, StrategySettings
from .ga import Member, aging, keyed_tournament, selection_keys, told_member, tournament

if TYPE_CHECKING:
    from ..spaces import SearchSpace


def default_population(budget: int) -> int:
    """A quarter of the budget, between 5 and 100 (the paper's P=100 for long runs)."""
    return int(min(100, max(5, budget // 4)))


def default_sample(population: int) -> int:
    """A quarter of the population, at least 2 (the paper's 25 of 100)."""
    return max(2, math.ceil(population / 4))


class EvolutionSettings(StrategySettings):
    name: Literal["evolution"] = "evolution"
    population_size: int | None = Field(default=None, ge=2, le=100000, description=(
        "P, the population (default budget/4, 5..100; the paper: 100)"), json_schema_extra=flag("--population"))
    sample_size: int | None = Field(default=None, ge=1, le=100000, description=(
        "S, members sampled per tournament (default P/4, at least 2; the paper: 25)"),
        json_schema_extra=flag("--sample"))


@STRATEGIES.register
class RegularizedEvolution(Strategy):
    name = "evolution"
    Settings = EvolutionSettings
    is_default = True

    def __init__(self, space: SearchSpace, rng: np.random.Generator, budget: int,
                 settings: EvolutionSettings | None = None):
        super().__init__(space, rng, budget, settings)
        s = self.settings
        self.population_size = s.population_size or default_population(budget)
        self.sample_size = min(s.sample_size or default_sample(self.population_size), self.population_size)
        self.population: deque[Member] = deque()
        self.initial_open = 0  # random proposals that are out or joined the population

    def ask(self) -> Proposal:
        if self.initial_open < self.population_size or not self.population:
            self.initial_open += 1
            return Proposal(self.sample_initial(), info={"initial": True})
        if self.goal.multi:
            keys = selection_keys(self.population, multi=True)
            parent = keyed_tournament(self.population, keys, self.sample_size, self.rng)
        else:
            parent = tournament(self.population, self.sample_size, self.rng, key=lambda m: (-m.violation, m.fitness))
        child, operator = self.space.mutate(parent.genome, self.rng)
        return Proposal(child, parents=(parent.trial,), operator=operator)

    def tell(self, proposal: Proposal, fitness: float | None, metrics: dict | None = None) -> None:
        member = told_member(self, proposal, fitness, metrics)
        if member is not None:
            aging(self.population, member, self.population_size)

    def describe(self) -> str:
        return f"regularized evolution (P={self.population_size}, S={self.sample_size})"
