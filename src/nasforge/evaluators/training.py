"""The training evaluator: turns a genome into measured metrics; never knows which strategy asked.

One evaluation: build the network under a seed (starting from inherited weights where the
strategy asked for them and the space keeps a store), train it (early stopping on validation
loss), then measure the task's metrics on every split (accuracy and macro-F1, or R², RMSE, MAE), parameters, FLOPs, serialised
size, single-sample and batch latency, FPS and energy. Test metrics are recorded for the
report only; nothing in nasforge selects on them.

Device (:mod:`nasforge.device`): the evaluator resolves the run's device in the process that
trains, moves the task's tensors there once, builds each network on the CPU under its seed
(the same initial weights on every device) and moves it there; speed is timed on that device
or, with ``--measure-on cpu``, on a CPU copy. Each evaluation's metrics name both
(``device``, ``measured_on``); a GPU's peak memory is ``gpu_memory_mb``. A candidate that runs
out of GPU memory is a failed trial with that reason.
"""
from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .. import device as devices
from ..data import Task
from ..device import DeviceSettings
from ..errors import TrialFailed
from ..measure.cost import count_flops, count_params, latency_seconds, model_size_bytes
from ..measure.energy import energy_meter
from ..measure.settings import MeasureSettings
from ..objectives import Goal
from ..spaces import Genome
from ..strategies import STRATEGIES
from ..train.settings import TrainSettings
from ..train.trainer import TrainResult, TrainState, predict_logits, train, weights
from .base import EVALUATORS, Evaluation, WeightSource

if TYPE_CHECKING:
    from ..config import SearchConfig
    from ..spaces import SearchSpace


