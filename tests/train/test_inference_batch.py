"""Predictions run in batches sized to the input on a CPU (large batches of images are
memory-bound there; benchmarks/inference_batch.py), with the same outputs at any batch size
up to float rounding."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.spaces import NetSpace
from nasforge.train import trainer
from nasforge.train.trainer import inference_batch, predict_logits


@pytest.mark.parametrize("shape, rows", [((64,), 2048), ((1, 28, 28), 167), ((3, 32, 32), 42), ((3, 224, 224), 32),
                                          ((4,), 4096)])
def test_cpu_batch_follows_the_input_size(shape, rows):
    assert inference_batch(torch.zeros(10, *shape)) == rows


def test_the_budget_is_one_setting(monkeypatch):
    monkeypatch.setattr(trainer, "CPU_BATCH_ELEMENTS", 4096 * 784)
    assert inference_batch(torch.zeros(3, 1, 28, 28)) == 4096


def test_outputs_barely_depend_on_the_batch():
    torch.manual_seed(0)
    space = NetSpace((1, 16, 16), 10)
    model = space.sample(np.random.default_rng(3)).build((1, 16, 16), 10)
    X = torch.randn(700, 1, 16, 16)
    default = predict_logits(model, X)
    assert default.shape == (700, 10)
    for batch in (4096, 100, 33):
        assert torch.allclose(predict_logits(model, X, batch=batch), default, rtol=0, atol=1e-5)


def test_benchmark_measures_a_dataset():
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import inference_batch as bench

    out = bench.forward_costs("digits", 1)
    assert out["same_class"] and out["diff"] < 1e-4 and out["rows"] == 1797 and out["chosen"] == 2048
    assert set(out["ratio"]) == {*bench.SWEEP, "chosen"} and all(r > 0 for r in out["ratio"].values())
