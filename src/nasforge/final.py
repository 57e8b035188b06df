"""Train the chosen architecture once more, from scratch, on training and validation data.

A search trains every candidate on the training split only, because the validation split
is what selection looks at. Once the architecture is chosen, validation data has done its
job, so the final network can learn from it too: ``nasforge train RUN --epochs N``.

Consequences, documented for users:
- There is no held-out data left to stop early on, so training runs exactly ``epochs``
  epochs (``patience`` 0). ``train()`` keeps the weights of the epoch with the lowest loss
  on the data it is shown as "validation"; here that is the training data itself (train +
  validation), so no held-out data is involved, and the kept epoch is reported.
- The test split is still untouched until the end: test accuracy and macro-F1 are measured
  once, on the finished network, for the report.
- Preprocessing is not refitted: the run's preprocessor (fitted on the training split) is
  what the saved model expects, so ``load_model``/``export`` keep working unchanged.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from .config import SearchConfig, validation_message
from .data import Task
from .data.targets import score_key
from .device import check_precision, describe, resolve
from .errors import NasforgeError, TrialFailed
from .evaluators.training import measure_trained
from .files import torch_bytes, write_together
from .measure.energy import energy_meter
from .runs import best_trial, read_task_info, read_trials
from .spaces import Genome, genome_from_dict
from .storage import TrialRecord
from .study import load_study
from .train.settings import TrainSettings
from .train.trainer import train, weights

FINAL_DIR = "final"


def run_task(out: str | Path) -> tuple[SearchConfig, Task]:
    """The run's configuration and its data, split exactly as during the search."""
    study = load_study(out, read_only=True)
    try:
        if study.task is None:
            raise NasforgeError(f"{out} is a tabular-benchmark run: its accuracies were looked up, no network was trained")
        return study.config, study.task
    finally:
        study.close()


def pick_trial(out: str | Path, trial: int | None = None) -> TrialRecord:
    """The best completed trial, or the completed trial numbered ``trial``."""
    records = read_trials(out)
    if trial is None:
        record = best_trial(records)
        if record is None:
            raise NasforgeError(f"{out} has no completed trial yet")
        return record
    record = next((r for r in records if r.number == trial), None)
    if record is None:
        raise NasforgeError(f"{out} has no trial {trial} (trials 0..{max((r.number for r in records), default=-1)})")
    if record.state != "complete":
        raise NasforgeError(f"trial {trial} of {out} did not complete ({record.state}): {record.error or 'no result'}")
    return record


def final_settings(config: SearchConfig, genome: Genome, epochs: int, lr: float | None) -> TrainSettings:
    """The search's training settings with a fixed epoch count, early stopping off, gradient descent.

    The genome's own weight-decay gene is added as in the search, so the final network is
    regularised the way the selected candidate was.
    """
    update: dict[str, Any] = {"epochs": epochs, "patience": 0, "method": "gradient"}
    if lr is not None:
        update["lr"] = lr
    try:
        settings = TrainSettings.model_validate({**config.train.model_dump(), **update})
    except ValidationError as exc:
        raise NasforgeError(validation_message(exc).replace("config ", "train.", 1)) from None
    decay = float(getattr(genome, "weight_decay", 0.0) or 0.0)
    if decay:
        settings = settings.model_copy(update={"weight_decay": settings.weight_decay + decay})
    return settings


def _json(data: Any) -> bytes:
    return json.dumps(data, indent=2, sort_keys=True).encode()


CLASSIFICATION_EPOCHS = 100  # the default of a final training for classification


def default_epochs(task: Task, record: TrialRecord) -> int:
    """Epochs of a final training when none are given: 100 for classification; for a regression,
    the epochs early stopping kept in the search (``best_epoch``, at least 1), since a regression
    network trained on without a validation signal overfits the small tables it is used on."""
    if task.kind == "classification":
        return CLASSIFICATION_EPOCHS
    kept = record.metrics.get("best_epoch")
    return max(1, int(kept)) if isinstance(kept, (int, float)) and kept > 0 else CLASSIFICATION_EPOCHS


