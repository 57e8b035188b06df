"""Gradient training on in-memory tensors.

Batches come from indexing a permutation of the training tensors: on small data this is
faster than a DataLoader (DESIGN.md), and the evaluator's overhead is measured against a
bare loop in benchmarks/overhead.py. Early stopping watches validation loss and restores
the best weights, so the reported model is the one selection saw.

Training can stop after some epochs and continue later (multi-fidelity search, where a
candidate trained briefly is promoted to train longer): ``train(..., until=E)`` returns a
:class:`TrainState` with everything the next epoch needs (the current weights, not the
restored best ones; the optimizer's state; the batch order's generator and torch's global
one, which dropout draws from; the early-stopping counters), and ``train(..., resume=state)`` continues from it. Continuing
gives bit for bit the weights one uninterrupted run of as many epochs gives (on the same device).

Training runs where the model and the tensors are (the evaluator moves both to the run's
device once); batches are indexed there, from a permutation drawn on the CPU so the batch
order is the same on every device. ``precision`` bf16/fp16 runs forward passes and losses
under autocast (fp16 with a gradient scaler, whose state a TrainState carries). Weights and
optimizer state in a TrainState are CPU tensors, so a state saved on a GPU machine continues
on a CPU one.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from ..device import autocast, grad_scaler
from ..errors import TrialFailed
from .settings import TrainSettings


@dataclass
class TrainState:
    """Where a training run stopped, to continue it: plain tensors and numbers (torch.save-able)."""

    epoch: int
    best_val: float
    best_epoch: int
    wait: int
    stopped: bool  # early stopping ended it: continuing trains no further
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    generator: torch.Tensor  # the batch order's generator
    torch_rng: torch.Tensor  # torch's global generator (dropout draws from it)
    best_model: dict[str, torch.Tensor] | None
    history: list[tuple[float, float]]
    device_rng: torch.Tensor | None = None  # the CUDA generator of the training GPU (dropout there draws from it)
    scaler: dict[str, Any] | None = None  # fp16: the gradient scaler's state

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainState:
        return cls(**data)


@dataclass
class TrainResult:
    epochs: int
    best_epoch: int
    best_val_loss: float
    seconds: float
    history: list[tuple[float, float]] = field(default_factory=list)  # (train loss, val loss) per epoch
    state: TrainState | None = field(default=None, repr=False)  # to continue training from where it stopped
    # the restored best weights' validation outputs, when this call computed them (measuring reuses them)
    val_outputs: torch.Tensor | None = field(default=None, repr=False)


def make_optimizer(model: torch.nn.Module, s: TrainSettings) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if s.optimizer == "sgd":
        return torch.optim.SGD(params, lr=s.lr, momentum=0.9, weight_decay=s.weight_decay)
    cls = torch.optim.AdamW if s.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=s.lr, weight_decay=s.weight_decay)


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the model's state (parameters and buffers) that later training leaves alone."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def on_cpu(value: Any) -> Any:
    """``value`` (tensors in dicts and lists) with every tensor on the CPU; CPU ones are not copied."""
    if isinstance(value, torch.Tensor):
        return value if value.device.type == "cpu" else value.cpu()
    if isinstance(value, dict):
        return {k: on_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(on_cpu(v) for v in value)
    return value


CPU_BATCH_ELEMENTS = 2**17  # inputs per forward batch on a CPU: activations stay in cache


def inference_batch(X: torch.Tensor) -> int:
    """Rows per forward pass when predicting on ``X``: 4096 on a GPU; on a CPU as many as keep
    about ``CPU_BATCH_ELEMENTS`` input numbers in one batch (32 to 4096). A 4096-image batch of
    28x28 inputs is memory-bound on a CPU: in benchmarks/inference_batch.py it takes as long as a
    training epoch, 128 images at a time about a third of that. The outputs are the same up to
    float rounding (a convolution may pick another kernel for another batch size)."""
    if X.device.type != "cpu":
        return 4096
    per_row = max(1, X[0].numel()) if len(X) else 1
    return max(32, min(4096, CPU_BATCH_ELEMENTS // per_row))


@torch.no_grad()
def predict_logits(model: torch.nn.Module, X: torch.Tensor, batch: int | None = None,
                   precision: str = "fp32") -> torch.Tensor:
    """The model's outputs on ``X`` in evaluation mode, float32, on ``X``'s device, ``batch``
    rows at a time (default :func:`inference_batch`)."""
    model.eval()
    if not len(X):
        return X.new_zeros(0)
    batch = batch or inference_batch(X)
    with autocast(X.device, precision):
        return torch.cat([model(X[i : i + batch]).float() for i in range(0, len(X), batch)])


def train(
    model: torch.nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    X_val: torch.Tensor,
    y_val: torch.Tensor,
    settings: TrainSettings,
    generator: torch.Generator,
    *,
    until: int | None = None,
    resume: TrainState | None = None,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    precision: str = "fp32",
) -> TrainResult:
    """Train in place up to epoch ``until`` (default ``settings.epochs``), from scratch or
    continuing ``resume``; raise TrialFailed if the loss stops being finite. ``loss``: the
    task's (cross-entropy for classes, mean squared error for a standardised number).
    The model and the tensors must be on one device; ``generator`` is a CPU generator."""
    device = X.device
    opt = make_optimizer(model, settings)
    scaler = grad_scaler(device, precision)
    n, bs = len(X), settings.batch_size
    best_val, best_epoch, best_state, wait = math.inf, 0, None, 0
    best_outputs = None  # the best epoch's validation outputs, if it is one of this call's
    history: list[tuple[float, float]] = []
    epoch, stopped = 0, False
    if resume is not None:
        model.load_state_dict(resume.model)
        opt.load_state_dict(resume.optimizer)
        generator.set_state(resume.generator)
        torch.set_rng_state(resume.torch_rng)
        if device.type == "cuda" and resume.device_rng is not None:
            torch.cuda.set_rng_state(resume.device_rng, device)
        if scaler is not None and resume.scaler:
            scaler.load_state_dict(resume.scaler)
        best_val, best_epoch, wait, epoch, stopped = resume.best_val, resume.best_epoch, resume.wait, resume.epoch, resume.stopped
        best_state, history = resume.best_model, list(resume.history)  # read, never changed in place
    last = min(settings.epochs, until or settings.epochs)
    start = time.perf_counter()
    for epoch in range(epoch + 1, last + 1 if not stopped else epoch + 1):
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        total = torch.zeros((), device=device)
        for i in range(0, n, bs):
            idx = order[i : i + bs]
            with autocast(device, precision):
                batch_loss = loss(model(X[idx]).float(), y[idx])
            opt.zero_grad(set_to_none=True)
            if scaler is None:
                batch_loss.backward()
                opt.step()
            else:
                scaler.scale(batch_loss).backward()
                scaler.step(opt)
                scaler.update()
            total += batch_loss.detach() * len(idx)
        train_loss = float(total) / n
        val_outputs = predict_logits(model, X_val, precision=precision)
        val_loss = float(loss(val_outputs, y_val))
        history.append((train_loss, val_loss))
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            raise TrialFailed(f"loss became {train_loss if not math.isfinite(train_loss) else val_loss} at epoch {epoch}")
        if val_loss < best_val:
            best_val, best_epoch, wait = val_loss, epoch, 0
            best_state, best_outputs = weights(model), val_outputs
        else:
            wait += 1
            if settings.patience and wait >= settings.patience:
                stopped = True
                break
    state = None  # kept only when training may continue (a copy of the weights costs time)
    if until is not None or resume is not None:  # the optimizer is this call's own: its state needs no copy
        state = TrainState(epoch, best_val, best_epoch, wait, stopped, weights(model), on_cpu(opt.state_dict()),
                           generator.get_state(), torch.get_rng_state(), best_state, list(history),
                           torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                           scaler.state_dict() if scaler is not None else None)
    if best_state is not None:
        model.load_state_dict(best_state)
    return TrainResult(epoch, best_epoch, best_val, time.perf_counter() - start, history, state, best_outputs)
