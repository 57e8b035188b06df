"""scikit-learn estimators: ``NASClassifier`` and ``NASRegressor`` search an architecture in ``fit``.

    from nasforge import NASClassifier
    clf = NASClassifier(budget=20).fit(X_train, y_train)
    clf.predict(X_test); clf.score(X_test, y_test)

``fit`` writes the data (a DataFrame's columns as they are, an array's as ``x0, x1, ...``)
to ``data.csv`` in a run directory and runs a normal nasforge search on it: ``run_dir_``
can be shown, reported on, exported or resumed with the CLI like any run. The directory is
``out/fit-<digest>`` (the digest of the data and the settings, so fitting the same data
again continues or reuses that run) or, with ``out=None``, a new temporary directory.

The search splits the rows it is given into training, validation and test parts as any
run does (``val_fraction``/``test_fraction``); the model ``predict`` uses is the best trial's
network, trained on the training part. Class labels are written as their index in
``classes_`` (so any label type survives the CSV) and mapped back by ``predict``.

Input errors are scikit-learn's: ``ValueError`` (shapes, lengths, NaN in ``y``, too few
rows), ``NotFittedError`` before ``fit``. Missing values in ``X`` are allowed: they are
filled with the training median (numeric) or form their own category (text).
"""
from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_consistent_length, check_is_fitted, column_or_1d, validate_data

from .errors import NasforgeError

MIN_SAMPLES = 10  # fewer cannot be split into three parts
TARGET = "__target__"  # the target's column in data.csv (a feature of that name is renamed)


class _NASEstimator(BaseEstimator):
    """What both estimators share; ``_kind`` says which task they search for."""

    _kind = "classification"

    def __init__(self, budget: int = 20, strategy: str = "evolution", objectives: list[str] | None = None,
                 space: str = "mlp", epochs: int = 40, patience: int = 6, seed: int = 0,
                 val_fraction: float = 0.2, test_fraction: float = 0.2, out: str | None = None,
                 progress: str = "quiet"):
        self.budget = budget
        self.strategy = strategy
        self.objectives = objectives
        self.space = space
        self.epochs = epochs
        self.patience = patience
        self.seed = seed
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.out = out
        self.progress = progress

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values are filled as in any nasforge run
        tags.input_tags.string = True  # DataFrame text columns are one-hot encoded
        return tags

    # --- fit ---
    def fit(self, X: Any, y: Any) -> _NASEstimator:
        """Search an architecture for (X, y); the best trial's network is the fitted model."""
        frame = self._frame(X, reset=True)
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        y = column_or_1d(y, warn=True)
        check_consistent_length(frame, y)
        if len(y) < MIN_SAMPLES:
            raise ValueError(f"{len(y)} sample(s) are too few to split into training, validation and test parts; "
                             f"give at least {MIN_SAMPLES}")
        target = self._encode_target(y)
        data = frame.copy()
        data[TARGET] = target
        text = data.to_csv(index=False)
        run = self._run_dir(text)
        (run / "data.csv").write_text(text)
        from .api import search

        settings: dict[str, Any] = {"train": {"epochs": self.epochs, "patience": self.patience},
                                    "space": {"family": self.space},
                                    "data": {"val_fraction": self.val_fraction, "test_fraction": self.test_fraction}}
        if self.objectives:
            settings["objectives"] = list(self.objectives)
        try:
            result = search(csv=str(run / "data.csv"), target=TARGET, task=self._kind, strategy=self.strategy,
                            budget=self.budget, seed=self.seed, out=run / "run", progress=self.progress, **settings)
        except NasforgeError as exc:  # bad data or settings: scikit-learn's error type, nasforge's one line
            raise ValueError(str(exc)) from None
        if result.best is None:
            first = next((t.error for t in result.trials if t.error), "no trial completed")
            raise ValueError(f"no candidate network trained successfully ({first}); see {run / 'run'}")
        self.run_dir_ = run / "run"
        self.best_trial_ = result.best.number
        self.best_metrics_ = dict(result.best.metrics)
        self.model_ = result.load_model()
        self.model_.module.double()  # predictions in float64: the same for a row alone or in any batch
        return self

    def _frame(self, X: Any, reset: bool) -> pd.DataFrame:
        """X as a DataFrame of raw columns, checked the way scikit-learn checks inputs."""
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=reset, skip_check_array=True)
            if X.shape[0] < 1 or X.shape[1] < 1:
                raise ValueError(f"Found array with {X.shape[0]} sample(s) and {X.shape[1]} feature(s) while at "
                                 "least 1 is required")
            frame = X.copy()
            frame.columns = [str(c) if str(c) != TARGET else f"{TARGET}feature" for c in X.columns]
            return frame.reset_index(drop=True)
        array = validate_data(self, X, reset=reset, dtype=None, ensure_all_finite="allow-nan")
        if array.dtype.kind not in "biuf":  # numbers in an object array, or text
            try:
                array = array.astype(np.float64)
            except (TypeError, ValueError):
                array = check_array(array, dtype=object, ensure_all_finite="allow-nan")
        return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])

    def _encode_target(self, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _run_dir(self, data: str) -> Path:
        if self.out is None:
            return Path(tempfile.mkdtemp(prefix="nasforge-fit-"))
        digest = hashlib.sha256((data + json.dumps(self.get_params(), sort_keys=True, default=str)).encode())
        run = Path(self.out) / f"fit-{digest.hexdigest()[:12]}"
        run.mkdir(parents=True, exist_ok=True)
        return run

    # --- predict ---
    def _outputs(self, X: Any) -> Any:
        check_is_fitted(self, "model_")
        frame = self._frame(X, reset=False)
        return self.model_.preprocessor.transform(frame) if self.model_.preprocessor is not None else frame


class NASClassifier(ClassifierMixin, _NASEstimator):
    """A classifier whose architecture nasforge searches in ``fit`` (``classes_``, ``predict``,
    ``predict_proba``, ``score`` = accuracy)."""

    _kind = "classification"

    def _encode_target(self, y: np.ndarray) -> np.ndarray:
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"the target has 1 class ({self.classes_[0]!r}); a classifier needs at least 2")
        return codes

    def predict_proba(self, X: Any) -> np.ndarray:
        inputs = self._outputs(X)
        proba = self.model_.predict_proba(np.asarray(inputs, dtype=np.float64))
        order = [self.model_.classes.index(str(i)) for i in range(len(self.classes_))]  # text order -> code order
        return proba[:, order]

    def predict(self, X: Any) -> np.ndarray:
        best = self.predict_proba(X).argmax(axis=1)  # checks it is fitted before classes_ is read
        return self.classes_[best]


class NASRegressor(RegressorMixin, _NASEstimator):
    """A regressor whose architecture nasforge searches in ``fit`` (``predict``, ``score`` = R²)."""

    _kind = "regression"

    def _encode_target(self, y: np.ndarray) -> np.ndarray:
        try:
            y = y.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError("a regression target must be numbers") from None
        if not np.isfinite(y).all():
            raise ValueError("Input y contains NaN or infinity; a regression target must be finite")
        return y

    def predict(self, X: Any) -> np.ndarray:
        inputs = self._outputs(X)
        return self.model_.predict(np.asarray(inputs, dtype=np.float64))


__all__ = ["NASClassifier", "NASRegressor"]
