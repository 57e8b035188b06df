"""TS-ENAS: two-stage evolution of cell-based networks (SPEC §2; Zou et al., seed 004).

Rough stage (Algorithm 2): P individuals from Algorithm 3; every generation breeds P new
offspring (crossover of two parents with probability 0.8, normal with normal and reduction
with reduction; a third parent mutated with probability 0.2 by cell or connection mutation,
chosen with equal odds) and keeps P of parents and offspring by environmental selection:
sort by accuracy, group into levels of accuracies within ``alpha`` of the level's best,
take whole levels while they fit, and from the level that overflows prefer low density
(fewest already-chosen individuals with the same number of cells).

Fine stage (Algorithm 4): the best S individuals; each generation every individual p makes
p1 (every cell gets an edge or node-input mutation) and p2 (one node pruned), and keeps the
best of {p, p1, p2}.

As ask/tell: a generation's offspring are bred when the generation starts and asked one by
one; once all of them are told the next generation is selected and bred. Everything random
comes from ``self.rng`` in that order, so replaying the same tells rebuilds the same state
and a resumed run continues in the same stage and generation. The budget (evaluations) is
split: ``rough_fraction`` of it for the rough stage (its last generation may be partial),
the rest for the fine stage. Each proposal's ``info`` records stage, generation and, in the
fine stage, the slot of the individual it may replace. The split (and the default P) follow
the budget the run started with (the study keeps it), so a run whose budget is raised later
replays its history and spends the extra evaluations in the fine stage.

Our choices (**ours**), where the paper is silent: parents are picked by binary tournament;
an offspring identical to an already evaluated genome is not evaluated again (breeding goes
on until P new ones exist, then falls back to forced mutations); ties in fitness go to fewer
parameters, then to the earlier evaluation.

With several objectives (``--objectives``) the rough stage's environmental selection is
NSGA-II's (whole Pareto fronts while they fit, the overflowing front by crowding distance),
tournaments and the choice of the S fine-stage individuals rank the same way, and in the fine
stage a child replaces its parent only when it dominates it. Members over the user's limits
lose to members within them (Deb's constrained domination) in both modes.
"""
from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field

from .. import pareto
from ..errors import NasforgeError
from ..flags import flag
from ..spaces import SearchSpace
from ..spaces.cells import CellsGenome, CellsSpace
from .base import STRATEGIES, Proposal, Strategy, StrategySettings
from .ga import Member as Individual  # the paper's word for a population member
from .ga import Seen, environmental_selection, keyed_tournament, pareto_select, ranked, selection_keys, tournament

PAPER_BUDGET = 100 * 101 + 30 * 2 * 50  # P=100 for T0=100 generations after the first, then S=30 for T1=50


class TwoStageSettings(StrategySettings):
    """TS-ENAS settings; defaults are scaled for CPU, the paper's values are in each description."""

    name: Literal["ts-enas"] = "ts-enas"
    population_size: int | None = Field(default=None, ge=2, le=100000, description=(
        "P, rough-stage population (paper: 100); default a quarter of the rough budget, 2..100"),
        json_schema_extra=flag("--population"))
    rough_fraction: float = Field(default=0.7, gt=0, le=1, description=(
        "share of the budget (evaluations) for the rough stage (paper: 100 of 150 generations, "
        f"10100 of {PAPER_BUDGET} evaluations = 0.77)"))
    crossover_rate: float = Field(default=0.8, ge=0, le=1, description="gamma, crossover probability (paper: 0.8)")
    mutation_rate: float = Field(default=0.2, ge=0, le=1, description="beta, mutation probability (paper: 0.2)")
    alpha: float = Field(default=0.01, ge=0, le=1, description=(
        "accuracy difference below which individuals share a selection level (paper: not given)"))
    fine_size: int | None = Field(default=None, ge=1, le=100000, description=(
        "S, individuals carried into the fine stage (paper: 30 of P=100); default 30 % of P, at least 1"))
    inheritance: bool = Field(default=True, description=(
        "cell-based weight inheritance (paper: on); off trains from scratch"),
        json_schema_extra=flag("--no-inheritance", const=False,
                               help="train every individual from scratch (no weight inheritance)"))
    supernet: Literal["sampled", "stacked"] = Field(default="sampled", description=(
        "how the supernet of all 8 cells is trained: 'stacked' is the paper's fixed stack of the cells; "
        "'sampled' (ours) trains random networks of the space on shared cell weights (see train/inheritance.py)"))
    supernet_epochs: int = Field(default=20, ge=1, le=100000, description="supernet training epochs (paper: 100)")
    refresh_every: int | None = Field(default=None, ge=1, le=10_000_000, description=(
        "evaluations between refreshes of the stored cell weights (paper: 'some generations'); default P"))