def train_final(out: str | Path, trial: int | None = None, epochs: int | None = None, seed: int = 0,
                lr: float | None = None, device: str | None = None) -> dict[str, Any]:
    """Train the best (or given) trial's genome on train + validation; save it in ``OUT/final/``.
    ``epochs``: default :func:`default_epochs`. ``device``: where (default: the run's ``--device``,
    with its precision and ``--measure-on``); the saved weights are device-free.

    Returns the metrics written to ``OUT/final/metrics.json``: test accuracy and macro-F1 (or
    R², RMSE and MAE), the same on the data trained on, size, speed and energy (labelled measured/estimated).
    """
    out = Path(out)
    config, task = run_task(out)
    record = pick_trial(out, trial)
    genome = genome_from_dict(record.genome)
    settings = final_settings(config, genome, epochs if epochs is not None else default_epochs(task, record), lr)
    torch.set_num_threads(config.threads or 1)  # the search measured with one thread unless told otherwise
    where = resolve(device or config.device.name)
    precision = config.device.precision
    check_precision(where, precision)
    placed = task.to(where)
    torch.manual_seed(seed)
    model = genome.build(task.input_shape, task.n_outputs).to(where)
    X = torch.cat([placed.X_train, placed.X_val])
    y = torch.cat([placed.y_train, placed.y_val])
    generator = torch.Generator().manual_seed(seed)
    ms = config.measure
    gpu = where if where.type == "cuda" else None
    with energy_meter(ms.power, gpu=gpu) as train_energy:
        try:
            result = train(model, X, y, X, y, settings, generator, loss=task.loss(settings.regression_loss),
                           precision=precision)
        except TrialFailed as exc:
            raise NasforgeError(f"final training of trial {record.number} failed: {exc}; try a smaller --lr") from None
    metrics: dict[str, Any] = {"trial": record.number, "genome": genome.summary(), "seed": seed,
                               "device": describe(where)}
    timed = (copy.deepcopy(model).cpu(), task.X_val) if gpu is not None and config.device.measure_on == "cpu" else None
    metrics.update(measure_trained(model, placed, ms, {"train": (X, y), "test": (placed.X_test, placed.y_test)},
                                   infer_on=placed.X_test, precision=precision, timed=timed))
    metrics.update(
        **{f"search_{key}": record.metrics.get(key) for key in (score_key(record.metrics, "test"),
                                                                  score_key(record.metrics, "val"))},
        epochs=result.epochs,
        kept_epoch=result.best_epoch,
        final_train_loss=result.history[-1][0] if result.history else None,
        train_rows=len(y),
        optimizer=settings.optimizer,
        lr=settings.lr,
        weight_decay=settings.weight_decay,
        batch_size=settings.batch_size,
        train_seconds=result.seconds,
        train_energy_kwh=train_energy.kwh,
        infer_rows=len(task.y_test),
        energy_source=train_energy.source,
        learning_rules=list(genome.rules()) if hasattr(genome, "rules") else None,
    )
    folder = out / FINAL_DIR
    write_together(folder, {  # metrics.json last: load_final needs it, so a cut-off write is no final model
        "model.pt": torch_bytes(weights(model)),
        "genome.json": _json(genome.to_dict()), "metrics.json": _json(metrics)})
    return metrics


def load_final(out: str | Path) -> tuple[torch.nn.Module, Genome, dict[str, Any]]:
    """The network saved by :func:`train_final` (eval mode), its genome and its metrics."""
    folder = Path(out) / FINAL_DIR
    files = [folder / name for name in ("model.pt", "genome.json", "metrics.json")]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise NasforgeError(f"{out} has no final model ({', '.join(missing)} missing); make one with 'nasforge train {out}'")
    info = read_task_info(out)
    genome = genome_from_dict(json.loads(files[1].read_text()))
    module = genome.build(tuple(info["input_shape"]), info["n_outputs"])
    module.load_state_dict(torch.load(files[0], weights_only=True, map_location="cpu"))
    return module.eval(), genome, json.loads(files[2].read_text())
