"""Load a task from a built-in dataset or a user's file."""
from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import NasforgeError
from .builtin import BUILTINS
from .csv import read_csv
from .task import Task, tabular_task


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def load_task(
    dataset: str | None = None,
    *,
    csv: str | Path | None = None,
    target: str | None = None,
    drop: tuple[str, ...] = (),
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
) -> Task:
    """A split, preprocessed task: ``load_task("digits")`` or ``load_task(csv="f.csv", target="y")``."""
    split = dict(seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
    if (dataset is None) == (csv is None):
        raise NasforgeError("give exactly one of a built-in dataset name or a CSV file")
    if csv is not None:
        if not target:
            raise NasforgeError("a CSV needs --target COLUMN: the column holding the class labels")
        features, labels = read_csv(csv, target, tuple(drop))
        spec = {"csv": str(Path(csv).resolve()), "target": target, "drop": list(drop), "sha256": file_digest(csv)}
        return tabular_task(Path(csv).stem, features, labels, spec=spec, **split)
    if dataset not in BUILTINS:
        raise NasforgeError(f"unknown dataset {dataset!r}; built in: {', '.join(sorted(BUILTINS))} (or use --csv FILE)")
    features, labels = BUILTINS[dataset].load()
    return tabular_task(dataset, features, labels, spec={"dataset": dataset}, **split)


def reload_task(spec: dict) -> Task:
    """Load the same task again from the spec stored with a run (checks the CSV is unchanged)."""
    split = {k: spec[k] for k in ("seed", "val_fraction", "test_fraction")}
    if "csv" in spec:
        if not Path(spec["csv"]).is_file():
            raise NasforgeError(f"the run's CSV file is gone: {spec['csv']}")
        if file_digest(spec["csv"]) != spec["sha256"]:
            raise NasforgeError(f"{spec['csv']} changed since the run started; results would not be comparable")
        return load_task(csv=spec["csv"], target=spec["target"], drop=tuple(spec.get("drop", ())), **split)
    return load_task(spec["dataset"], **split)


__all__ = ["Task", "load_task", "reload_task", "BUILTINS"]
