"""EB-LNAST's upper level (strategies/bilevel.py) and the classical baselines (baselines.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nasforge.errors import NasforgeError
from nasforge.spaces import MLPSpace, NB201Space
from nasforge.spaces.mlp import Dense, MLPGenome
from nasforge.strategies.base import Proposal
from nasforge.strategies.bilevel import (
    BilevelEvolution,
    BilevelSettings,
    chosen,
    largest_params,
    most_accurate,
    trade_off_report,
    upper_objective,
)

torch.set_num_threads(1)


def mlp(*units: int) -> MLPGenome:
    return MLPGenome(layers=tuple(Dense(units=u) for u in units))


def tell(s: BilevelEvolution, genome: MLPGenome, params: int, perf: float, trial: int) -> None:
    p = Proposal(genome, trial=trial)
    s.tell(p, perf, {"val_acc": perf, "val_f1": perf, "params": params})


# --- the objective ---
def test_objective_is_the_formula():
    assert upper_objective(100, 0.95, params_max=1000, rho=10, tau=0.9) == pytest.approx(0.1)
    assert upper_objective(100, 0.85, params_max=1000, rho=10, tau=0.9) == pytest.approx(0.1 + 10 * 0.05)
    assert upper_objective(100, 0.85, params_max=1000, rho=10, tau=None) == pytest.approx(0.1)
    # with rho = 10, missing tau by 1 pp costs as much as 10 % of params_max
    small_miss = upper_objective(50, 0.889, params_max=1000, rho=10, tau=0.9)  # 0.05 + 0.11
    assert upper_objective(150, 0.9, params_max=1000, rho=10, tau=0.9) < small_miss  # 0.15
    assert upper_objective(170, 0.9, params_max=1000, rho=10, tau=0.9) > small_miss


def test_moving_tau_rescores_members():
    space = MLPSpace(10, 2, max_layers=2, min_units=2, max_units=64)
    s = BilevelEvolution(space, np.random.default_rng(0), 20, BilevelSettings(params_max=10_000, rho=10, tolerance=0.01))
    tell(s, mlp(2), 100, 0.90, 0)
    assert s.tau == pytest.approx(0.89)
    assert s.objective(100, 0.90) == pytest.approx(0.01)
    tell(s, mlp(64), 1000, 0.95, 1)  # tau moves to 0.94: the small net now misses it by 4 pp
    assert s.tau == pytest.approx(0.94)
    assert s.objective(100, 0.90) == pytest.approx(0.01 + 10 * 0.04)
    assert s.objective(1000, 0.95) == pytest.approx(0.1)
    assert [m.trial for m in s.ranked()] == [1, 0]
    tell(s, mlp(4), 200, 0.945, 2)  # meets tau (0.94) with fewer params: it leads
    assert [m.trial for m in s.ranked()] == [2, 1, 0]


def test_fixed_tau_does_not_move():
    space = MLPSpace(10, 2, max_layers=2, min_units=2, max_units=64)
    s = BilevelEvolution(space, np.random.default_rng(0), 20, BilevelSettings(tau=0.8, params_max=1000))
    tell(s, mlp(2), 100, 0.99, 0)
    tell(s, mlp(4), 50, 0.81, 1)
    assert s.tau == 0.8 and [m.trial for m in s.ranked()] == [1, 0]


def test_settings_are_checked_and_space_must_be_mlp():
    with pytest.raises(Exception):
        BilevelSettings(rho=-1)
    with pytest.raises(Exception):
        BilevelSettings(perf_metric="test_acc")
    with pytest.raises(Exception):
        BilevelSettings(nonsense=1)
    with pytest.raises(NasforgeError):
        BilevelEvolution(NB201Space(), np.random.default_rng(0), 10)
    assert largest_params(MLPSpace(10, 3, max_layers=2, max_units=64)) == 11 * 64 + 65 * 64 + 65 * 3
    space, rng = MLPSpace(10, 3), np.random.default_rng(0)
    assert BilevelEvolution(space, rng, 40, BilevelSettings(population_size=7)).population_size == 7


# --- the loop on a fake lower level ---
def fake_perf(genome: MLPGenome) -> float:
    """Saturates once the narrowest layer has 16 units: accuracy needs width, not depth."""
    narrowest = min(layer.units for layer in genome.layers)
    return 0.95 - 0.3 * max(0.0, math.log2(16 / narrowest)) / 3


def run_fake(seed: int, budget: int = 90) -> tuple[BilevelEvolution, list[Proposal], list[dict]]:
    space = MLPSpace(10, 3, max_layers=3, min_units=2, max_units=256)
    s = BilevelEvolution(space, np.random.default_rng(seed), budget, BilevelSettings(population_size=10))
    proposals, records = [], []
    for i in range(budget):
        p = s.ask()
        p.trial = i
        metrics = {"val_acc": fake_perf(p.genome), "params": p.genome.n_params(10, 3),
                   "test_acc": fake_perf(p.genome), "test_f1": fake_perf(p.genome)}
        s.tell(p, metrics["val_acc"], metrics)
        proposals.append(p)
        records.append({"number": i, "state": "complete", "genome": p.genome.to_dict(), "metrics": metrics,
                        "info": p.info})
    return s, proposals, records


def test_loop_converges_to_small_networks_meeting_tau_and_is_deterministic():
    s, proposals, records = run_fake(0)
    first_gen = [p for p in proposals if p.info.get("initial")]
    assert len(first_gen) == 10 and all(p.info["generation"] == 0 for p in first_gen)
    assert {p.info["generation"] for p in proposals} == set(range(9))
    assert all(p.parents for p in proposals[10:])
    assert len({p.genome for p in proposals}) == len(proposals)  # no architecture trained twice
    best = s.best()
    assert best.perf >= s.tau
    # a single 16-unit layer (227 params) is the smallest network reaching 0.95; random ones are far larger
    initial = np.median([p.genome.n_params(10, 3) for p in first_gen])
    assert best.params <= 300 < initial
    assert chosen(records, s.settings)["number"] == best.trial
    _, again, _ = run_fake(0)
    assert [p.genome for p in again] == [p.genome for p in proposals]
    assert [p.parents for p in again] == [p.parents for p in proposals]
    _, other, _ = run_fake(1)
    assert [p.genome for p in other] != [p.genome for p in proposals]


def test_replay_reproduces_asks():
    s, proposals, _ = run_fake(3, budget=25)
    fresh = BilevelEvolution(s.space, np.random.default_rng(3), 25, BilevelSettings(population_size=10))
    for p in proposals:
        q = fresh.replay(p.genome, type("R", (), {"ask_index": p.trial})())
        q.trial = p.trial
        fresh.tell(q, fake_perf(q.genome), {"val_acc": fake_perf(q.genome), "params": q.genome.n_params(10, 3)})
    assert fresh.ask().genome == s.ask().genome


# --- reading the result ---
def record(number: int, params: int, val: float, test: float, units: int = 8) -> dict:
    return {"number": number, "state": "complete", "genome": mlp(units).to_dict(), "info": {"params_max": 1000},
            "metrics": {"val_acc": val, "val_f1": val - 0.01, "test_acc": test, "test_f1": test - 0.02, "params": params}}


def test_chosen_and_most_accurate_on_hand_made_records():
    records = [record(0, 900, 0.97, 0.95, 128), record(1, 100, 0.965, 0.96, 8), record(2, 50, 0.90, 0.91, 4),
               {"number": 3, "state": "failed", "genome": mlp(2).to_dict(), "metrics": {}}]
    # tau = 0.97 - 0.01 = 0.96: F0 = 0.9, F1 = 0.1, F2 = 0.05 + 10 * 0.06 = 0.65
    assert chosen(records)["number"] == 1
    assert most_accurate(records)["number"] == 0
    assert chosen(records, BilevelSettings(tau=0.85))["number"] == 2  # a lower target: the tiny one
    assert chosen(records, BilevelSettings(rho=0.1))["number"] == 2  # F2 = 0.05 + 0.006
    assert most_accurate(records, BilevelSettings(perf_metric="val_f1"))["number"] == 0
    text = trade_off_report(records)
    assert "trial 1" in text and "trial 0" in text and "88.9 % fewer parameters" in text and "+1.00 pp test" in text
    with pytest.raises(NasforgeError):
        chosen(records[3:])


# --- baselines ---
def test_baselines_on_iris():
    from nasforge import load_task
    from nasforge.baselines import METHODS, run_baselines

    results = run_baselines(load_task("iris", seed=0), seed=0, mlp_configs=6)
    assert [r["name"] for r in results] == list(METHODS)
    for r in results:
        assert r["test_acc"] > 0.8 and 0 < r["test_f1"] <= 1 and r["params"] > 0 and r["wall_s"] >= 0
    lr = results[1]
    assert lr["params"] == 3 * 4 + 3  # 3 classes x 4 features + 3 intercepts


# --- end to end on wdbc with the DE lower level ---
def test_end_to_end_wdbc_de_lower_level():
    from nasforge import load_task
    from nasforge.evaluators.training import TrainingEvaluator as Evaluator
    from nasforge.loop import trial_seed
    from nasforge.measure.settings import MeasureSettings
    from nasforge.storage import TrialRecord
    from nasforge.train.settings import TrainSettings

    task = load_task("wdbc", seed=0)
    space = MLPSpace(30, 2, max_layers=2, min_units=2, max_units=32)
    evaluator = Evaluator(task, TrainSettings(method="de", de_population=8, de_generations=5),
                          MeasureSettings(repeats=1, warmup=0))
    s = BilevelEvolution(space, np.random.default_rng(0), 6, BilevelSettings(population_size=3))
    records = []
    for i in range(6):
        p = s.ask()
        p.trial = i
        metrics = evaluator.evaluate(p.genome, trial_seed(0, i)).metrics
        s.tell(p, metrics["val_acc"], metrics)
        records.append(TrialRecord(i, "complete", p.genome.to_dict(), metrics["val_acc"], metrics, list(p.parents),
                                   p.operator, p.info))
    pick = chosen(records, s.settings)
    assert pick.number == s.best().trial
    assert pick.metrics["val_acc"] >= s.tau and pick.metrics["params"] <= most_accurate(records).metrics["params"]
    assert "chosen (min F)" in trade_off_report(records, s.settings)


def test_end_to_end_via_search(tmp_path):
    import nasforge

    result = nasforge.search("wdbc", strategy="bilevel", budget=4, seed=0, out=tmp_path / "run",
                             train={"method": "de", "de_population": 8, "de_generations": 3},
                             measure={"repeats": 1, "warmup": 0}, space={"max_layers": 2, "max_units": 32})
    records = result.trials
    assert len(records) == 4
    pick = chosen(records)
    assert pick.state == "complete" and pick.metrics["params"] <= most_accurate(records).metrics["params"]
    assert "chosen (min F)" in trade_off_report(records)
