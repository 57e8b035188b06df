"""Load a task from a built-in dataset or a user's file (CSV table or image data)."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import NasforgeError
from .builtin import BUILTINS
from .csv import read_csv
from .task import Task, tabular_task

IMAGE_FORMATS = ("auto", "images", "idx", "cifar")


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def load_task(
    dataset: str | None = None,
    *,
    csv: str | Path | None = None,
    target: str | None = None,
    drop: Sequence[str] = (),
    path: str | Path | None = None,
    format: str = "auto",
    image_size: Sequence[int] | None = None,
    channels: int | None = None,
    color_features: str | None = None,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    task: str = "auto",
) -> Task:
    """A split, preprocessed task from exactly one source.

    ``load_task("digits")``, ``load_task(csv="f.csv", target="y")``, or image files with
    ``load_task(path="photos/", format="images", image_size=(32, 32))`` (``format`` "auto"
    tells a folder of class folders, IDX files and CIFAR batches apart). ``task``:
    "classification", "regression" (tables only) or "auto" (a built-in dataset's own kind; for
    a CSV, classification unless the target is numeric with many values, then an error that
    asks which).
    """
    split = dict(seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
    sources = [s for s in (dataset, csv, path) if s is not None]
    if len(sources) != 1:
        raise NasforgeError("give exactly one data source: a built-in dataset, a CSV file, or an image path")
    if csv is not None:
        if not target:
            raise NasforgeError("a CSV needs --target COLUMN: the column holding the class labels (or the number to predict)")
        features, labels = read_csv(csv, target, tuple(drop))
        spec = {"csv": str(Path(csv).resolve()), "target": target, "drop": list(drop), "sha256": file_digest(csv)}
        return tabular_task(Path(csv).stem, features, labels, spec=spec, kind=task, **split)
    if task == "regression" and (path is not None or BUILTINS.get(str(dataset)) and BUILTINS[str(dataset)].kind == "image"):
        raise NasforgeError("regression needs a table (a CSV or a tabular built-in dataset); image data is classification only")
    from .images import image_task, read_image_data

    if path is not None:
        if format not in IMAGE_FORMATS:
            raise NasforgeError(f"unknown image data format {format!r}; choose from {', '.join(IMAGE_FORMATS)}")
        size = tuple(image_size) if image_size else None
        data = read_image_data(path, size, channels) if format == "auto" else _read_format(format, path, size, channels)
        spec = {"path": str(Path(path).resolve()), "format": format, "image_size": list(size) if size else None,
                "channels": channels}
        return image_task(Path(path).resolve().name, data.X, data.labels, is_test=data.is_test, spec=spec, **split)
    if dataset not in BUILTINS:
        raise NasforgeError(f"unknown dataset {dataset!r}; built in: {', '.join(sorted(BUILTINS))} (or use --csv FILE)")
    builtin = BUILTINS[dataset]
    spec: dict[str, Any] = {"dataset": dataset}
    if builtin.kind == "image":
        data = builtin.load()
        return image_task(dataset, data.X, data.labels, is_test=data.is_test, spec=spec, **split)
    if color_features is not None:
        if dataset != "colors":
            raise NasforgeError("--color-features applies to the colors dataset only")
        spec["color_features"] = color_features
        features, labels = builtin.load(color_features)
    else:
        features, labels = builtin.load()
    return tabular_task(dataset, features, labels, spec=spec, kind=builtin.task if task == "auto" else task, **split)


def _read_format(format: str, path: str | Path, size: Any, channels: int | None) -> Any:
    from .images import read_cifar, read_idx, read_image_folder

    if format == "images":
        return read_image_folder(path, size, channels)
    return read_idx(path) if format == "idx" else read_cifar(path)


def reload_task(spec: dict[str, Any]) -> Task:
    """Load the same task again from the spec stored with a run (checks a CSV is unchanged)."""
    args = {k: v for k, v in spec.items() if k not in ("sha256", "predefined_test")}
    if "csv" in spec:
        if not Path(spec["csv"]).is_file():
            raise NasforgeError(f"the run's CSV file is gone: {spec['csv']}")
        if file_digest(spec["csv"]) != spec["sha256"]:
            raise NasforgeError(f"{spec['csv']} changed since the run started; results would not be comparable")
    return load_task(**args)
