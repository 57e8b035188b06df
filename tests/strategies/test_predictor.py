"""The predictor strategy (issue #20): encodings, the ensemble's ranking, search in table
mode against random search, workers, several objectives, NaN predictions, the CLI and
exact resume after kill -9."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import SHARED_DATA, cli, kill_after, run_study
from scipy.stats import spearmanr

import nasforge
from nasforge.config import build_config
from nasforge.errors import NasforgeError
from nasforge.evaluators.table import NB201Table, TabularEvaluator
from nasforge.objectives import Goal
from nasforge.runs import read_stored_config
from nasforge.spaces import SPACES, MLPSpace, NB201Space, genome_from_dict
from nasforge.spaces.encodings import ENCODERS, encode, encoder_for
from nasforge.strategies import make_strategy
from nasforge.strategies.acquisition import acquire
from nasforge.strategies.gaussian_process import GaussianProcess, quantile_offsets
from nasforge.strategies.predictor import ranks
from nasforge.strategies.surrogate import Ensemble

TASK = SimpleNamespace(name="predictor", input_shape=(1, 8, 8), n_classes=3, n_outputs=3)
TABLE = SHARED_DATA / "nb201_12epoch.csv"


def space_of(family: str):
    cls = SPACES.get(family)
    return cls.from_settings(cls.Settings(family=family), TASK)


@pytest.mark.parametrize("family", sorted(ENCODERS))
def test_encodings_have_a_fixed_length_and_tell_genomes_apart(family):
    space = space_of(family)
    rng = np.random.default_rng(0)
    genomes = [space.sample(rng) for _ in range(30)]
    genomes += [space.mutate(g, rng)[0] for g in genomes[:10]]
    X = encode(space, genomes)
    assert X.shape[0] == len(genomes) and np.isfinite(X).all()
    by_id = {g.id: tuple(row) for g, row in zip(genomes, X)}
    assert len(set(by_id.values())) == len(by_id)  # different genomes, different vectors
    again = encode(space, [genome_from_dict(g.to_dict()) for g in genomes])
    assert np.array_equal(again, X)  # the same genome (after a JSON round trip), the same vector


def test_a_family_without_an_encoding_is_a_one_line_error():
    with pytest.raises(NasforgeError, match="the toy space has no encoding") as err:
        encoder_for(SimpleNamespace(name="toy"))
    assert "\n" not in str(err.value)


def conv_count(genome) -> float:
    return float(sum(op.startswith("nor_conv") for op in genome.ops))


def test_the_ensemble_ranks_a_synthetic_accuracy_after_a_few_dozen_points():
    space, rng = NB201Space(), np.random.default_rng(1)
    train, held = [space.sample(rng) for _ in range(40)], [space.sample(rng) for _ in range(300)]
    model = Ensemble(members=5, hidden=32, seed=0).fit(encode(space, train), np.array([conv_count(g) for g in train]))
    predicted = model.predict(encode(space, held)).mean(axis=0)[:, 0]
    rho = spearmanr(predicted, [conv_count(g) for g in held]).statistic
    assert rho > 0.8, rho


def best_test_regret(strategy: str, seed: int, budget: int, evaluator: TabularEvaluator, oracle: float) -> float:
    """Test regret (points) of the cell with the best validation accuracy in ``budget`` queries."""
    s = make_strategy(strategy, NB201Space(), np.random.default_rng(seed), budget)
    best = (-1.0, 0.0)
    for number in range(budget):
        proposal = s.ask()
        proposal.trial = number
        metrics = evaluator.evaluate(proposal.genome, seed).metrics
        s.tell(proposal, metrics["val_acc"], metrics)
        best = max(best, (metrics["val_acc"], metrics["test_acc"]))
    return oracle - 100 * best[1]


@pytest.mark.slow
def test_in_table_mode_it_beats_random_search_at_a_small_budget():
    bench = NB201Table(TABLE)
    evaluator, oracle = TabularEvaluator(bench, "cifar10"), bench.best("cifar10", "test")[1]
    seeds = range(3)
    predictor = [best_test_regret("predictor", s, 50, evaluator, oracle) for s in seeds]
    random = [best_test_regret("random", s, 50, evaluator, oracle) for s in seeds]
    assert np.mean(predictor) < np.mean(random) - 0.3, (predictor, random)


def told_strategy(goal: Goal | None = None, **settings):
    """A predictor on a small mlp space that has been told its initial candidates."""
    space = MLPSpace(10, 3, max_layers=3, max_units=64)
    strategy = make_strategy("predictor", space, np.random.default_rng(0), 40, goal=goal,
                             **{"initial": 6, "candidates": 30, **settings})
    for number in range(6):
        proposal = strategy.ask()
        assert proposal.info.get("initial")
        proposal.trial = number
        params = proposal.genome.n_params(10, 3)
        val = 0.5 + 0.05 * len(proposal.genome.layers)
        strategy.tell(proposal, val, {"val_acc": val, "params": params})
    return strategy


def test_asks_ahead_of_tells_never_repeat_and_say_how_long_they_took():
    strategy = told_strategy()
    out = [strategy.ask() for _ in range(8)]  # eight workers start before any result is back
    ids = [p.genome.id for p in out]
    assert len(set(ids)) == 8
    for p in out:
        assert strategy.space.is_valid(p.genome)
        assert 0 <= p.info["predict_s"] < 1.0 and p.info["candidates"] > 0 and len(p.info["predicted"]) == 1
        assert p.parents or p.operator == "random"


def test_with_several_objectives_the_parameter_count_is_computed_not_predicted():
    strategy = told_strategy(goal=Goal(["accuracy", "params"]), acquisition="ucb")
    for _ in range(3):
        proposal = strategy.ask()
        accuracy, params = proposal.info["predicted"]
        assert params == proposal.genome.n_params(10, 3) and np.isfinite(accuracy)  # in the objective's units


def test_nan_predictions_score_as_worst_and_are_noted(monkeypatch):
    scores, nan = acquire(np.array([[[0.2], [np.nan], [0.5]], [[0.3], [0.1], [np.nan]]]), "ucb", 1.0,
                          np.random.default_rng(0))
    assert nan == 2 and scores[0, 0] > scores[1, 0] and scores[2, 0] == scores[1, 0] < 0.2
    strategy = told_strategy()
    real = Ensemble.predict

    def half_nan(self, X):
        out = real(self, X)
        out[:, ::2] = np.nan
        return out

    monkeypatch.setattr(Ensemble, "predict", half_nan)
    proposal = strategy.ask()
    assert proposal.info["nan_predictions"] == (proposal.info["candidates"] + 1) // 2
    assert strategy.space.is_valid(proposal.genome)


@pytest.mark.parametrize("setting", [{"ensemble": 0}, {"candidates": 0}, {"fresh": 1.5}, {"acquisition": "ei"},
                                     {"initial": 1}])
def test_settings_out_of_range_are_a_one_line_error(setting):
    with pytest.raises(NasforgeError, match="strategy") as err:
        build_config({"strategy": {"name": "predictor", **setting}})
    assert "\n" not in str(err.value)


def test_a_bad_setting_on_the_command_line_is_one_line_and_exit_2(tmp_path):
    r = cli("search", "--strategy", "predictor", "--ensemble", "0", "--out", tmp_path / "x")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "ensemble" in r.stderr, r.stderr


def table_config(budget: int) -> dict:
    return {"budget": budget, "seed": 2, "strategy": {"name": "predictor", "initial": 5},
            "benchmark": {"file": str(TABLE), "dataset": "cifar100"}}


def test_a_run_continued_from_its_stored_trials_proposes_what_the_uninterrupted_run_did(tmp_path):
    whole = run_study(tmp_path / "whole", build_config(table_config(24)))
    run_study(tmp_path / "parts", build_config(table_config(14)))
    parts = run_study(tmp_path / "parts", build_config(table_config(24)))  # replays 14, then goes on
    assert [t.genome for t in parts] == [t.genome for t in whole]
    assert len({json.dumps(t.genome, sort_keys=True) for t in whole}) == 24  # no repeats


@pytest.mark.slow
def test_cli_search_on_real_data_then_kill_9_and_resume_equals_the_uninterrupted_run(tmp_path):
    fast = ["--dataset", "iris", "--strategy", "predictor", "--initial", "3", "--candidates", "40", "--budget", 8,
            "--seed", 1, "--epochs", 3, "--patience", 0, "--max-layers", 2, "--max-units", 32]
    ref = tmp_path / "ref"
    r = cli("search", *fast, "--out", ref, "--quiet")
    assert r.returncode == 0, r.stderr
    ref_trials = json.loads(cli("show", ref, "--json").stdout)
    assert sum(t["state"] == "complete" for t in ref_trials) == 8
    guided = [t for t in ref_trials if not t["info"].get("initial")]
    assert len(guided) == 5 and all(0 <= t["info"]["predict_s"] < 1.0 for t in guided)

    out = tmp_path / "killed"
    assert len(kill_after(["search", *fast, "--out", out, "--jsonl"], 5)) == 5
    assert cli("resume", out, "--quiet").returncode == 0
    trials = json.loads(cli("show", out, "--json").stdout)

    def key(ts):
        return sorted((t["ask_index"], json.dumps(t["genome"], sort_keys=True), t["fitness"])
                      for t in ts if t["state"] == "complete" and not t["interrupted"])

    assert key(trials) == key(ref_trials)


def test_an_exhausted_space_gives_a_repeat_quickly_and_says_so():
    space = MLPSpace(4, 2, min_layers=1, max_layers=1, min_units=8, max_units=8, activations=("relu", "tanh"),
                     dropouts=(0.0,))  # two genomes in all
    strategy = make_strategy("predictor", space, np.random.default_rng(0), 10, initial=2)
    asked = []
    for number in range(4):
        proposal = strategy.ask()
        proposal.trial = number
        asked.append(proposal)
        strategy.tell(proposal, 0.5 + 0.1 * (proposal.genome.layers[0].activation == "relu"), {})
    assert len({p.genome.id for p in asked[:2]}) == 2
    assert all(p.info.get("exhausted") and p.genome.id in {a.genome.id for a in asked[:2]} for p in asked[2:])


def test_the_gaussian_process_ranks_a_synthetic_accuracy_and_is_unsure_far_from_its_data():
    space, rng = NB201Space(), np.random.default_rng(1)
    train, held = [space.sample(rng) for _ in range(40)], [space.sample(rng) for _ in range(300)]
    model = GaussianProcess(members=5, seed=0).fit(encode(space, train), np.array([conv_count(g) for g in train]))
    draws = model.predict(encode(space, held))
    assert draws.shape == (5, 300, 1)
    rho = spearmanr(draws.mean(axis=0)[:, 0], [conv_count(g) for g in held]).statistic
    assert rho > 0.8, rho
    assert np.allclose(draws.std(axis=0), model.predict(encode(space, held)).std(axis=0))  # nothing random
    # trained on cells without any 3x3 convolution, it is least sure about the cells full of them
    plain = [g for g in held if "nor_conv_3x3" not in g.ops]
    convs = [g for g in held if g.ops.count("nor_conv_3x3") >= 4]
    model.fit(encode(space, plain), np.array([conv_count(g) for g in plain]))
    spread = model.predict(encode(space, plain + convs)).std(axis=0)[:, 0]
    assert spread[len(plain):].mean() > 2 * spread[:len(plain)].mean()


def test_the_quantiles_of_a_posterior_have_its_mean_and_spread():
    for members in (1, 2, 5, 10):
        z = quantile_offsets(members)
        assert abs(z.mean()) < 1e-12 and (members == 1 or abs(z.std() - 1) < 1e-12)
    assert list(quantile_offsets(1)) == [0.0]


def gp_config(budget: int) -> dict:
    config = table_config(budget)
    config["strategy"].update(surrogate="gp", acquisition="ucb", beta=2.0)
    return config


def test_with_the_gp_surrogate_a_continued_run_proposes_what_the_uninterrupted_run_did(tmp_path):
    whole = run_study(tmp_path / "whole", build_config(gp_config(20)))
    run_study(tmp_path / "parts", build_config(gp_config(12)))
    parts = run_study(tmp_path / "parts", build_config(gp_config(20)))
    assert [t.genome for t in parts] == [t.genome for t in whole]
    guided = [t for t in whole if not t.info.get("initial")]
    assert len(guided) == 15 and all(len(t.info["predicted"]) == 1 for t in guided)


def test_the_gp_surrogate_from_the_command_line_with_two_objectives(tmp_path):
    out = tmp_path / "gp"
    r = cli("search", "--dataset", "iris", "--strategy", "predictor", "--surrogate", "gp", "--initial", "3",
            "--budget", 6, "--objectives", "accuracy,params", "--epochs", 2, "--patience", 0, "--max-layers", 2,
            "--max-units", 32, "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    trials = json.loads(cli("show", out, "--json").stdout)
    guided = [t for t in trials if not t["info"].get("initial")]
    assert len(guided) == 3 and all(len(t["info"]["predicted"]) == 2 for t in guided)
    assert all(t["info"]["predicted"][1] == t["metrics"]["params"] for t in guided)  # computed, not predicted
    bad = cli("search", "--strategy", "predictor", "--surrogate", "forest", "--out", tmp_path / "x")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "surrogate" in bad.stderr, bad.stderr


def test_ranks_are_mean_ranks_over_rows_with_ties_shared():
    Y = np.array([[3.0, 1.0], [1.0, 1.0], [2.0, 5.0], [3.0, 0.5]])
    assert ranks(Y).tolist() == [[0.875, 0.625], [0.25, 0.625], [0.5, 1.0], [0.875, 0.25]]


def monotone_run(targets: str, transform) -> list[str]:
    """The genomes a predictor proposes when every fitness it is told passes through ``transform``."""
    space = MLPSpace(10, 3, max_layers=3, max_units=64)
    strategy = make_strategy("predictor", space, np.random.default_rng(3), 30, initial=6, candidates=30,
                             targets=targets)
    asked = []
    for number in range(14):
        proposal = strategy.ask()
        proposal.trial = number
        layers = proposal.genome.layers
        val = transform(0.3 + 0.1 * len(layers) - 0.001 * abs((layers[0].units if layers else 32) - 32))
        strategy.tell(proposal, val, {"val_acc": val})
        asked.append(proposal.genome.id)
    return asked


def test_on_ranks_the_surrogate_sees_only_the_order_of_what_it_is_told():
    plain = monotone_run("ranks", lambda v: v)
    assert monotone_run("ranks", lambda v: np.exp(20 * v)) == plain
    assert monotone_run("values", lambda v: np.exp(20 * v)) != monotone_run("values", lambda v: v)


def test_targets_from_the_command_line_and_python(tmp_path):
    out = tmp_path / "ranks"
    r = cli("search", "--dataset", "iris", "--strategy", "predictor", "--targets", "ranks", "--initial", "3",
            "--budget", 5, "--epochs", 2, "--patience", 0, "--max-layers", 2, "--max-units", 32, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "on ranks" in r.stderr  # the run header names the surrogate and its targets
    trials = json.loads(cli("show", out, "--json").stdout)
    assert len([t for t in trials if "predicted" in t["info"]]) == 2
    bad = cli("search", "--strategy", "predictor", "--targets", "order", "--out", tmp_path / "x")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "targets" in bad.stderr, bad.stderr
    result = nasforge.search("iris", strategy="predictor", budget=4, out=tmp_path / "api", train={"epochs": 2},
                             config={"strategy": {"name": "predictor", "targets": "ranks", "initial": 3}})
    assert read_stored_config(tmp_path / "api")["strategy"]["targets"] == "ranks"
    assert "predicted" in result.trials[-1].info and len(result.trials) == 4
