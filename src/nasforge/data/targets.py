"""What a network predicts: a class (classification) or a number (regression).

A target kind gives the network's output width, the training loss, and the metrics measured
on a split. Every kind has one headline *score* where higher is better and which the plain
search maximises: accuracy for classification, R² for regression (1 is a perfect fit, 0 is
predicting the training mean). :func:`score` reads it from any metrics dict, so strategies,
fitness and reports need not know the kind.

Regression rules (README "Regression"):
- the target is standardised with the training split's mean and standard deviation; the
  network learns the standardised value with a mean-squared-error loss, or Huber's
  (``--regression-loss huber``), so the loss, the learning rate and early stopping behave
  alike whatever the target's units;
- RMSE and MAE are reported in the target's own units, R² is unit-free;
- predictions (``TrainedModel.predict``, the exported ONNX file) are in the target's units.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where a loss is asked for: the CLI reads metrics without it
    import torch

KINDS = ("classification", "regression")
SCORES = {"classification": ("acc", "accuracy"), "regression": ("r2", "R²")}


@dataclass(frozen=True)
class Scale:
    """A regression target's training mean and standard deviation."""

    mean: float
    std: float

    def restore(self, standardised: torch.Tensor) -> torch.Tensor:
        return standardised * self.std + self.mean


def loss_function(kind: str, regression: str = "mse") -> Any:
    """The training loss of ``kind``: ``loss(outputs, y)``, a mean over the rows. A regression
    uses ``regression``: "mse", or "huber" (delta 1 on the standardised target: squared within
    one sd, linear beyond, so outliers pull less)."""
    import torch.nn.functional as F

    if kind == "classification":
        return F.cross_entropy
    return _huber if regression == "huber" else _mse


def _mse(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    return F.mse_loss(outputs.reshape(y.shape), y)


def _huber(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    return F.huber_loss(outputs.reshape(y.shape), y, delta=1.0)


def classification_metrics(outputs: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Accuracy and macro-F1 of logits ``outputs`` against class indices ``y``.

    Macro-F1 is scikit-learn's ``f1_score(average="macro", zero_division=0)``: the mean over
    the classes present in ``y`` or in the predictions of ``2 TP / (2 TP + FP + FN)``. Counted
    here with two bincounts: scikit-learn's input validation cost ~6 ms per call, as much as
    training a small MLP for an epoch, and every evaluation measures three splits."""
    import torch

    if not len(y):
        return {"acc": math.nan, "f1": math.nan}
    pred = outputs.argmax(1)
    k = int(max(int(y.max()), int(pred.max()))) + 1
    correct = pred == y
    tp = torch.bincount(y[correct], minlength=k).double()
    true, predicted = torch.bincount(y, minlength=k).double(), torch.bincount(pred, minlength=k).double()
    present = (true + predicted) > 0
    f1 = 2 * tp[present] / (true[present] + predicted[present])  # 2TP + FP + FN = |true| + |predicted|
    return {"acc": float(correct.double().mean()), "f1": float(f1.mean())}


def regression_metrics(outputs: torch.Tensor, y: torch.Tensor, scale: Scale) -> dict[str, float]:
    """R², RMSE and MAE of standardised predictions against standardised targets; RMSE and
    MAE in the target's own units. R² compares with the split's own mean (scikit-learn's
    ``r2_score``); a split whose target is constant has R² NaN."""
    if not len(y):
        return {"r2": math.nan, "rmse": math.nan, "mae": math.nan}
    error = outputs.reshape(y.shape).double() - y.double()
    sse = float((error**2).sum())
    sst = float(((y.double() - y.double().mean()) ** 2).sum())
    return {"r2": 1.0 - sse / sst if sst > 0 else math.nan,
            "rmse": math.sqrt(sse / len(y)) * scale.std,
            "mae": float(error.abs().mean()) * scale.std}


def split_metrics(kind: str, outputs: torch.Tensor, y: torch.Tensor, scale: Scale | None) -> dict[str, float]:
    """The metrics of ``kind`` on one split (keys without the split's prefix)."""
    if kind == "classification":
        return classification_metrics(outputs, y)
    assert scale is not None, "a regression task has a target scale"
    return regression_metrics(outputs, y, scale)


def score_key(metrics: Mapping[str, Any], split: str = "val") -> str:
    """The key of the headline score in ``metrics``: ``{split}_acc`` or ``{split}_r2``
    (``{split}_acc`` when neither is there, which is what callers then report missing)."""
    for suffix, _ in SCORES.values():
        if f"{split}_{suffix}" in metrics:
            return f"{split}_{suffix}"
    return f"{split}_acc"


def score(metrics: Mapping[str, Any], split: str = "val") -> Any:
    """The headline score on ``split``: accuracy for classification, R² for regression
    (None when the metrics hold neither)."""
    return metrics.get(score_key(metrics, split))


def score_label(metrics_or_kind: Mapping[str, Any] | str) -> str:
    """'accuracy' or 'R²', from a kind's name or from a metrics dict."""
    if isinstance(metrics_or_kind, str):
        return SCORES[metrics_or_kind][1]
    return "R²" if score_key(metrics_or_kind).endswith("_r2") else "accuracy"


def kind_of(metrics: Mapping[str, Any]) -> str:
    """The kind of task a metrics dict was measured on (classification when it cannot tell)."""
    return "regression" if any(str(k).endswith("_r2") for k in metrics) else "classification"


# (metric key, short column label) of the quality figures tables show, per kind
COLUMNS = {"classification": [("val_acc", "val acc"), ("test_acc", "test acc"), ("test_f1", "test F1")],
           "regression": [("val_r2", "val R²"), ("test_r2", "test R²"), ("test_rmse", "test RMSE")]}
# (metric key suffix, words) of every quality figure, per kind
NAMES = {"classification": [("acc", "accuracy"), ("f1", "macro-F1")],
         "regression": [("r2", "R²"), ("rmse", "RMSE"), ("mae", "MAE")]}
SPLIT_WORDS = {"train": "training", "val": "validation", "test": "test"}


def quality_columns(records_metrics: Any) -> list[tuple[str, str]]:
    """The quality columns for trials with these metrics dicts (regression if any is)."""
    kinds = {kind_of(m) for m in records_metrics}
    return COLUMNS["regression" if "regression" in kinds else "classification"]


def quality_text(metrics: Mapping[str, Any], splits: tuple[str, ...] = ("val", "test"), digits: int = 4) -> str:
    """``validation accuracy 0.9722   test accuracy 0.9611   test macro-F1 0.9598``, or R², RMSE
    and MAE for regression; only the figures ``metrics`` holds."""
    names = NAMES[kind_of(metrics)]
    parts = []
    for split in splits:
        shown = names[:1] if split != splits[-1] else names  # the score on each split, every figure on the last
        parts += [f"{SPLIT_WORDS[split]} {words} {metrics[f'{split}_{key}']:.{digits}g}"
                  for key, words in shown if isinstance(metrics.get(f"{split}_{key}"), (int, float))]
    return "   ".join(parts)
