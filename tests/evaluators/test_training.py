import math

import pytest
import torch

from nasforge.data import load_task
from nasforge.errors import TrialFailed
from nasforge.evaluators.training import TrainingEvaluator as Evaluator
from nasforge.spaces import MLPGenome
from nasforge.spaces.mlp import Dense
from nasforge.train.settings import TrainSettings

GENOME = MLPGenome(layers=(Dense(units=16),))


def test_metrics_are_measured_and_plausible():
    task = load_task("iris", seed=0)
    ev = Evaluator(task, TrainSettings(epochs=30, patience=0)).evaluate(GENOME, seed=1)
    m = ev.metrics
    assert m["val_acc"] > 0.8 and m["train_acc"] > 0.8 and 0 <= m["test_acc"] <= 1
    assert 0 <= m["test_f1"] <= 1
    assert m["params"] == (4 + 1) * 16 + (16 + 1) * 3
    assert m["flops"] == 2 * (4 * 16 + 16 * 3)  # torch counts a multiply-add as 2 FLOPs
    assert m["size_bytes"] > 4 * m["params"]
    assert 0 < m["latency_ms"] <= m["batch_latency_ms"] * 10 and m["fps"] > 0
    assert m["epochs"] == 30 and m["train_seconds"] > 0
    assert m["energy_source"] in ("measured", "estimated") and m["train_energy_kwh"] > 0
    assert set(ev.state_dict) == {"1.weight", "1.bias", "3.weight", "3.bias"}


def test_same_seed_same_result():
    task = load_task("wine", seed=0)
    evaluator = Evaluator(task, TrainSettings(epochs=5))
    a, b = evaluator.evaluate(GENOME, 3), evaluator.evaluate(GENOME, 3)
    assert a.metrics["val_loss"] == b.metrics["val_loss"]
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)


def test_early_stopping_restores_best_epoch():
    task = load_task("iris", seed=0)
    m = Evaluator(task, TrainSettings(epochs=200, patience=3, lr=0.05)).evaluate(GENOME, 0).metrics
    assert m["epochs"] < 200 and m["epochs"] - m["best_epoch"] == 3


@pytest.mark.parametrize("patience", [0, 3])
def test_validation_metrics_reuse_the_best_epochs_outputs(monkeypatch, patience):
    """The validation split is predicted once per epoch, not again to measure: the best epoch's
    outputs are the restored weights' outputs, so the metrics equal a fresh prediction."""
    from nasforge.evaluators import training
    from nasforge.train import trainer

    task = load_task("wine", seed=0)
    calls = []
    real = trainer.predict_logits

    def counting(model, X, *args, **kwargs):
        calls.append(X.shape == task.X_val.shape and torch.equal(X, task.X_val))
        return real(model, X, *args, **kwargs)

    monkeypatch.setattr(trainer, "predict_logits", counting)
    monkeypatch.setattr(training, "predict_logits", counting)
    ev = Evaluator(task, TrainSettings(epochs=40, patience=patience, lr=0.05)).evaluate(GENOME, 2)
    m = ev.metrics
    assert patience == 0 or m["best_epoch"] < m["epochs"]  # the best weights were restored from an earlier epoch
    model = GENOME.build(task.input_shape, task.n_classes)
    model.load_state_dict(ev.state_dict)
    fresh = task.metrics(real(model, task.X_val), task.y_val)
    assert m["val_acc"] == fresh["acc"] and m["val_f1"] == fresh["f1"]
    assert calls.count(True) == m["epochs"] + 1  # every epoch, and the inference energy's pass (no extra measuring pass)


def test_nan_loss_is_a_trial_failure():
    task = load_task("iris", seed=0)
    task.X_train[0, 0] = math.nan
    with pytest.raises(TrialFailed, match="nan"):
        Evaluator(task, TrainSettings(epochs=3)).evaluate(GENOME, 0)


def test_a_continued_rung_reuses_the_networks_costs_and_measures_the_rest(monkeypatch):
    """Size, speed and inference energy do not depend on the weights: measured at a candidate's
    first rung, carried in its training state, reused at the next; accuracy is measured anew."""
    from nasforge.evaluators import training

    task = load_task("iris", seed=0)
    evaluator = Evaluator(task, TrainSettings(epochs=9, patience=0))
    first = evaluator.evaluate(GENOME, seed=1, until=1)
    assert first.train_state[training.COSTS]["latency_ms"] == first.metrics["latency_ms"]
    assert "epochs" not in first.train_state[training.COSTS]
    timed = []
    monkeypatch.setattr(training, "model_costs", lambda *a: timed.append(a) or {})
    second = evaluator.evaluate(GENOME, seed=1, until=3, resume=first.train_state)
    assert not timed  # nothing timed again
    for key in training.WEIGHT_FREE:
        assert second.metrics.get(key) == first.metrics.get(key), key
    assert second.metrics["epochs"] == 3 and first.metrics["epochs"] == 1
    assert second.metrics["train_acc"] != first.metrics["train_acc"] or second.metrics["val_loss"] != first.metrics["val_loss"]
    assert second.train_state[training.COSTS] == first.train_state[training.COSTS]
