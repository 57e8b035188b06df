"""A task (classification or regression): split, preprocessed tensors ready for fast in-memory training.

Rules (documented in the README):
- Split: train/validation/test (default 60/20/20) with a seed, stratified by class for
  classification, plain for regression.
- Preprocessing is fitted on the training split only: numeric columns get their missing
  values replaced by the training median, then standardised with training mean and sd;
  categorical columns are one-hot encoded with the categories seen in training (a missing
  value is its own category, unseen categories encode as all zeros).
- Labels of any type are turned into class indices in sorted order of their text form.
- A regression target is standardised with the training split's mean and sd (:mod:`.targets`).
- ``kind="auto"`` is classification unless the target is numeric with fractional values or
  more than ``MAX_AUTO_CLASSES`` distinct values: then the user is asked to say which they
  mean (``--task``), never guessed.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ..errors import NasforgeError
from .targets import KINDS, Scale, loss_function, split_metrics

MAX_AUTO_CLASSES = 20


@dataclass
class Task:
    """Everything the evaluator needs; tensors stay in memory (small data, no DataLoader)."""

    name: str
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str]
    feature_names: list[str] = field(default_factory=list)
    preprocessor: Any = None
    spec: dict[str, Any] = field(default_factory=dict)
    kind: str = "classification"
    scale: Scale | None = None  # a regression target's training mean and sd
    raw_test: Any = field(default=None, repr=False)  # a table's test rows as read (checks an export from raw rows)

    def __post_init__(self) -> None:
        for name in ("X_train", "X_val", "X_test"):
            setattr(self, name, standard_strides(getattr(self, name)))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.X_train.shape[1:])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_outputs(self) -> int:
        """The network's output width: one per class, or one number for regression."""
        return self.n_classes if self.kind == "classification" else 1

    def loss(self, regression: str = "mse") -> Any:
        """The training loss: cross-entropy, or for regression ``regression`` (mse, huber)."""
        return loss_function(self.kind, regression)

    def metrics(self, outputs: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """This task's metrics of network outputs on one split (accuracy and macro-F1, or
        R², RMSE and MAE), keys without the split's prefix."""
        return split_metrics(self.kind, outputs, y, self.scale)

    def to(self, device: torch.device) -> Task:
        """This task with its six tensors on ``device`` (itself when they are there already)."""
        if self.X_train.device == device:
            return self
        names = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")
        return dataclasses.replace(self, **{name: getattr(self, name).to(device) for name in names})

    def describe(self) -> str:
        sizes = f"{len(self.y_train)}/{len(self.y_val)}/{len(self.y_test)}"
        what = (f"{self.n_classes} classes" if self.kind == "classification"
                else f"regression (target mean {self.scale.mean:.4g}, sd {self.scale.std:.4g})" if self.scale
                else "regression")
        return f"{self.name}: {what}, input {self.input_shape}, train/val/test {sizes}"


def standard_strides(X: torch.Tensor) -> torch.Tensor:
    """``X`` laid out row-major with the strides torch computes for its shape.

    Single-channel images from numpy often carry a channel stride of 1 ([N, 1, H, W] with
    strides (HW, 1, W, 1)); torch then treats them as channels-last, and oneDNN's backward of a
    strided 1x1 convolution on channels-last input corrupts the heap (torch 2.13, CPU). A
    standard layout keeps every network on the well-trodden path.
    """
    expected, step = [], 1
    for size in reversed(X.shape):
        expected.insert(0, step)
        step *= size
    return X if tuple(X.stride()) == tuple(expected) else X.clone(memory_format=torch.contiguous_format)


def encode_labels(y: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Class indices in sorted order of the labels' text; at least two classes."""
    text = y.astype(str)
    classes = sorted(text.unique())
    if len(classes) < 2:
        raise NasforgeError(f"the target has {len(classes)} class ({classes}); a classifier needs at least 2")
    index = {c: i for i, c in enumerate(classes)}
    return text.map(index).to_numpy(np.int64), classes


def stratified_split(
    y: np.ndarray, val_fraction: float, test_fraction: float, seed: int, classes: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of train/val/test, stratified by class."""
    _check_fractions(val_fraction, test_fraction)
    counts = np.bincount(y)
    rare = np.flatnonzero(counts < 3)
    if len(rare):
        name = classes[rare[0]] if classes else str(rare[0])
        numeric = classes is not None and pd.to_numeric(pd.Series(classes), errors="coerce").notna().all()
        hint = "; if the target is a number to predict, use --task regression" if numeric else ""
        raise NasforgeError(
            f"class {name!r} has {counts[rare[0]]} row(s); every class needs at least 3 for a train/validation/test split"
            + hint
        )
    _check_room(len(y), len(counts), val_fraction, test_fraction)
    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=test_fraction, stratify=y, random_state=seed)
    val_share = val_fraction / (1 - test_fraction)
    train, val = train_test_split(rest, test_size=val_share, stratify=y[rest], random_state=seed)
    return train, val, test


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise NasforgeError(f"split fractions val={val_fraction}, test={test_fraction} must be in (0,1) and sum below 1")


def _check_room(n: int, k: int, val_fraction: float, test_fraction: float) -> None:
    """Each of the three parts must be able to hold every class (scikit-learn's rule for a
    stratified split: ``ceil(fraction * rows)`` rows in the smaller part, at least k)."""
    n_test = math.ceil(test_fraction * n)
    n_rest = n - n_test
    n_val = math.ceil(val_fraction / (1 - test_fraction) * n_rest)
    parts = {"test": n_test, "validation": n_val, "training": n_rest - n_val}
    short = [(name, rows) for name, rows in parts.items() if rows < k]
    if short:
        name, rows = short[0]
        raise NasforgeError(f"{n} rows with {k} classes cannot be split so that every part holds every class "
                            f"(the {name} part would have {rows} rows); use more rows or fewer classes")


def make_preprocessor(frame: pd.DataFrame) -> ColumnTransformer:
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    categorical = [c for c in frame.columns if c not in numeric]
    return ColumnTransformer(
        [
            # a column with no value in the training rows stays, as zeros: dropping it would leave
            # no features at all when it is the only one, and change the input width from split to split
            ("numeric", make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()),
             numeric),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="<missing>"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                categorical,
            ),
        ],
        verbose_feature_names_out=False,
    )


def tabular_task(
    name: str,
    features: pd.DataFrame,
    target: pd.Series,
    *,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    spec: dict[str, Any] | None = None,
    kind: str = "auto",
) -> Task:
    """Split a feature table and its target, fit preprocessing on train, return tensors.
    ``kind``: "classification", "regression", or "auto" (see the module's rules)."""
    if features.shape[1] == 0:
        raise NasforgeError(f"{name}: no feature columns left besides the target")
    kind = task_kind(name, target, kind)
    scale = None
    if kind == "classification":
        y, classes = encode_labels(target)
        train, val, test = stratified_split(y, val_fraction, test_fraction, seed, classes)
        Y = [torch.as_tensor(y[i]) for i in (train, val, test)]
    else:
        values, classes = regression_target(name, target), []
        train, val, test = plain_split(len(values), val_fraction, test_fraction, seed)
        scale = Scale(float(values[train].mean()), float(values[train].std()))
        if not scale.std > 0:
            raise NasforgeError(f"{name}: the target is constant ({scale.mean:g}) in the training rows; there is nothing to learn")
        Y = [torch.as_tensor(((values[i] - scale.mean) / scale.std).astype(np.float32)) for i in (train, val, test)]
    pre = make_preprocessor(features)
    with np.errstate(all="ignore"):
        parts = [pre.fit_transform(features.iloc[train])] + [pre.transform(features.iloc[i]) for i in (val, test)]
    X = [torch.as_tensor(np.asarray(p, dtype=np.float32)) for p in parts]
    return Task(
        name=name,
        X_train=X[0], y_train=Y[0], X_val=X[1], y_val=Y[1], X_test=X[2], y_test=Y[2],
        classes=classes,
        feature_names=[str(c) for c in pre.get_feature_names_out()],
        preprocessor=pre,
        spec={**(spec or {}), "seed": seed, "val_fraction": val_fraction, "test_fraction": test_fraction, "task": kind},
        kind=kind, scale=scale, raw_test=features.iloc[test].reset_index(drop=True),
    )


def task_kind(name: str, target: pd.Series, kind: str) -> str:
    """``kind`` checked, with "auto" resolved: classification unless the target looks like a
    number to predict, which is a question for the user, not a guess."""
    if kind not in (*KINDS, "auto"):
        raise NasforgeError(f"unknown task {kind!r}; choose auto, classification or regression")
    if kind != "auto":
        return kind
    numbers = pd.to_numeric(target, errors="coerce")
    if numbers.notna().all():
        distinct = numbers.nunique()
        fractional = bool((numbers != numbers.round()).any())
        if fractional or distinct > MAX_AUTO_CLASSES:
            why = "fractional values" if fractional else f"{distinct} distinct values"
            raise NasforgeError(f"{name}: the target is numeric with {why}; say what to learn: --task regression "
                                f"(predict the number) or --task classification (each value is a class)")
    return "classification"


def regression_target(name: str, target: pd.Series) -> np.ndarray:
    """The target as finite float64 numbers; text, NaN or infinity is an error naming the row."""
    numbers = pd.to_numeric(target, errors="coerce").astype(float)
    bad = ~np.isfinite(numbers.to_numpy())
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise NasforgeError(f"{name}: a regression target must be a finite number; row {row + 1} holds "
                            f"{target.iloc[row]!r}")
    return numbers.to_numpy(np.float64)


def plain_split(n: int, val_fraction: float, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of a seeded train/val/test split (regression: nothing to stratify by)."""
    _check_fractions(val_fraction, test_fraction)
    if n < 10:
        raise NasforgeError(f"{n} rows are too few to split into training, validation and test; use at least 10")
    rest, test = train_test_split(np.arange(n), test_size=test_fraction, random_state=seed)
    train, val = train_test_split(rest, test_size=val_fraction / (1 - test_fraction), random_state=seed)
    return train, val, test
