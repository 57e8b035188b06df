"""Contracts every registered part keeps, whatever its name: a new strategy or search space
gets these tests without an edit here (as Optuna's sampler test suite does).

Strategies: same seed, same asks; a rebuilt strategy replayed through the stored history
continues exactly as the one that never stopped; failed trials are survivable; asks may run
ahead of tells; settings it does not have are a one-line error. Families: sampled and
mutated genomes stay valid, genomes survive a JSON round trip, the built network's output
has one logit per class, and their settings come from the config's [space] table.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_golden import synthetic_metrics

from nasforge.config import build_config
from nasforge.errors import NasforgeError
from nasforge.spaces import SPACES, genome_from_dict
from nasforge.strategies import STRATEGIES, make_strategy

TASK = SimpleNamespace(name="contract", input_shape=(1, 8, 8), n_classes=3, n_outputs=3)
STRATEGY_NAMES = STRATEGIES.names()
FAMILIES = SPACES.names()


def space_for(strategy: str):
    """The first registered family the strategy can search (its own, if it is bound to one)."""
    cls = STRATEGIES.get(strategy)
    for family in ([cls.family] if cls.family else FAMILIES):
        space = SPACES.get(family).from_settings(SPACES.get(family).Settings(family=family), TASK)
        try:
            cls.check_space(space)
        except NasforgeError:
            continue
        return space
    pytest.fail(f"{strategy} can search none of the registered families")


def build(strategy: str, seed: int = 0, budget: int = 30):
    return make_strategy(strategy, space_for(strategy), np.random.default_rng(seed), budget)


def tell(strategy, proposal, number: int) -> None:
    proposal.trial = number
    metrics = synthetic_metrics(proposal.genome)
    strategy.tell(proposal, None if metrics is None else metrics["val_acc"], metrics)


def serial(strategy, n: int) -> list:
    out = []
    for number in range(n):
        proposal = strategy.ask()
        tell(strategy, proposal, number)
        out.append(proposal)
    return out


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_same_seed_same_asks(name):
    a, b = serial(build(name), 14), serial(build(name), 14)
    assert [p.genome.id for p in a] == [p.genome.id for p in b]
    assert [p.parents for p in a] == [p.parents for p in b]


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_replayed_history_continues_like_the_uninterrupted_run(name):
    whole = build(name)
    history = serial(whole, 10)
    rebuilt = build(name)
    for number, done in enumerate(history):  # what the study does on resume
        record = SimpleNamespace(ask_index=number, parents=list(done.parents), operator=done.operator, info=done.info)
        tell(rebuilt, rebuilt.replay(done.genome, record), number)
    assert [p.genome.id for p in serial(rebuilt, 6)] == [p.genome.id for p in serial(whole, 6)]


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_failed_trials_are_survived_and_asks_stay_in_the_space(name):
    strategy = build(name)
    space = strategy.space
    for number in range(12):
        proposal = strategy.ask()
        assert space.is_valid(proposal.genome), proposal.genome.summary()
        proposal.trial = number
        strategy.tell(proposal, None if number % 3 else 0.5, {"params": 10} if number % 3 == 0 else {})


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_asks_may_run_ahead_of_tells(name):
    strategy = build(name)
    out = [strategy.ask() for _ in range(4)]  # four workers start before any result is back
    for number, proposal in enumerate(out):
        tell(strategy, proposal, number)
    out += serial(strategy, 4)
    assert all(strategy.space.is_valid(p.genome) for p in out)


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_a_setting_the_strategy_lacks_is_a_one_line_error(name):
    with pytest.raises(NasforgeError, match=f"the {name} strategy has no such setting") as err:
        build_config({"strategy": {"name": name, "no_such_setting": 1}})
    assert "\n" not in str(err.value)
    assert type(build_config({"strategy": {"name": name}}).strategy) is STRATEGIES.get(name).Settings


@pytest.mark.parametrize("family", FAMILIES)
def test_sampled_and_mutated_genomes_stay_valid_and_round_trip(family):
    cls = SPACES.get(family)
    space = cls.from_settings(cls.Settings(family=family), TASK)
    rng = np.random.default_rng(0)
    for _ in range(5):
        genome = space.sample(rng)
        child, operator = space.mutate(genome, rng)
        for g in (genome, child):
            assert space.is_valid(g) and g.family == family
            again = genome_from_dict(g.to_dict())
            assert again == g and again.id == g.id and again.to_json() == g.to_json()
        assert child != genome and operator in space.mutation_operators()


@pytest.mark.parametrize("family", FAMILIES)
def test_built_network_gives_one_logit_per_class(family):
    cls = SPACES.get(family)
    space = cls.from_settings(cls.Settings(family=family), TASK)
    genome = space.sample(np.random.default_rng(1))
    torch.manual_seed(0)
    model = genome.build(TASK.input_shape, TASK.n_classes).eval()
    with torch.no_grad():
        out = model(torch.randn(2, *TASK.input_shape))
    assert out.shape == (2, TASK.n_classes) and torch.isfinite(out).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_family_settings_come_from_the_space_table(family):
    config = build_config({"space": {"family": family}})
    assert type(config.space) is SPACES.get(family).Settings
    with pytest.raises(NasforgeError, match=f"the {family} search space has no such setting"):
        build_config({"space": {"family": family, "no_such_bound": 1}})
