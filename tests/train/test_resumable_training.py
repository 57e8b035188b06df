"""Training that stops after some epochs and continues later (multi-fidelity, issue #16)
ends exactly where one uninterrupted run of as many epochs ends."""
from __future__ import annotations

import io

import pytest
import torch

import nasforge
from nasforge.spaces import genome_from_dict
from nasforge.train.settings import TrainSettings
from nasforge.train.trainer import TrainState, train

TASK = nasforge.load_task("digits", seed=0)
GENOME = {"family": "mlp", "layers": [{"units": 32, "activation": "relu", "rule": "backprop"}], "dropout": 0.1}


def fresh(seed=0):
    torch.manual_seed(seed)
    return genome_from_dict(GENOME).build(TASK.input_shape, TASK.n_classes)


def run(settings, **kw):
    model = fresh()
    result = train(model, TASK.X_train, TASK.y_train, TASK.X_val, TASK.y_val, settings, torch.Generator().manual_seed(5),
                   **kw)
    return model, result


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_continuing_equals_one_run_of_as_many_epochs(optimizer):
    s = TrainSettings(epochs=6, patience=0, optimizer=optimizer)
    whole_model, whole = run(s)
    _, first = run(s, until=2)
    assert first.epochs == 2 and first.state is not None and first.state.epoch == 2
    buffer = io.BytesIO()  # the state survives a trip through torch.save, as a promoted trial's file does
    torch.save(first.state.to_dict(), buffer)
    buffer.seek(0)
    state = TrainState.from_dict(torch.load(buffer, weights_only=False))
    later_model, later = run(s, resume=state, until=6)  # a freshly built model: the state carries the weights
    assert later.epochs == 6 and later.history == whole.history
    assert later.best_epoch == whole.best_epoch and later.best_val_loss == whole.best_val_loss
    for name, tensor in whole_model.state_dict().items():
        assert torch.equal(tensor, later_model.state_dict()[name]), name


def test_early_stopping_carries_over_and_a_stopped_run_trains_no_further():
    s = TrainSettings(epochs=60, patience=2, lr=0.05)
    _, whole = run(s)
    assert whole.epochs < 60  # it stopped early
    _, part = run(s, until=whole.epochs - 1)
    _, rest = run(s, resume=part.state)
    assert rest.epochs == whole.epochs and rest.best_epoch == whole.best_epoch
    _, again = run(s, resume=rest.state)
    assert rest.state.stopped and again.epochs == rest.epochs and again.history == rest.history


def test_full_training_keeps_no_state_to_save_time():
    _, result = run(TrainSettings(epochs=2, patience=0))
    assert result.state is None
