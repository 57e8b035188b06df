"""Regression tasks end to end: a numeric target is learnt, measured (R², RMSE, MAE),
searched on, predicted in its own units, exported, and bad targets get one line."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import cli
from sklearn.datasets import load_diabetes
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from nasforge.data import load_task
from nasforge.data.targets import Scale, regression_metrics, score, score_key
from nasforge.errors import NasforgeError

FAST = ["--epochs", "60", "--patience", "8"]


def test_diabetes_is_a_regression_with_a_standardised_training_target():
    task = load_task("diabetes", seed=3)
    assert task.kind == "regression" and task.n_outputs == 1 and task.classes == []
    assert task.y_train.dtype == torch.float32
    assert abs(float(task.y_train.mean())) < 1e-5 and abs(float(task.y_train.std(unbiased=False)) - 1) < 1e-4
    raw = load_diabetes().target
    assert task.scale.mean == pytest.approx(raw.mean(), rel=0.1)  # the training rows' mean, near the whole's
    restored = np.sort(task.scale.restore(torch.cat([task.y_train, task.y_val, task.y_test])).double().numpy())
    np.testing.assert_allclose(restored, np.sort(raw), atol=1e-3)  # every row once: a plain split of all 442
    assert "regression" in task.describe()


def test_metrics_match_scikit_learn_in_the_targets_units():
    rng = np.random.default_rng(0)
    y, pred = rng.normal(size=50), rng.normal(size=50) * 0.5
    scale = Scale(100.0, 20.0)
    m = regression_metrics(torch.tensor(pred).reshape(-1, 1), torch.tensor(y), scale)
    yu, pu = y * 20 + 100, pred * 20 + 100
    assert m["r2"] == pytest.approx(r2_score(yu, pu))
    assert m["rmse"] == pytest.approx(mean_squared_error(yu, pu) ** 0.5)
    assert m["mae"] == pytest.approx(mean_absolute_error(yu, pu))
    assert score({"val_r2": 0.5, "train_r2": 0.7}) == 0.5 and score_key({"val_acc": 0.9}, "test") == "test_acc"


def _numeric_csv(tmp_path, n=120, seed=0):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    colour = rng.choice(["red", "blue"], size=n)
    y = 3 * x1 - 2 * x2 + (colour == "red") * 1.5 + rng.normal(scale=0.1, size=n) + 50
    path = tmp_path / "yield.csv"
    pd.DataFrame({"x1": x1, "x2": x2, "colour": colour, "yield": y}).to_csv(path, index=False)
    return path


def test_a_numeric_target_is_asked_about_never_guessed(tmp_path):
    path = _numeric_csv(tmp_path)
    with pytest.raises(NasforgeError, match="--task regression"):
        load_task(csv=path, target="yield")
    r = cli("search", "--csv", path, "--target", "yield", "--budget", "1", "--out", tmp_path / "r")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--task regression" in r.stderr
    # told it is classification, each value is a class: too few rows per class, and the hint
    with pytest.raises(NasforgeError, match="has 1 row.*--task regression"):
        load_task(csv=path, target="yield", task="classification")
    task = load_task(csv=path, target="yield", task="regression")
    assert task.kind == "regression" and task.input_shape == (4,)  # x1, x2, colour one-hot
    # integer labels with few values stay classes
    pd.DataFrame({"x": range(60), "grade": [1, 2, 3] * 20}).to_csv(tmp_path / "g.csv", index=False)
    assert load_task(csv=tmp_path / "g.csv", target="grade").kind == "classification"


@pytest.mark.parametrize("bad, message", [("oops", "row 5 holds 'oops'"), ("inf", "row 5 holds"),
                                          ("const", "constant")])
def test_bad_regression_targets_are_one_line(tmp_path, bad, message):
    frame = pd.DataFrame({"x": np.arange(40.0), "y": np.arange(40.0) * 2})
    if bad == "const":
        frame["y"] = 7.0
    else:
        frame["y"] = frame["y"].astype(object)
        frame.loc[4, "y"] = bad
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    r = cli("search", "--csv", path, "--target", "y", "--task", "regression", "--budget", "1", "--out", tmp_path / "r")
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr


def test_image_data_cannot_be_a_regression(tmp_path):
    r = cli("search", "--dataset", "digits-images", "--task", "regression", "--out", tmp_path / "r")
    assert r.returncode == 2 and "image data is classification only" in r.stderr


@pytest.fixture(scope="module")
def diabetes_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("diabetes") / "run"
    r = cli("search", "--dataset", "diabetes", "--strategy", "evolution", "--budget", "6", "--seed", "1", *FAST,
            "--out", out)
    assert r.returncode == 0, r.stderr
    return out, r


def test_a_search_learns_the_number_well_above_a_mean_predictor(diabetes_run):
    out, r = diabetes_run
    assert "fitness: validation R²" in r.stderr and "test RMSE" in r.stdout
    trials = json.loads(cli("show", out, "--json").stdout)
    done = [t for t in trials if t["state"] == "complete"]
    assert len(done) == 6
    for t in done:
        assert t["fitness"] == pytest.approx(t["metrics"]["val_r2"])  # the plain search maximises validation R²
        assert "val_acc" not in t["metrics"]
    best = max(done, key=lambda t: t["fitness"])
    # a mean predictor has R² ~0 and RMSE ~ the target's sd (77 on diabetes)
    assert best["metrics"]["val_r2"] > 0.3 and best["metrics"]["test_r2"] > 0.2
    assert best["metrics"]["test_rmse"] < 70
    shown = cli("show", out).stdout
    assert "val R²" in shown and "test RMSE" in shown


def test_predictions_and_exports_are_in_the_targets_units(diabetes_run, tmp_path):
    import onnxruntime as ort

    import nasforge

    out, _ = diabetes_run
    model = nasforge.load_model(out)
    data = load_diabetes(as_frame=True)
    pred = model.predict(data.data)
    assert pred.dtype == np.float64 and pred.shape == (442,)
    assert r2_score(data.target, pred) > 0.3 and 50 < pred.mean() < 250  # units of the target, not standardised
    with pytest.raises(NasforgeError, match="predicts numbers"):
        model.predict_proba(data.data)
    r = cli("export", out, "--format", "onnx", "--output", tmp_path / "x")
    assert r.returncode == 0, r.stderr
    card = (tmp_path / "x" / "model_card.md").read_text()
    assert "regression" in card and "test R²" in card and "test RMSE" in card
    session = ort.InferenceSession(str(tmp_path / "x" / "model.onnx"))
    feed = {name: data.data[[name]].to_numpy(np.float32) for name in data.data.columns}  # raw columns
    onnx_pred = session.run(None, feed)[0].reshape(-1)
    np.testing.assert_allclose(onnx_pred, pred, rtol=1e-5, atol=1e-3)


def test_report_speaks_of_r2(diabetes_run, tmp_path):
    r = cli("report", diabetes_run[0], "--output", tmp_path / "report.html")
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "report.html").read_text()
    assert "Best validation R²" in html or "validation R²" in html
    assert "val R²" in html and "test RMSE" in html and "validation accuracy" not in html


def test_final_training_reports_regression_metrics(diabetes_run):
    out, _ = diabetes_run
    r = cli("train", out, "--epochs", "10")
    assert r.returncode == 0, r.stderr
    assert "test R²" in r.stdout and "test RMSE" in r.stdout
    metrics = json.loads((out / "final" / "metrics.json").read_text())
    assert {"test_r2", "test_rmse", "test_mae", "search_test_r2"} <= metrics.keys()


def test_final_training_of_a_regression_keeps_the_searchs_early_stopped_epochs(diabetes_run):
    out, _ = diabetes_run
    r = cli("train", out)
    assert r.returncode == 0, r.stderr
    metrics = json.loads((out / "final" / "metrics.json").read_text())
    best = json.loads(cli("show", out, "--top", "1", "--json").stdout)[0]
    assert metrics["epochs"] == max(1, best["metrics"]["best_epoch"]) and metrics["trial"] == best["number"]


def test_pareto_search_on_regression_objectives(tmp_path):
    out = tmp_path / "mo"
    r = cli("search", "--dataset", "diabetes", "--objectives", "rmse,params", "--budget", "4", *FAST, "--out", out)
    assert r.returncode == 0, r.stderr
    front = json.loads(cli("show", out, "--front", "--json").stdout)
    assert front and all(f["rmse"] > 0 and "test_r2" in f for f in front)
    trials = json.loads(cli("show", out, "--json").stdout)
    for t in trials:
        assert t["values"][0] == pytest.approx(t["metrics"]["val_rmse"])  # minimised in the target's units
    wrong = cli("search", "--dataset", "diabetes", "--objectives", "accuracy,params", "--out", tmp_path / "w")
    assert wrong.returncode == 2 and "does not apply to regression" in wrong.stderr and "r2, rmse, mae" in wrong.stderr
    wrong = cli("search", "--dataset", "wine", "--objectives", "r2,params", "--out", tmp_path / "w2")
    assert wrong.returncode == 2 and "does not apply to classification" in wrong.stderr


def test_bilevel_reads_r2_as_its_performance(tmp_path):
    out = tmp_path / "bl"
    r = cli("search", "--dataset", "diabetes", "--strategy", "bilevel", "--budget", "6", *FAST, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "most accurate (val_r2)" in r.stdout and "test R²" in r.stdout


def test_expert_rules_read_r2_and_have_no_chance_level():
    from nasforge.strategies.expert.rules import Thresholds, fire_rules

    firings = fire_rules({"train_r2": 0.2, "val_r2": 0.1}, Thresholds(), None)
    assert any(f.rule == "R1" and "0.2" in f.reason for f in firings)  # underfit: training score below target
    assert not any(f.rule == "R5" for f in fire_rules({"train_r2": 0.95, "val_r2": 0.9}, Thresholds(), None))


def test_differential_evolution_fits_a_regression_target():
    from nasforge.train.evolve_weights import DEConfig, evolve_weights

    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 3, generator=g)
    y = X @ torch.tensor([1.0, -2.0, 0.5])
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    with torch.no_grad():
        before = float(((model(X).squeeze(1) - y) ** 2).mean())
        evolve_weights(model, X, y, None, None, DEConfig(population=30, generations=60, seed=0), g)
        after = float(((model(X).squeeze(1) - y) ** 2).mean())
    assert after < 0.5 * before


def test_python_api_searches_a_csv_regression(tmp_path):
    import nasforge

    path = _numeric_csv(tmp_path, n=150)
    result = nasforge.search(csv=str(path), target="yield", task="regression", strategy="random", budget=3,
                             out=tmp_path / "api", train={"epochs": 60, "patience": 8})
    assert result.best.metrics["val_r2"] > 0.8  # y is a linear function of the inputs plus little noise
    model = result.load_model()
    assert model.kind == "regression"
    raw = pd.read_csv(path)
    pred = model.predict(raw.drop(columns=["yield"]))
    assert r2_score(raw["yield"], pred) > 0.8


def test_huber_loss_is_a_choice(tmp_path):
    runs = {}
    for loss in ("mse", "huber"):
        out = tmp_path / loss
        r = cli("search", "--dataset", "diabetes", "--strategy", "random", "--budget", "1", "--regression-loss", loss,
                *FAST, "--out", out)
        assert r.returncode == 0, r.stderr
        runs[loss] = json.loads(cli("show", out, "--json").stdout)[0]
    assert runs["mse"]["genome"] == runs["huber"]["genome"]  # same seed, same first genome
    # Huber with delta 1 is half the squared error within one sd: its validation loss is the smaller
    assert runs["huber"]["metrics"]["val_loss"] < runs["mse"]["metrics"]["val_loss"]
    assert runs["huber"]["metrics"]["val_r2"] > 0.2 and runs["mse"]["metrics"]["val_r2"] > 0.2
    wrong = cli("search", "--dataset", "diabetes", "--regression-loss", "l1", "--out", tmp_path / "w")
    assert wrong.returncode == 2 and "regression_loss" in wrong.stderr and "mse|huber" in wrong.stderr
