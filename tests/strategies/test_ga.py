"""The GA toolkit (strategies/ga.py) and the MLP crossover (MLPSpace.crossover)."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import pytest

from nasforge.spaces import MLPSpace
from nasforge.spaces.mlp import Dense, MLPGenome
from nasforge.strategies.ga import (
    Member,
    Seen,
    aging,
    environmental_selection,
    mu_plus_lambda,
    rank_key,
    ranked,
    tournament,
)


def mlp(*units: int) -> MLPGenome:
    return MLPGenome(layers=tuple(Dense(units=u) for u in units))


def member(fitness: float, params: int = 0, order: int = 0, units: int = 1) -> Member:
    return Member(mlp(units), fitness, order, params, order)


# --- the tie rule ---
def test_rank_key_prefers_fitness_then_fewer_params_then_earlier():
    a, b, c, d = member(0.9, 500, 3), member(0.8, 10, 0), member(0.9, 100, 2), member(0.9, 100, 1)
    assert ranked([a, b, c, d], Member.key) == [d, c, a, b]
    assert max([a, b, c, d], key=Member.key) is d
    assert rank_key(0.5, 10, 7) > rank_key(0.5, 10, 8) > rank_key(0.5, 11, 0) and rank_key(0.6, 10**9, 99) > rank_key(0.5, 0, 0)


def test_a_minimised_objective_ranks_through_its_negation():
    f = {0: 0.3, 1: 0.1, 2: 0.1}  # F to minimise; 1 and 2 tie on F, 2 is smaller
    ms = [member(0.0, 50, 0), member(0.0, 90, 1), member(0.0, 40, 2)]
    assert [m.order for m in ranked(ms, lambda m: rank_key(-f[m.order], m.params, m.order))] == [2, 1, 0]


# --- the tournament ---
@pytest.mark.parametrize("replace", [False, True])
def test_tournament_picks_the_best_of_the_drawn_sample(replace):
    population = [member(f, order=i) for i, f in enumerate([0.1, 0.7, 0.3, 0.9, 0.5, 0.2])]
    for seed in range(20):
        drawn = (np.random.default_rng(seed).integers(6, size=3) if replace
                 else np.random.default_rng(seed).choice(6, size=3, replace=False))
        expected = max((population[int(i)] for i in drawn), key=lambda m: m.fitness)
        assert tournament(population, 3, np.random.default_rng(seed), lambda m: m.fitness, replace=replace) is expected


def test_tournament_ties_go_to_the_first_drawn_and_the_sample_is_capped():
    population = [member(0.5, order=i) for i in range(4)]
    first = int(np.random.default_rng(1).choice(4, size=4, replace=False)[0])
    assert tournament(population, 10, np.random.default_rng(1), lambda m: m.fitness) is population[first]


# --- the novelty filter ---
def test_seen_knows_asked_genomes_and_the_batch_being_bred():
    seen = Seen()
    seen.add(mlp(4))
    seen.keep(mlp(8))
    assert not seen.is_new(mlp(4)) and not seen.is_new(mlp(8)) and seen.is_new(mlp(16)) and not seen.is_new(None)
    seen.start_batch()
    assert seen.is_new(mlp(8)) and not seen.is_new(mlp(4))
    assert not Seen(valid=lambda g: len(g.layers) < 2).is_new(mlp(4, 4))


def test_novel_retries_a_bounded_number_of_times():
    seen = Seen()
    seen.add(mlp(1))
    calls = []

    def again(g: MLPGenome) -> MLPGenome:
        calls.append(g)
        return mlp(1)  # never new

    assert seen.novel(mlp(1), again, 5) == mlp(1) and len(calls) == 5  # the last one, though not new
    assert seen.novel(mlp(1), lambda g: mlp(g.layers[0].units + 1), 5) == mlp(2)  # stops at the first new
    assert seen.novel(mlp(1), lambda g: None, 5) is None  # nothing left to try
    assert seen.novel(mlp(3), again, 0) == mlp(3)


# --- survival ---
def test_aging_drops_the_oldest_not_the_worst():
    population: deque[Member] = deque()
    for i, f in enumerate([0.9, 0.1, 0.5, 0.3]):
        aging(population, member(f, order=i), 3)
    assert [m.order for m in population] == [1, 2, 3]


def test_mu_plus_lambda_keeps_the_best_of_parents_and_children():
    parents = [member(0.9, order=0), member(0.2, order=1)]
    children = [member(0.5, order=2), member(0.9, 10, order=3), member(0.1, order=4)]
    assert [m.order for m in mu_plus_lambda(parents, children, 3, Member.key)] == [0, 3, 2]


@dataclass
class Point:
    fitness: float
    depth: int


def test_environmental_selection_takes_whole_levels_then_low_density():
    pool = [Point(0.90, 2), Point(0.895, 2), Point(0.80, 2), Point(0.795, 3), Point(0.793, 2), Point(0.5, 3)]
    pick = environmental_selection(pool, 4, 0.01, lambda p: p.fitness, lambda p: p.depth)
    # level {0.90, 0.895} fits whole; from level {0.80, 0.795, 0.793} the depth-3 one comes first, then the fitter
    assert pick == [pool[0], pool[1], pool[3], pool[2]]
    assert environmental_selection(pool, 10, 0.01, lambda p: p.fitness, lambda p: p.depth) == pool


# --- crossover as a space operation ---
def test_mlp_crossover_joins_a_prefix_of_one_parent_to_a_suffix_of_the_other():
    space = MLPSpace(10, 3, max_layers=4, max_units=64)
    a, b = mlp(8, 16, 32), mlp(4, 64)
    for seed in range(10):
        child = space.crossover(a, b, np.random.default_rng(seed))
        assert child is not None and child not in (a, b) and space.is_valid(child)
        units = [layer.units for layer in child.layers]
        assert any(units == [8, 16, 32][:i] + [4, 64][j:] for i in range(4) for j in range(3))
    assert space.crossover(MLPGenome(), MLPGenome(), np.random.default_rng(0)) is None  # every cut is a parent
