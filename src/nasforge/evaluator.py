"""Turns a genome into measured metrics; never knows which strategy asked.

One evaluation: build the network under a seed, train it (early stopping on validation
loss), then measure accuracy and macro-F1 on every split, parameters, FLOPs, serialised
size, single-sample and batch latency, FPS and energy. Test metrics are recorded for the
report only; nothing in nasforge selects on them.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from pydantic import BaseModel, ConfigDict, Field
from sklearn.metrics import f1_score

from . import measure
from .data import Task
from .errors import TrialFailed
from .spaces import Genome
from .train import TrainResult, TrainSettings, predict_logits, train


class MeasureSettings(BaseModel):
    """How latency is measured (warm-up runs, timed repeats, batch size)."""

    model_config = ConfigDict(extra="forbid")
    batch_size: int = Field(default=64, ge=1, le=100000)
    warmup: int = Field(default=5, ge=0, le=1000)
    repeats: int = Field(default=30, ge=1, le=10000)
    backend: str = Field(default="torch", pattern="^(torch|onnx)$",
                         description="onnx: also measure latency in onnxruntime after an ONNX export")
    power: measure.PowerSettings = Field(default_factory=measure.PowerSettings)


def model_costs(model: torch.nn.Module, input_shape: tuple[int, ...], X: torch.Tensor, ms: MeasureSettings) -> dict[str, Any]:
    """Size and speed of a trained model: parameters, FLOPs, serialised size, single-sample
    and batch latency and FPS on inputs from ``X`` (and in onnxruntime with backend onnx)."""
    single = measure.latency_seconds(model, X[:1], ms.warmup, ms.repeats)
    batch_x = X[: ms.batch_size]
    batch = measure.latency_seconds(model, batch_x, ms.warmup, ms.repeats)
    costs: dict[str, Any] = dict(
        params=measure.count_params(model),
        flops=measure.count_flops(model, input_shape),
        size_bytes=measure.model_size_bytes(model),
        latency_ms=single * 1e3,
        batch_latency_ms=batch * 1e3,
        fps=len(batch_x) / batch if batch > 0 else float("inf"),
    )
    if ms.backend == "onnx":
        from .measure.onnx import onnx_latency

        o = onnx_latency(model, batch_x, ms.warmup, ms.repeats)
        costs.update(onnx_latency_ms=o["latency_ms"], onnx_batch_latency_ms=o["batch_latency_ms"], onnx_fps=o["fps"])
    return costs


@dataclass
class Evaluation:
    metrics: dict[str, Any]
    state_dict: dict[str, torch.Tensor] = field(repr=False)


def _accuracy_f1(logits: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    pred = logits.argmax(1)
    acc = float((pred == y).float().mean()) if len(y) else float("nan")
    f1 = float(f1_score(y.numpy(), pred.numpy(), average="macro", zero_division=0)) if len(y) else float("nan")
    return acc, f1


class WeightSource(Protocol):
    """Where a new network's starting weights may come from (TS-ENAS's weight inheritance)."""

    def initialise(self, model: torch.nn.Module, genome: Genome) -> bool:
        """Copy stored weights into ``model``; True if anything was inherited."""

    def update(self, model: torch.nn.Module, genome: Genome, metrics: dict[str, Any]) -> None:
        """Learn from a trained, measured network (e.g. keep the best weights per cell type)."""


class Evaluator:
    def __init__(self, task: Task, train_settings: TrainSettings | None = None,
                 measure_settings: MeasureSettings | None = None, weights: WeightSource | None = None):
        self.task = task
        self.train_settings = train_settings or TrainSettings()
        self.measure_settings = measure_settings or MeasureSettings()
        self.weights = weights

    def build(self, genome: Genome, seed: int) -> torch.nn.Module:
        torch.manual_seed(seed)
        try:
            return genome.build(self.task.input_shape, self.task.n_classes)
        except (RuntimeError, ValueError) as exc:
            raise TrialFailed(f"network does not build: {exc}") from exc

    def learn(self, genome: Genome, evaluation: Evaluation) -> None:
        """Let the weight source learn from a finished evaluation (runs in the study's process,
        whichever worker trained the network)."""
        if self.weights is None or not evaluation.state_dict:
            return
        model = genome.build(self.task.input_shape, self.task.n_classes)
        model.load_state_dict(evaluation.state_dict)
        self.weights.update(model, genome, evaluation.metrics)

    def _train(self, model: torch.nn.Module, s: TrainSettings, generator: torch.Generator, seed: int) -> TrainResult:
        """Gradient descent, differential evolution of the weights (EB-LNAST's lower level), or both."""
        task = self.task
        if s.method == "gradient":
            return train(model, task.X_train, task.y_train, task.X_val, task.y_val, s, generator)
        from .train.evolve_weights import DEConfig, evolve_weights

        config = DEConfig(population=s.de_population, generations=s.de_generations, F=s.de_f, CR=s.de_cr, seed=seed,
                          patience=s.patience or None)
        start = time.perf_counter()
        try:
            de = evolve_weights(model, task.X_train, task.y_train, task.X_val, task.y_val, config, generator)
        except TypeError as exc:  # a layer DE cannot batch (conv, batch norm)
            raise TrialFailed(f"differential evolution needs an MLP: {exc}") from None
        if not math.isfinite(de.best_loss):
            raise TrialFailed("differential evolution found no finite loss")
        de_seconds = time.perf_counter() - start
        if s.method == "de":
            return TrainResult(de.generations_run, de.generations_run, float(de.best_val_loss or de.best_loss), de_seconds)
        refined = train(model, task.X_train, task.y_train, task.X_val, task.y_val, s, generator)
        refined.seconds += de_seconds
        return refined

    def evaluate(self, genome: Genome, seed: int) -> Evaluation:
        """Train and measure; raises TrialFailed for a candidate that cannot be trained."""
        task, ms = self.task, self.measure_settings
        model = self.build(genome, seed)
        inherited = self.weights.initialise(model, genome) if self.weights is not None else False
        generator = torch.Generator().manual_seed(seed)
        settings = self.train_settings
        genome_decay = float(getattr(genome, "weight_decay", 0.0) or 0.0)  # the net family's regularisation gene
        if genome_decay:
            settings = settings.model_copy(update={"weight_decay": settings.weight_decay + genome_decay})
        with measure.energy_meter(ms.power) as train_energy:
            result = self._train(model, settings, generator, seed)
        metrics: dict[str, Any] = {}
        for split, X, y in (("train", task.X_train, task.y_train), ("val", task.X_val, task.y_val), ("test", task.X_test, task.y_test)):
            metrics[f"{split}_acc"], metrics[f"{split}_f1"] = _accuracy_f1(predict_logits(model, X), y)
        with measure.energy_meter(ms.power) as infer_energy:
            predict_logits(model, task.X_val)
        metrics.update(model_costs(model, task.input_shape, task.X_val, ms))
        metrics.update(
            val_loss=result.best_val_loss,
            train_seconds=result.seconds,
            epochs=result.epochs,
            best_epoch=result.best_epoch,
            train_energy_kwh=train_energy.kwh,
            infer_energy_kwh=infer_energy.kwh,
            energy_source=train_energy.source,
            inherited=inherited,
        )
        return Evaluation(metrics, {k: v.detach().clone() for k, v in model.state_dict().items()})
