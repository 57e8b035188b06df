"""TS-ENAS: environmental selection, the two-stage ask/tell strategy, cell weight inheritance."""
from __future__ import annotations

import dataclasses
import pickle
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nasforge
from nasforge.data import load_task
from nasforge.errors import NasforgeError
from nasforge.spaces import MLPSpace
from nasforge.spaces.cells import CellsGenome, CellsSpace
from nasforge.strategies.two_stage import Individual, TwoStageEvolution, TwoStageSettings, environmental_selection
from nasforge.train.inheritance import CellWeightStore, head_key, parts, slot_key, tensor_key
from nasforge.train.settings import TrainSettings
from nasforge.train.trainer import predict_logits, train

torch.set_num_threads(1)


def fake_fitness(genome: CellsGenome) -> float:
    """Deterministic and structure-dependent: rewards DARTS/CARS cells, reductions and pruned nodes."""
    score = sum(c.code % 4 for c in genome.cells) + 2 * genome.reductions - 0.05 * sum(len(c.nodes) for c in genome.cells)
    return round(score / 40, 4)


def drive(strategy, n, fail_every=0):
    log = []
    for i in range(n):
        p = strategy.ask()
        p.trial = i
        fitness = None if fail_every and i % fail_every == fail_every - 1 else fake_fitness(p.genome)
        strategy.tell(p, fitness, {"params": 1000 + 10 * p.genome.depth})
        log.append(p)
    return log


def make(budget=60, seed=0, **settings):
    space = CellsSpace((1, 8, 8), 10, min_cells=2, max_cells=6)
    return TwoStageEvolution(space, np.random.default_rng(seed), budget, TwoStageSettings(**settings))


def ind(fitness, depth, order):
    genome = CellsGenome.from_codes([(j, 0, 1) for j in range(depth)])
    return Individual(genome, fitness, order, 100, order)


def test_environmental_selection_fills_levels_then_prefers_low_density():
    pool = [ind(0.95, 3, 0), ind(0.948, 3, 1), ind(0.946, 4, 2), ind(0.90, 3, 3), ind(0.899, 5, 4), ind(0.80, 5, 5)]
    pick = environmental_selection(pool, 4, 0.01, lambda m: m.fitness, lambda m: m.genome.depth)
    # level 1 = {0.95, 0.948, 0.946} fits whole; level 2 = {0.90 (N=3), 0.899 (N=5)} overflows and
    # the less fit 0.899 wins: two N=3 individuals are already in, no N=5 one
    assert [m.order for m in pick] == [0, 1, 2, 4]
    # inside an overflowing level: first the fittest (all densities 0), then the other depth
    pick = environmental_selection(pool[:3], 2, 0.01, lambda m: m.fitness, lambda m: m.genome.depth)
    assert [m.order for m in pick] == [0, 2]
    # levels are anchored at their best: 0.95 -> 0.941 is one level, 0.935 starts the next
    pool = [ind(0.95, 3, 0), ind(0.944, 3, 1), ind(0.941, 4, 2), ind(0.935, 4, 3)]
    pick = environmental_selection(pool, 3, 0.01, lambda m: m.fitness, lambda m: m.genome.depth)
    assert [m.order for m in pick] == [0, 1, 2]
    assert environmental_selection(pool, 10, 0.01, lambda m: m.fitness, lambda m: m.genome.depth) == sorted(
        pool, key=lambda m: -m.fitness)


def test_settings_have_the_paper_rates_and_forbid_unknown_keys():
    s = TwoStageSettings()
    assert (s.crossover_rate, s.mutation_rate, s.rough_fraction) == (0.8, 0.2, 0.7)
    with pytest.raises(Exception):
        TwoStageSettings(populaton=10)
    with pytest.raises(NasforgeError, match="cells space"):
        TwoStageEvolution(MLPSpace(8, 2), np.random.default_rng(0), 10)


def test_loop_runs_both_stages_in_order_and_is_deterministic():
    strategy = make(budget=60)
    log = drive(strategy, 60, fail_every=13)
    again = drive(make(budget=60), 60, fail_every=13)
    assert [p.genome for p in log] == [p.genome for p in again]
    assert [(p.operator, p.parents, p.info) for p in log] == [(p.operator, p.parents, p.info) for p in again]
    stages = [p.info["stage"] for p in log]
    rough = strategy.rough_budget
    assert rough == 42 and stages == ["rough"] * rough + ["fine"] * (60 - rough)
    gens = [p.info["generation"] for p in log]
    assert gens == sorted(gens) and Counter(gens)[0] == strategy.population_size
    assert all(p.operator == "random" for p in log[: strategy.population_size])
    assert {p.operator for p in log[strategy.population_size : rough]} <= {"crossover", "cell", "connection"}
    assert {p.operator for p in log[rough:]} == {"edge/node_input", "prune"}
    assert all(p.parents for p in log[strategy.population_size :])
    assert len({p.genome.id for p in log}) == 60  # nothing evaluated twice
    assert all(2 * p.genome.reductions < p.genome.depth for p in log)


