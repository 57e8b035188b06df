"""The Python face of nasforge: run a search, read a run, load its best model."""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .config import SearchConfig, build_config, load_toml, merge
from .device import resolve
from .errors import NasforgeError
from .progress import ProgressReporter
from .runs import best_trial, pareto_trials, read_task_info, read_trials
from .spaces import Genome, genome_from_dict
from .storage import TrialRecord
from .study import Study, create_study


@dataclass
class SearchResult:
    """A run's trials and its answer: ``best`` is the fittest trial, or with several
    objectives the knee of the Pareto front; ``front`` lists the front's trials."""

    out: Path
    best: TrialRecord | None
    trials: list[TrialRecord]

    @property
    def front(self) -> list[TrialRecord]:
        """The trials on the Pareto front (within the limits when any trial is), in trial
        order; with one objective, the best trial alone."""
        return pareto_trials(self.trials)

    @property
    def best_genome(self) -> Genome | None:
        return genome_from_dict(self.best.genome) if self.best else None

    def load_model(self, trial: int | None = None) -> TrainedModel:
        return load_model(self.out, trial)


def default_out(config: SearchConfig) -> Path:
    """``runs/DATA-STRATEGY-seedN``, naming also the objectives and the scheduler when they are
    set, so searches that differ in them do not land in one directory."""
    parts = [config.label, config.strategy.name, *(["+".join(config.objectives)] if config.objectives else []),
             *([config.scheduler.kind] if config.scheduler.on else []), f"seed{config.seed}"]
    return Path("runs") / "-".join(parts)


def search(
    dataset: str | None = None,
    *,
    csv: str | None = None,
    target: str | None = None,
    path: str | None = None,
    task: str | None = None,
    strategy: str | None = None,
    budget: int = 40,
    seed: int = 0,
    out: str | Path | None = None,
    storage: str | None = None,
    config: str | Path | dict[str, Any] | None = None,
    callback: Callable[[TrialRecord, Study], None] | None = None,
    progress: str = "quiet",
    **settings: Any,
) -> SearchResult:
    """Run (or continue) a search and return its best trial.

    ``task``: "classification", "regression" or None (auto: a built-in dataset's own kind; a
    CSV target that is numeric with many values is an error asking which).
    ``strategy`` is a registered strategy's name (default: the config's, else evolution);
    ``settings`` are sections of the configuration, e.g. ``train={"epochs": 20}``,
    ``space={"max_layers": 3}``, ``strategy={"population_size": 12}``,
    ``objective={"accuracy": 1, "fps": 0.5}`` (one combined metric), or
    ``objectives=["accuracy", "latency"]`` (a Pareto front, ``result.front``) with limits such as
    ``constraints={"max_latency_ms": 0.5}``. ``progress``: "quiet" (default), "auto" (a bar
    on a terminal, else a line per trial on stderr), "bar", "lines" or "jsonl".
    """
    base = load_toml(config) if isinstance(config, (str, Path)) else dict(config or {})
    data = {k: v for k, v in dict(dataset=dataset, csv=csv, target=target, path=path, task=task).items() if v is not None}
    flags: dict[str, Any] = {"budget": budget, "seed": seed, **settings}
    if strategy is not None:
        if base.get("strategy", {}).get("name") not in (None, strategy):
            base.pop("strategy")  # settings the config gives another strategy do not carry over to this one
        flags["strategy"] = {**flags.get("strategy", {}), "name": strategy}
    if data:
        flags["data"] = {**flags.get("data", {}), **data}  # with any data settings given, e.g. val_fraction
    cfg = build_config(merge(base, flags))
    out = Path(out) if out else default_out(cfg)
    study = create_study(out, cfg, storage=storage)
    for note in study.notes:  # e.g. a run continuing on another device
        warnings.warn(note, stacklevel=2)
    done = study.finished()
    best = study.best()
    try:
        with ProgressReporter(progress, cfg.budget, len(done), best.fitness if best else None) as reporter:
            def report(record: TrialRecord, s: Study) -> None:
                reporter(record, s)
                if callback:
                    callback(record, s)

            best = study.run(report)
        return SearchResult(out, best, study.trials())
    finally:
        study.close()


def open_run(out: str | Path, storage: str | None = None) -> SearchResult:
    """Read a run's trials without running anything."""
    trials = read_trials(out, storage)
    return SearchResult(Path(out), best_trial(trials), trials)


class TrainedModel:
    """A trained network with what it needs to predict on raw inputs."""

    def __init__(self, module: torch.nn.Module, genome: Genome, info: dict[str, Any]):
        self.module, self.genome = module.eval(), genome
        self.classes: list[str] = info["classes"]
        self.preprocessor = info.get("preprocessor")
        self.feature_names: list[str] = info.get("feature_names", [])
        self.kind: str = info.get("kind", "classification")
        self.target_scale = info.get("target_scale")  # a regression target's training mean and sd

    def _inputs(self, X: Any) -> torch.Tensor:
        """Raw rows (a DataFrame), raw images (uint8 [N, H, W, C]: scaled to [0, 1] and
        standardised as in training, like the exported ONNX file), or preprocessed numbers."""
        if self.preprocessor is not None and isinstance(X, pd.DataFrame):
            X = self.preprocessor.transform(X)
        elif isinstance(X, np.ndarray) and X.dtype == np.uint8 and X.ndim == 4 and hasattr(self.preprocessor, "size"):
            X = self.preprocessor.transform(X.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0))
        first = next(self.module.parameters(), torch.zeros(()))  # float32, or float64 after .double(); its device
        return torch.as_tensor(np.asarray(X, dtype=np.float32)).to(first.device, first.dtype)

    @torch.no_grad()
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities; ``X`` is a DataFrame of raw columns or preprocessed numbers."""
        if self.kind != "classification":
            raise NasforgeError("a regression model predicts numbers, not class probabilities; use predict")
        return torch.softmax(self.module(self._inputs(X)), dim=1).cpu().numpy()

    @torch.no_grad()
    def predict(self, X: Any) -> list[str] | np.ndarray:
        """Class labels, or for regression the predicted numbers (float64, in the target's units)."""
        if self.kind == "regression":
            return self.target_scale.restore(self.module(self._inputs(X)).cpu()).reshape(-1).double().numpy()
        return [self.classes[i] for i in self.predict_proba(X).argmax(1)]


def load_model(out: str | Path, trial: int | None = None, device: str = "cpu") -> TrainedModel:
    """The best (or a given) trial's trained network: ``nasforge.load_model("runs/digits")``.
    ``device``: where it runs (cpu, cuda, cuda:N or auto); predictions come back as numpy
    arrays wherever it runs. Weights are stored device-free, so a model searched on a GPU
    loads on a CPU and back."""
    out = Path(out)
    info = read_task_info(out)
    run = open_run(out)
    record = run.best if trial is None else next((t for t in run.trials if t.number == trial), None)
    if record is None or record.state != "complete":
        raise NasforgeError(f"no completed trial {'' if trial is None else trial} in {out}")
    weights = out / "models" / f"trial-{record.number:05d}.pt"
    if not weights.is_file():
        raise NasforgeError(f"the weights of trial {record.number} are missing ({weights}); 'nasforge train {out} "
                            f"--trial {record.number}' trains its genome again (into {out / 'final'})")
    genome = genome_from_dict(record.genome)
    module = genome.build(tuple(info["input_shape"]), info["n_outputs"])
    module.load_state_dict(torch.load(weights, weights_only=True, map_location="cpu"))
    return TrainedModel(module.to(resolve(device)), genome, info)