def plan(settings: TwoStageSettings, budget: int) -> tuple[int, int, int]:
    """(P, evaluations of the rough stage, S) for a budget: P defaults to a quarter of the
    rough budget (2..100), the rough stage gets at least the initial population."""
    planned = min(budget, max(1, round(budget * settings.rough_fraction)))
    population = settings.population_size or int(min(100, max(2, planned // 4)))
    fine = min(population, settings.fine_size or max(1, round(0.3 * population)))
    return population, min(budget, max(planned, population)), fine


def weight_store_options(settings: TwoStageSettings | None, budget: int) -> dict[str, Any]:
    """Keyword arguments of nasforge.train.inheritance.CellWeightStore for these settings."""
    s = settings or TwoStageSettings()
    return {"supernet_epochs": s.supernet_epochs, "enabled": s.inheritance, "mode": s.supernet,
            "refresh_every": s.refresh_every or plan(s, budget)[0]}


@STRATEGIES.register
class TwoStageEvolution(Strategy):
    name = "ts-enas"
    Settings = TwoStageSettings
    legacy_section = "two_stage"
    family = "cells"

    @classmethod
    def weight_inheritance(cls, settings: TwoStageSettings, budget: int) -> dict[str, Any] | None:
        """Options of the space's weight-inheritance store (the evaluator's starting weights)."""
        return weight_store_options(settings, budget)

    @classmethod
    def check_space(cls, space: SearchSpace) -> None:
        if not isinstance(space, CellsSpace):
            raise NasforgeError("the ts-enas strategy searches the cells space (--space cells)")

    def __init__(self, space: SearchSpace, rng: np.random.Generator, budget: int,
                 settings: TwoStageSettings | None = None):
        super().__init__(space, rng, budget, settings)
        self.space: CellsSpace = space
        self.population_size, self.rough_budget, self.fine_size = plan(self.settings, budget)
        self.stage, self.generation = "rough", 0
        self.population: list[Individual] = []
        self.queue: list[Proposal] = []
        self.outstanding = 0
        self.asked = self.told = 0
        self.offspring: list[Individual] = []
        self.seen = Seen(valid=self.space.is_valid)
        self._keys: tuple[list[Individual], list[Any]] | None = None  # Pareto keys of self.population
        self.bred = False  # the first generation is bred at the first ask, once make_strategy set the proxy

    # --- ask / tell ---
    def ask(self) -> Proposal:
        if not self.bred:
            self.bred = True
            self._breed_first()
        if not self.queue:
            self.queue.append(self._extra())  # asks ran ahead of tells (asynchronous mode)
        proposal = self.queue.pop(0)
        self.seen.add(proposal.genome)
        self.asked += 1
        self.outstanding += 1
        return proposal

    def tell(self, proposal: Proposal, fitness: float | None, metrics: dict[str, Any] | None = None) -> None:
        self.outstanding -= 1
        self.told += 1
        if fitness is not None and math.isfinite(fitness):
            assert proposal.trial is not None, "the study numbers a proposal before telling it"
            params = int((metrics or {}).get("params", 0))
            self.offspring.append(Individual.told(self.goal, proposal.genome, float(fitness), proposal.trial, metrics,
                                                  params=params, order=self.told, slot=proposal.info.get("slot")))
        if not self.queue and self.outstanding == 0:
            self._next_generation()

    def describe(self) -> str:
        s = self.settings
        return (f"TS-ENAS two-stage evolution (P={self.population_size}, rough {self.rough_budget} of {self.budget} "
                f"evaluations, S={self.fine_size}, crossover {s.crossover_rate}, mutation {s.mutation_rate}, "
                f"alpha {s.alpha})")

    # --- generations ---
    def _info(self, **extra: Any) -> dict[str, Any]:
        return {"stage": self.stage, "generation": self.generation, **extra}

    def _breed_first(self) -> None:
        """Algorithm 3: P new random genomes (fewer if the space keeps repeating itself)."""
        n = min(self.population_size, self.rough_budget)
        self.seen.start_batch()
        self.queue = []
        for _ in range(50 * n):
            if len(self.queue) == n:
                break
            g = self.sample_initial()
            if self.seen.is_new(g):
                self._put(self.queue, g, (), "random")

    def _next_generation(self) -> None:
        if self.stage == "rough":
            pool = self.population + self.offspring
            if self.goal.multi:
                self.population = pareto_select(pool, self.population_size, selection_keys(pool, multi=True))
            else:
                feasible = [m for m in pool if m.violation <= 0]
                self.population = environmental_selection(feasible, self.population_size, self.settings.alpha,
                                                          lambda m: m.fitness, lambda m: m.genome.depth)
                self.population += ranked([m for m in pool if m.violation > 0], Individual.key)[
                    : self.population_size - len(self.population)]
        else:
            for member in self.offspring:  # keep the best of {p, p1, p2}
                slot = member.slot
                if slot is not None and slot < len(self.population) and self._better(member, self.population[slot]):
                    self.population[slot] = member
        self.offspring = []
        self.generation += 1
        if not self.population:  # everything failed so far: start again from random genomes
            self._breed_first()
            return
        if self.stage == "rough" and self.asked >= self.rough_budget:
            self.stage = "fine"
            keys = selection_keys(self.population, self.goal.multi)
            self.population = pareto_select(self.population, self.fine_size, keys)
        self._keys = None  # the population changed (the fine stage replaces members in place)
        self.queue = self._breed_rough() if self.stage == "rough" else self._breed_fine()

    def _better(self, child: Individual, parent: Individual) -> bool:
        """Fine stage: whether a child takes its parent's place."""
        if self.goal.multi:
            return pareto.constrained_dominates(child.point or (), child.violation, parent.point or (), parent.violation)
        return child.key() > parent.key()

    def _tournament(self) -> Individual:
        if self.goal.multi:  # Pareto keys of the population, once per population (a generation breeds ~3P)
            if self._keys is None or self._keys[0] is not self.population or len(self._keys[1]) != len(self.population):
                self._keys = (self.population, selection_keys(self.population, True))
            return keyed_tournament(self.population, self._keys[1], 2, self.rng, replace=True)
        return tournament(self.population, 2, self.rng, Individual.key, replace=True)

    def _put(self, batch: list[Proposal], genome: CellsGenome, parents: tuple[Individual, ...], operator: str,
             **info: Any) -> None:
        """Add a child to the generation being bred; the novelty filter hears of it."""
        self.seen.keep(genome)
        batch.append(Proposal(genome, tuple(p.trial for p in parents), operator, self._info(**info)))

    def _breed_rough(self) -> list[Proposal]:
        """Algorithm 2, lines 8-19: crossover pairs and mutants until P new offspring."""
        s, space = self.settings, self.space
        n = min(self.population_size, self.rough_budget - self.asked)
        batch: list[Proposal] = []
        self.seen.start_batch()

        def add(genome: CellsGenome | None, parents: tuple[Individual, ...], operator: str) -> None:
            if len(batch) < n and self.seen.is_new(genome):
                self._put(batch, genome, parents, operator)

        for _ in range(20 * n):
            if len(batch) >= n:
                break
            p1, p2 = self._tournament(), self._tournament()
            if self.rng.random() < s.crossover_rate:
                for child in space.crossover(p1.genome, p2.genome, self.rng):
                    add(child, (p1, p2), "crossover")
            p3 = self._tournament()
            if self.rng.random() < s.mutation_rate:
                operator = "cell" if self.rng.random() < 0.5 else "connection"
                add(space.mutation_operators()[operator](p3.genome, self.rng), (p3,), operator)
        while len(batch) < n:  # the rates bred too few new genomes: force mutations
            parent = self._tournament()
            for _ in range(self.space.max_tries):
                operator = "cell" if self.rng.random() < 0.5 else "connection"
                child = space.mutation_operators()[operator](parent.genome, self.rng)
                if self.seen.is_new(child):
                    break
            else:
                child, operator = space.mutate(parent.genome, self.rng)
            self._put(batch, child, (parent,), operator)
        return batch

    def _fine_child(self, parent: CellsGenome, operator: str) -> CellsGenome | None:
        """A new p1 or p2 of ``parent`` in at most 20 tries; None if none came (or no node to prune)."""
        make = self.space.fine_mutation if operator == "edge/node_input" else self.space.prune_node
        child = self.seen.novel(make(parent, self.rng), lambda _: make(parent, self.rng), 19)
        return child if child is None or self.seen.is_new(child) else None

    def _breed_fine(self) -> list[Proposal]:
        """Algorithm 4, lines 4-6: p1 by mutation and p2 by pruning for every individual."""
        batch: list[Proposal] = []
        self.seen.start_batch()
        for slot, member in enumerate(self.population):
            for operator in ("edge/node_input", "prune"):
                child = self._fine_child(member.genome, operator)
                if child is not None:
                    self._put(batch, child, (member,), operator, slot=slot)
        if not batch:  # nothing new to try in the fine stage: keep searching with any mutation
            member = self.population[0]
            child, operator = self.space.mutate(member.genome, self.rng)
            self._put(batch, child, (member,), operator, slot=0)
        return batch

    def _extra(self) -> Proposal:
        """A further child of the current generation, for an ask made before the generation's
        tells are in; it joins the generation like the others."""
        if not self.population:
            return Proposal(self.space.sample(self.rng), (), "random", self._info(extra=True))
        slot = int(self.rng.integers(len(self.population)))
        parent = self.population[slot]
        child, operator = self.space.mutate(parent.genome, self.rng)
        info = self._info(extra=True, **({"slot": slot} if self.stage == "fine" else {}))
        return Proposal(child, (parent.trial,), operator, info)