def test_fine_stage_keeps_the_best_of_parent_and_children():
    strategy = make(budget=70, population_size=6, fine_size=3)
    log = drive(strategy, strategy.rough_budget)
    assert strategy.stage == "fine" and len(strategy.population) == 3
    before = [m.fitness for m in strategy.population]
    assert before == sorted(before, reverse=True)
    fine = drive_from(strategy, len(log), len(strategy.queue))
    for slot, member in enumerate(strategy.population):
        kids = [fake_fitness(p.genome) for p in fine if p.info["slot"] == slot]
        assert member.fitness == max([before[slot], *kids])
    assert all(p.info["stage"] == "fine" for p in fine)


def drive_from(strategy, start, n):
    log = []
    for i in range(start, start + n):
        p = strategy.ask()
        p.trial = i
        strategy.tell(p, fake_fitness(p.genome), {"params": 1000 + 10 * p.genome.depth})
        log.append(p)
    return log


def test_replay_rebuilds_the_same_state_and_continues_identically():
    full = drive(make(budget=50, seed=3), 50)
    resumed = make(budget=50, seed=3)
    for i, p in enumerate(full[:31]):  # what the study does on resume: replay asks, then tells
        q = resumed.replay(p.genome, SimpleNamespace(ask_index=i))
        q.trial = i
        resumed.tell(q, fake_fitness(q.genome), {"params": 1000 + 10 * q.genome.depth})
    rest = drive_from(resumed, 31, 19)
    assert [p.genome for p in rest] == [p.genome for p in full[31:]]
    assert [p.info for p in rest] == [p.info for p in full[31:]]


def test_asks_ahead_of_tells_join_the_current_generation():
    strategy = make(budget=40, population_size=4)
    asked = [strategy.ask() for _ in range(6)]  # four planned children, two extra
    assert [p.info.get("extra", False) for p in asked] == [False] * 4 + [True] * 2
    for i, p in enumerate(asked):
        p.trial = i
        strategy.tell(p, fake_fitness(p.genome), {})
    assert strategy.generation == 1 and len(strategy.population) == 4


# --- weight inheritance ---


def stored(state, prefix):
    """The stored tensor whose name is ``prefix`` (keys are "name:shape")."""
    return next(v for k, v in state.items() if k.split(":")[0] == prefix)


@pytest.fixture(scope="module")
def small_task():
    task = load_task("digits-images", seed=0)
    return dataclasses.replace(task, X_train=task.X_train[:500], y_train=task.y_train[:500])


@pytest.fixture(scope="module")
def trained_store(small_task, tmp_path_factory):
    space = CellsSpace(small_task.input_shape, small_task.n_classes, min_cells=2, max_cells=3, channels=4)
    path = tmp_path_factory.mktemp("store") / "cell_weights.pt"
    store = CellWeightStore(small_task, space, TrainSettings(lr=1e-2), path, supernet_epochs=8, refresh_every=2,
                            batches_per_network=2)
    genome = CellsGenome.from_codes([(0, 0, 1), (1, 0, 2), (2, 1, 7)], channels=4)
    torch.manual_seed(0)
    assert store.initialise(genome.build(space.input_shape, 10), genome)  # trains the supernet
    return store


def test_initialise_copies_the_stored_tensors(trained_store):
    store = trained_store
    genome = CellsGenome.from_codes([(0, 0, 1), (1, 0, 2), (2, 1, 7)], channels=4)
    model = genome.build((1, 8, 8), 10)
    assert store.initialise(model, genome)
    assert 0.5 < store.last_fraction <= 1
    compared = 0
    for slot, module in parts(model):
        for name, param in module.named_parameters():
            key = tensor_key(name, param)
            if key in store.slots.get(slot, {}):
                assert torch.equal(param, store.slots[slot][key]), (slot, name)
                compared += param.numel()
    assert compared == round(store.last_fraction * sum(p.numel() for p in model.parameters()))
    assert torch.equal(model.stem[0].weight, stored(store.slots["stem"], "0.weight"))
    assert store.supernet_info["networks"] > 10


def test_inheritance_lowers_the_loss_after_one_epoch(trained_store, small_task):
    t, settings = small_task, TrainSettings(epochs=1, patience=0)
    genomes = [CellsGenome.from_codes(c, channels=4) for c in ([(0, 0, 1), (1, 0, 2), (2, 1, 3)],
                                                               [(0, 0, 4), (1, 1, 5), (2, 0, 3)])]
    start, after = {True: [], False: []}, {True: [], False: []}
    for genome in genomes:
        for use in (True, False):
            torch.manual_seed(0)
            model = genome.build(t.input_shape, t.n_classes)
            if use:
                trained_store.initialise(model, genome)
            start[use].append(float(F.cross_entropy(predict_logits(model, t.X_val), t.y_val)))
            result = train(model, t.X_train, t.y_train, t.X_val, t.y_val, settings, torch.Generator().manual_seed(0))
            after[use].append(result.history[0][0])  # training loss of the first epoch
    print("val loss at start", start, "train loss in epoch 1", after)
    assert np.mean(start[True]) < np.mean(start[False])
    assert np.mean(after[True]) < np.mean(after[False]) - 0.05