def model_size(model: torch.nn.Module, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """Parameters, FLOPs and serialised size: counted, not timed."""
    return dict(params=count_params(model), flops=count_flops(model, input_shape), size_bytes=model_size_bytes(model))


def model_costs(model: torch.nn.Module, input_shape: tuple[int, ...], X: torch.Tensor, ms: MeasureSettings) -> dict[str, Any]:
    """Size and speed of a trained model: parameters, FLOPs, serialised size, single-sample
    and batch latency and FPS on inputs from ``X`` (on ``X``'s device, where the model must be;
    and in onnxruntime with backend onnx)."""
    single = latency_seconds(model, X[:1], ms.warmup, ms.repeats)
    batch_x = X[: ms.batch_size]
    batch = latency_seconds(model, batch_x, ms.warmup, ms.repeats)
    costs: dict[str, Any] = dict(
        **model_size(model, input_shape),
        latency_ms=single * 1e3,
        batch_latency_ms=batch * 1e3,
        fps=len(batch_x) / batch if batch > 0 else float("inf"),
    )
    if ms.backend == "onnx":
        from ..measure.onnx import onnx_latency

        on_cpu = model if batch_x.device.type == "cpu" else copy.deepcopy(model).cpu()  # onnxruntime runs on the CPU
        o = onnx_latency(on_cpu, batch_x.cpu(), ms.warmup, ms.repeats)
        costs.update(onnx_latency_ms=o["latency_ms"], onnx_batch_latency_ms=o["batch_latency_ms"], onnx_fps=o["fps"])
    return costs


def measure_trained(model: torch.nn.Module, task: Task, ms: MeasureSettings,
                    splits: dict[str, tuple[torch.Tensor, torch.Tensor]], infer_on: torch.Tensor,
                    costs: dict[str, Any] | None = None, speed: bool = True, precision: str = "fp32",
                    timed: tuple[torch.nn.Module, torch.Tensor] | None = None,
                    outputs: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """Everything measured on a trained model, by the search and by the final training alike:
    the task's metrics on each of ``splits`` (accuracy and macro-F1, or R², RMSE and MAE), the
    energy of inference on ``infer_on``, and size and speed (:func:`model_costs`). ``costs``:
    those last two as measured before on the same network (they do not depend on its weights),
    reused instead of measured again. ``speed=False``: size only, nothing timed. ``timed``: the
    model and validation inputs to time instead (a CPU copy, ``--measure-on cpu``). ``outputs``:
    the model's outputs on some splits, already computed (training's on the validation split)."""
    metrics: dict[str, Any] = {}
    for split, (X, y) in splits.items():
        known = (outputs or {}).get(split)
        predicted = (known if known is not None else predict_logits(model, X, precision=precision)).cpu()
        metrics.update({f"{split}_{k}": v for k, v in task.metrics(predicted, y.cpu()).items()})
    if costs is not None:
        return {**metrics, **costs}
    if not speed:
        return {**metrics, **model_size(model, task.input_shape)}
    speed_model, inputs = timed or (model, task.X_val)
    gpu = inputs.device if inputs.device.type == "cuda" else None
    with energy_meter(ms.power, gpu=gpu) as infer_energy:
        predict_logits(speed_model, infer_on.to(inputs.device))
    metrics.update(model_costs(speed_model, task.input_shape, inputs, ms), infer_energy_kwh=infer_energy.kwh,
                   measured_on=devices.describe(inputs.device))
    return metrics


def measured_splits(task: Task, last: bool, train_fit: bool = True) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The splits an evaluation measures the task's metrics on. At a candidate's last rung
    (or without a scheduler): train, validation and test in full. At a rung below the last
    (multi-fidelity), only what the search reads: the validation split (whose outputs training
    computed already) and, with ``train_fit`` (a strategy that reads the train/validation gap:
    the expert system), every k-th training row, as many rows as the validation split has at
    most (an estimate of training accuracy; the rows used are recorded as
    ``train_rows_measured``); the test split is skipped, nothing selects on it. Predicting the
    whole training split and the test split at every rung cost mnist-5k's short candidates
    about 0.9 s each, against 1.3 s per epoch of training."""
    val = (task.X_val, task.y_val)
    if last:
        return {"train": (task.X_train, task.y_train), "val": val, "test": (task.X_test, task.y_test)}
    if not train_fit:
        return {"val": val}
    step = max(1, math.ceil(len(task.X_train) / max(1, len(task.X_val))))
    return {"train": (task.X_train[::step], task.y_train[::step]), "val": val}


COSTS = "costs"  # the key under which a multi-fidelity training state carries the network's measured costs


SPEED = ("latency_ms", "batch_latency_ms", "fps", "onnx_latency_ms", "onnx_batch_latency_ms", "onnx_fps", "infer_energy_kwh")
WEIGHT_FREE = ("params", "flops", "size_bytes", *SPEED, "measured_on")


def _costs(metrics: dict[str, Any]) -> dict[str, Any]:
    """The part of ``measure_trained``'s metrics that does not depend on the weights: size,
    speed and inference energy."""
    return {k: metrics[k] for k in WEIGHT_FREE if k in metrics}


@EVALUATORS.register
class TrainingEvaluator:
    """Builds each genome under its seed, trains it, and measures it on this machine."""

    name = "training"
    needs_task = True

    @classmethod
    def from_config(cls, config: SearchConfig, task: Task | None, space: SearchSpace, out: Path) -> TrainingEvaluator:
        assert task is not None, "the training evaluator trains on the run's task"
        options = STRATEGIES.get(config.strategy.name).weight_inheritance(config.strategy, config.budget)
        weights = (space.weight_store(task, config.train, out / "cell_weights.pt", config.seed, **options)
                   if options is not None else None)
        settings = config.train.model_copy(update={"epochs": config.max_epochs}) if config.scheduler.on else config.train
        reads = Goal.of(config, task.kind).reads()
        strategy = STRATEGIES.get(config.strategy.name)
        speed_early = strategy.reads_speed or any(metric in reads for metric in SPEED)
        return cls(task, settings, config.measure, weights, speed_at_first_rung=speed_early, device=config.device,
                   train_fit_every_rung=strategy.reads_train_fit)

    def __init__(self, task: Task, train_settings: TrainSettings | None = None,
                 measure_settings: MeasureSettings | None = None, weights: WeightSource | None = None,
                 speed_at_first_rung: bool = True, device: DeviceSettings | None = None,
                 train_fit_every_rung: bool = True):
        """``speed_at_first_rung=False``: a multi-fidelity candidate's speed (latency, FPS,
        inference energy) is timed at its last rung only, so candidates stopped earlier never
        pay for it (the run's objectives, limits and strategy do not read it).
        ``train_fit_every_rung=False``: training accuracy likewise only at the last rung (the
        strategy does not read it; see :func:`measured_splits`)."""
        self.task = task
        self.train_settings = train_settings or TrainSettings()
        self.measure_settings = measure_settings or MeasureSettings()
        self.weights = weights
        self.speed_at_first_rung = speed_at_first_rung
        self.train_fit_every_rung = train_fit_every_rung
        self.device_settings = device or DeviceSettings()
        self.worker: int | None = None  # a worker process's index: GPUs are shared round-robin
        self._placed: tuple[torch.device, Task] | None = None  # the device, and the task's tensors there

    def __getstate__(self) -> dict[str, Any]:  # sent to workers: each resolves its own device
        return {**self.__dict__, "_placed": None}

    def place(self, worker: int) -> None:
        """This evaluator runs in worker process ``worker`` (of several sharing the GPUs)."""
        self.worker, self._placed = worker, None

    def _on_device(self) -> tuple[torch.device, Task]:
        """The run's device, resolved here, and the task with its tensors moved there once."""
        if self._placed is None:
            device = devices.resolve(self.device_settings.name, self.worker)
            devices.check_precision(device, self.device_settings.precision)
            if device.type == "cuda":  # the same kernels on every run (README: what stays reproducible on a GPU)
                torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
            self._placed = device, self.task.to(device)
        return self._placed

    def build(self, genome: Genome, seed: int) -> torch.nn.Module:
        torch.manual_seed(seed)
        try:
            return genome.build(self.task.input_shape, self.task.n_outputs)
        except (RuntimeError, ValueError) as exc:
            raise TrialFailed(f"network does not build: {exc}") from exc

    def cheap_metrics(self, genome: Genome, seed: int) -> dict[str, Any]:
        """What is known of a candidate before training (parameters, FLOPs, size in bytes), from
        the built network alone; raises TrialFailed when it does not build."""
        model = self.build(genome, seed)
        return {"params": count_params(model), "flops": count_flops(model, self.task.input_shape),
                "size_bytes": model_size_bytes(model)}

    def learn(self, genome: Genome, evaluation: Evaluation) -> None:
        """Let the weight source learn from a finished evaluation (runs in the study's process,
        whichever worker trained the network)."""
        if self.weights is None or not evaluation.state_dict:
            return
        model = genome.build(self.task.input_shape, self.task.n_outputs)
        model.load_state_dict(evaluation.state_dict)
        self.weights.update(model, genome, evaluation.metrics)

    def _train(self, model: torch.nn.Module, s: TrainSettings, generator: torch.Generator, seed: int,
               until: int | None = None, resume: TrainState | None = None) -> TrainResult:
        """Gradient descent, differential evolution of the weights (EB-LNAST's lower level), or both."""
        task = self._on_device()[1]
        if s.method == "gradient":
            return train(model, task.X_train, task.y_train, task.X_val, task.y_val, s, generator, until=until,
                         resume=resume, loss=task.loss(s.regression_loss), precision=self.device_settings.precision)
        from ..train.evolve_weights import DEConfig, evolve_weights

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
        refined = train(model, task.X_train, task.y_train, task.X_val, task.y_val, s, generator,
                        loss=task.loss(s.regression_loss), precision=self.device_settings.precision)
        refined.seconds += de_seconds
        return refined

    def evaluate(self, genome: Genome, seed: int, until: int | None = None,
                 resume: dict[str, Any] | None = None) -> Evaluation:
        """Train and measure; raises TrialFailed for a candidate that cannot be trained.
        ``until``: stop after that epoch, keeping what continuing needs (``train_state``);
        ``resume``: continue a previous evaluation's ``train_state`` (its weights, not inherited ones);
        size, speed and inference energy do not change with training, so a continued evaluation
        reuses those its first rung measured (speed: the first rung that times it, see
        ``speed_at_first_rung``)."""
        ms, placement = self.measure_settings, self.device_settings
        device, task = self._on_device()
        model = self.build(genome, seed)
        resume = dict(resume) if resume is not None else None
        costs = resume.pop(COSTS, None) if resume is not None else None  # measured at an earlier rung
        state = TrainState.from_dict(resume) if resume is not None else None
        inherited = self.weights.initialise(model, genome) if self.weights is not None and state is None else False
        model = model.to(device)
        generator = torch.Generator().manual_seed(seed)
        settings = self.train_settings
        genome_decay = float(getattr(genome, "weight_decay", 0.0) or 0.0)  # the net family's regularisation gene
        if genome_decay:
            settings = settings.model_copy(update={"weight_decay": settings.weight_decay + genome_decay})
        gpu = device if device.type == "cuda" else None
        if gpu is not None:
            torch.cuda.reset_peak_memory_stats(gpu)
        try:
            with energy_meter(ms.power, gpu=gpu) as train_energy:
                result = self._train(model, settings, generator, seed, until, state)
            last = until is None or until >= settings.epochs
            splits = measured_splits(task, last, self.train_fit_every_rung)
            speed = self.speed_at_first_rung or last
            if speed and costs is not None and "latency_ms" not in costs:
                costs = None  # an earlier rung counted the size only: time the speed now
            on_cpu = speed and costs is None and placement.measure_on == "cpu" and gpu is not None
            timed = (copy.deepcopy(model).cpu(), self.task.X_val) if on_cpu else None
            known = {"val": result.val_outputs} if result.val_outputs is not None else None
            metrics = measure_trained(model, task, ms, splits, infer_on=task.X_val, costs=costs, speed=speed,
                                      precision=placement.precision, timed=timed, outputs=known)
        except torch.cuda.OutOfMemoryError as exc:
            del model
            if gpu is not None:
                torch.cuda.empty_cache()
            raise TrialFailed(f"out of GPU memory on {devices.describe(device)} with batch size "
                              f"{settings.batch_size} ({str(exc).splitlines()[0][:120]}); a smaller --batch-size "
                              "or fewer --trials-per-gpu leave more room") from None
        metrics.update(
            val_loss=result.best_val_loss,
            train_seconds=result.seconds,
            epochs=result.epochs,
            best_epoch=result.best_epoch,
            train_energy_kwh=train_energy.kwh,
            energy_source=train_energy.source,
            inherited=inherited,
            device=devices.describe(device),
        )
        if "train" in splits and not last:
            metrics["train_rows_measured"] = len(splits["train"][0])
        if gpu is not None:
            metrics["gpu_memory_mb"] = torch.cuda.max_memory_allocated(gpu) / 2**20
        train_state = None
        if result.state is not None:  # a rung: the next one continues this training and keeps these costs
            train_state = {**result.state.to_dict(), COSTS: costs if costs is not None else _costs(metrics)}
        return Evaluation(metrics, weights(model), train_state)
