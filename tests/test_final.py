"""``train_final``: the chosen genome retrained from scratch on train + validation for N epochs."""
from __future__ import annotations

import importlib.util
import json
import math

import pytest
import torch

import nasforge
from nasforge.errors import NasforgeError
from nasforge.export import export_model
from nasforge.final import load_final, run_task, train_final

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("final") / "iris"
    nasforge.search("iris", strategy="random", budget=3, seed=0, out=out, train={"epochs": 3})
    return out


def test_trains_best_genome_and_saves_it(iris_run):
    metrics = train_final(iris_run, epochs=30, seed=0)
    config, task = run_task(iris_run)
    best = nasforge.open_run(iris_run).best
    folder = iris_run / "final"
    assert {p.name for p in folder.iterdir()} >= {"model.pt", "genome.json", "metrics.json"}
    assert json.loads((folder / "genome.json").read_text()) == best.genome
    assert json.loads((folder / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    assert metrics["trial"] == best.number
    assert metrics["epochs"] == 30  # no early stopping: validation data is training data now
    assert 1 <= metrics["kept_epoch"] <= 30
    assert metrics["train_rows"] == len(task.y_train) + len(task.y_val)
    assert 0.0 <= metrics["test_acc"] <= 1.0 and 0.0 <= metrics["test_f1"] <= 1.0
    assert metrics["train_acc"] > 0.6  # it learned: chance is 1/3 on iris
    assert math.isfinite(metrics["final_train_loss"])
    assert metrics["energy_source"] in ("measured", "estimated")
    assert metrics["params"] > 0 and metrics["latency_ms"] > 0
    # the saved weights reproduce the reported test accuracy
    module, genome, saved = load_final(iris_run)
    with torch.no_grad():
        acc = float((module(task.X_test).argmax(1) == task.y_test).float().mean())
    assert acc == pytest.approx(metrics["test_acc"])
    assert genome.to_dict() == best.genome and saved["test_acc"] == metrics["test_acc"]


def test_same_seed_same_weights_and_other_trial(iris_run):
    first = train_final(iris_run, trial=0, epochs=3, seed=5, lr=0.01)
    weights = torch.load(iris_run / "final" / "model.pt", weights_only=True)
    again = train_final(iris_run, trial=0, epochs=3, seed=5, lr=0.01)
    weights_again = torch.load(iris_run / "final" / "model.pt", weights_only=True)
    assert all(torch.equal(weights[k], weights_again[k]) for k in weights)
    assert first["test_acc"] == again["test_acc"]
    assert first["trial"] == 0 and first["lr"] == 0.01 and first["epochs"] == 3


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime is not installed")
def test_final_model_exports_with_parity(iris_run):
    train_final(iris_run, epochs=5)
    result = export_model(iris_run, "onnx", final=True)
    assert result.path == iris_run / "export" / "final" / "model.onnx"
    assert result.max_abs_diff < 1e-4
    card = result.card_path.read_text()
    assert "final model" in card and "train + validation" in card


def test_conv_genome_with_learning_rules(tmp_path):
    out = tmp_path / "conv"
    nasforge.search("digits-images", budget=2, space={"family": "net", "learning_rules": ["fa", "usf"]},
                    train={"epochs": 1}, out=out)
    metrics = train_final(out, epochs=2)
    assert metrics["epochs"] == 2 and 0.0 <= metrics["test_acc"] <= 1.0
    assert set(metrics["learning_rules"]) <= {"fa", "usf"}
    for fmt in ("torchscript", "state-dict"):
        assert export_model(out, fmt, final=True).max_abs_diff < 1e-4


def test_user_errors(iris_run, tmp_path):
    with pytest.raises(NasforgeError, match="epochs"):
        train_final(iris_run, epochs=0)
    with pytest.raises(NasforgeError, match="lr"):
        train_final(iris_run, epochs=1, lr=-1.0)
    with pytest.raises(NasforgeError, match="no trial 42"):
        train_final(iris_run, trial=42, epochs=1)
    with pytest.raises(NasforgeError, match="no nasforge run"):
        train_final(tmp_path / "empty", epochs=1)