def test_update_refresh_and_reload(trained_store, small_task, tmp_path):
    store = trained_store
    space = store.space
    g1 = CellsGenome.from_codes([(0, 0, 1), (1, 0, 2), (2, 1, 7)], channels=4)
    g2 = CellsGenome.from_codes([(0, 0, 1), (1, 0, 4)], channels=4)
    models, n = {}, store.evaluations
    for g, acc in ((g1, 0.5), (g2, 0.9), (g2, 0.9), (g1, 0.5)):  # g2 twice: a re-run after a crash
        m = g.build((1, 8, 8), 10)
        with torch.no_grad():
            for p in m.parameters():
                p.fill_(acc)  # recognisable weights
        metrics = {"val_acc": acc, "val_loss": 1 - acc}
        store.update(m, g, metrics)
        assert 0 < metrics["inherited_fraction"] <= 1
        models[g.id] = m
    # g1 counted when g2 arrived, g2 once (its re-run replaced it) when g1 came again: 2 -> refresh
    assert store.evaluations == n + 2 and store.refreshes == 1 and store.pending["id"] == g1.id
    m1, m2 = models[g1.id], models[g2.id]

    def value(slot, name, tensor):
        return float(store.slots[slot][tensor_key(name, tensor)].flatten()[0])

    assert value(slot_key(1, 4), "pre1.1.weight", m2.cells[0].pre1[1].weight) == pytest.approx(0.9)
    assert value(slot_key(7, 8), "pre1.1.weight", m1.cells[2].pre1[1].weight) == pytest.approx(0.5)
    assert value("stem", "0.weight", m2.stem[0].weight) == pytest.approx(0.9)
    assert value(head_key(4, 4), "weight", m2.classifier.weight) == pytest.approx(0.9)
    assert value(head_key(7, 8), "weight", m1.classifier.weight) == pytest.approx(0.5)
    store.save()

    reloaded = CellWeightStore(small_task, space, TrainSettings(), store.path, supernet_epochs=8, refresh_every=2,
                               batches_per_network=2)
    reloaded._train_sampled = lambda: pytest.fail("a saved store must not train the supernet again")
    m = g1.build((1, 8, 8), 10)
    assert reloaded.initialise(m, g1) and reloaded.evaluations == n + 2 and reloaded.pending["id"] == g1.id
    assert torch.equal(m.stem[0].weight, stored(store.slots["stem"], "0.weight"))

    again = CellWeightStore(small_task, space, TrainSettings(), store.path, supernet_epochs=8, refresh_every=2,
                            batches_per_network=2)
    worker = pickle.loads(pickle.dumps(again))  # what a process pool gets (pickling loads the saved store)
    assert worker.best == [] and worker.pending is None
    m = g2.build((1, 8, 8), 10)
    assert worker.initialise(m, g2) and torch.equal(m.stem[0].weight, stored(store.slots["stem"], "0.weight"))

    off = CellWeightStore(small_task, space, TrainSettings(), tmp_path / "x.pt", enabled=False)
    assert not off.initialise(g1.build((1, 8, 8), 10), g1) and not (tmp_path / "x.pt").exists()


def test_stacked_supernet_mode_stores_every_cell_and_its_head(small_task, tmp_path):
    tiny = dataclasses.replace(small_task, X_train=small_task.X_train[:128], y_train=small_task.y_train[:128])
    space = CellsSpace(tiny.input_shape, 10, min_cells=2, max_cells=3, channels=2)
    store = CellWeightStore(tiny, space, TrainSettings(), tmp_path / "w.pt", supernet_epochs=1, mode="stacked")
    genome = CellsGenome.from_codes([(0, 0, 3), (1, 0, 8)], channels=2)
    assert store.initialise(genome.build(tiny.input_shape, 10), genome)
    assert {slot_key(c, 2) for c in range(1, 5)} | {slot_key(c, 4) for c in range(1, 9)} <= set(store.slots)
    assert head_key(8, 4) in store.slots and "stem" in store.slots


def test_small_real_search_with_inheritance(tmp_path):
    result = nasforge.search("digits-images", strategy="ts-enas", budget=6, seed=0, out=tmp_path / "run",
                             space={"family": "cells", "min_cells": 2, "max_cells": 3, "channels": 4},
                             config={"strategy": {"population_size": 4, "two_stage": {"supernet_epochs": 2}}},
                             train={"epochs": 1}, measure={"repeats": 1, "warmup": 0})
    done = [t for t in result.trials if t.state == "complete"]
    assert len(result.trials) == 6 and done
    assert (tmp_path / "run" / "cell_weights.pt").is_file()
    assert all(t.metrics["inherited_fraction"] > 0.5 for t in done)  # started from the supernet's cells
    assert {t.info["stage"] for t in result.trials} == {"rough", "fine"}
    assert result.best_genome.family == "cells"
