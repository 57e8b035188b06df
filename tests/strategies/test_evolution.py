import numpy as np

from nasforge.spaces import MLPSpace
from nasforge.strategies.evolution import EvolutionSettings, RegularizedEvolution
from nasforge.strategies.random import RandomSearch


def run(strategy, fitness_of, n):
    """Serial ask/tell loop; returns proposals in order."""
    proposals = []
    for i in range(n):
        p = strategy.ask()
        p.trial = i
        strategy.tell(p, fitness_of(p, i))
        proposals.append(p)
    return proposals


def space():
    return MLPSpace(8, 2, max_layers=3, max_units=64)


def test_initial_population_is_random_then_children_have_parents():
    s = RegularizedEvolution(space(), np.random.default_rng(0), 20, EvolutionSettings(population_size=5, sample_size=2))
    ps = run(s, lambda p, i: float(i), 12)
    assert all(p.operator == "random" and not p.parents for p in ps[:5])
    assert all(p.parents and p.operator != "random" for p in ps[5:])


def test_aging_removes_the_oldest_not_the_worst():
    s = RegularizedEvolution(space(), np.random.default_rng(0), 20, EvolutionSettings(population_size=4, sample_size=2))
    # the first member is the best of all; aging must still drop it once 4 more arrive
    run(s, lambda p, i: 100.0 if i == 0 else float(i), 5)
    assert [m.trial for m in s.population] == [1, 2, 3, 4]
    run_more = [s.ask() for _ in range(1)]
    run_more[0].trial = 5
    s.tell(run_more[0], -1.0)  # the worst joins, the oldest (trial 1) leaves
    assert [m.trial for m in s.population] == [2, 3, 4, 5]


def test_tournament_picks_the_best_of_the_sample():
    s = RegularizedEvolution(space(), np.random.default_rng(3), 50, EvolutionSettings(population_size=6, sample_size=6))
    fitness = {}
    run(s, lambda p, i: fitness.setdefault(i, float((i * 7) % 6)), 6)
    best = max(s.population, key=lambda m: m.fitness).trial
    # S == P: the whole population is sampled, so the parent is always the best member
    for _ in range(5):
        p = s.ask()
        assert p.parents == (best,)


def test_tournament_with_small_sample_is_best_of_that_sample():
    s = RegularizedEvolution(space(), np.random.default_rng(5), 50, EvolutionSettings(population_size=8, sample_size=3))
    run(s, lambda p, i: float(i % 5), 8)
    members = list(s.population)
    state = s.rng.bit_generator.state
    picks = s.rng.choice(len(members), size=3, replace=False)
    s.rng.bit_generator.state = state  # ask() draws the same sample next
    expected = max((members[int(i)] for i in picks), key=lambda m: m.fitness).trial
    assert s.ask().parents == (expected,)


def test_failed_initial_trials_are_replaced():
    s = RegularizedEvolution(space(), np.random.default_rng(0), 20, EvolutionSettings(population_size=3, sample_size=2))
    ps = run(s, lambda p, i: None if i < 2 else 1.0, 6)
    assert [p.operator for p in ps[:5]] == ["random"] * 5  # 2 failures replaced: 5 random asks
    assert len(s.population) == 3 and ps[5].parents


def test_same_seed_same_proposals():
    a = run(RegularizedEvolution(space(), np.random.default_rng(9), 30), lambda p, i: float(i % 7), 20)
    b = run(RegularizedEvolution(space(), np.random.default_rng(9), 30), lambda p, i: float(i % 7), 20)
    assert [p.genome for p in a] == [p.genome for p in b]


def test_random_search_samples_valid_genomes():
    sp = space()
    ps = run(RandomSearch(sp, np.random.default_rng(0), 10), lambda p, i: 0.5, 10)
    assert all(sp.is_valid(p.genome) and not p.parents for p in ps)
    assert len({p.genome.id for p in ps}) > 5
