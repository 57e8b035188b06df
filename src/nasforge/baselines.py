"""Classical baselines on a nasforge task's own split (EB-LNAST's comparison, SPEC §3).

Four methods, each tuned on the validation split only and fitted on the training split only
(not train+validation), so they see exactly the data a nasforge search sees:

- ``tuned_mlp``: scikit-learn's MLPClassifier tuned over architecture, activation,
  regularisation (L2 ``alpha``) and optimiser. The full grid (``MLP_GRID``, 180 points) is too
  slow to fit whole on 2 cores, so ``mlp_configs`` points (default 20) are drawn from it without
  replacement with the run's seed: random search over a grid.
- ``logistic_regression``: C on a grid.
- ``svm_rbf``: RBF-kernel SVC, C on a grid (gamma "scale").
- ``random_forest``: n_estimators x max_depth grid.

The selected configuration is the best by validation accuracy (ties: validation macro-F1,
then fewer parameters, then grid order), and its test accuracy and macro-F1 are reported.

"Parameters", so sizes can be set beside a network's (documented, not all alike):
- MLP: every weight and bias (sum of ``coefs_`` and ``intercepts_`` sizes). For two classes
  scikit-learn uses one logistic output unit where nasforge uses two.
- logistic regression: ``coef_`` + ``intercept_`` sizes.
- SVM: support vectors x features (the stored vectors) + dual coefficients + intercepts.
- random forest: the number of tree nodes over all trees (each node stores a split or a
  leaf's class distribution, so one node is not one weight).
"""
from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from .data import Task
from .errors import NasforgeError

MLP_GRID: dict[str, list[Any]] = {
    "hidden_layer_sizes": [(16,), (64,), (256,), (64, 64), (128, 128)],
    "activation": ["relu", "tanh", "logistic"],
    "alpha": [1e-4, 1e-3, 1e-2, 1e-1],
    "solver": ["adam", "lbfgs", "sgd"],
}
MLP_MAX_ITER = 200
LR_C = [0.01, 0.1, 1.0, 10.0, 100.0]
SVM_C = [0.1, 1.0, 10.0, 100.0]
RF_GRID: dict[str, list[Any]] = {"n_estimators": [50, 100, 200], "max_depth": [None, 4, 8, 16]}
METHODS = ("tuned_mlp", "logistic_regression", "svm_rbf", "random_forest")


def _grid(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def mlp_params(model: MLPClassifier) -> int:
    return int(sum(c.size for c in model.coefs_) + sum(b.size for b in model.intercepts_))


def lr_params(model: LogisticRegression) -> int:
    return int(model.coef_.size + model.intercept_.size)


def svm_params(model: SVC) -> int:
    return int(model.support_vectors_.size + model.dual_coef_.size + model.intercept_.size)


def rf_params(model: RandomForestClassifier) -> int:
    return int(sum(tree.tree_.node_count for tree in model.estimators_))


def _numpy(task: Task) -> tuple[np.ndarray, ...]:
    """The task's tensors as flat float arrays (images become pixel vectors)."""
    out = []
    for X, y in ((task.X_train, task.y_train), (task.X_val, task.y_val), (task.X_test, task.y_test)):
        out += [X.reshape(len(X), -1).numpy().astype(np.float64), y.numpy()]
    return tuple(out)


def _select(name: str, configs: Iterable[dict[str, Any]], make: Callable[[dict[str, Any]], Any],
            count: Callable[[Any], int], data: tuple[np.ndarray, ...], budget_s: float | None) -> dict[str, Any]:
    """Fit every config on train, keep the best on validation, report it on test.

    With ``budget_s`` the grid is walked in order until that many seconds are spent (at least
    one config is always fitted): the result then depends on the machine's speed.
    """
    Xtr, ytr, Xva, yva, Xte, yte = data
    start = time.perf_counter()
    best: tuple[tuple[float, float, int, int], Any, dict[str, Any]] | None = None
    tried = 0
    for i, config in enumerate(configs):
        if budget_s is not None and tried and time.perf_counter() - start > budget_s:
            break
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=ConvergenceWarning)
            warnings.simplefilter("ignore", category=RuntimeWarning)  # sgd overflow on a bad config
            model = make(config).fit(Xtr, ytr)
        tried += 1
        pred = model.predict(Xva)
        key = (-accuracy_score(yva, pred), -f1_score(yva, pred, average="macro", zero_division=0), count(model), i)
        if best is None or key < best[0]:
            best = (key, model, config)
    assert best is not None, f"{name}: empty grid"
    key, model, config = best
    pred = model.predict(Xte)
    return {
        "name": name,
        "test_acc": float(accuracy_score(yte, pred)),
        "test_f1": float(f1_score(yte, pred, average="macro", zero_division=0)),
        "val_acc": -key[0],
        "val_f1": -key[1],
        "params": int(key[2]),
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.items()},
        "configs_tried": tried,
        "wall_s": time.perf_counter() - start,
    }


def run_baselines(task: Task, seed: int, budget_s: float | None = None, mlp_configs: int = 20,
                  methods: Iterable[str] = METHODS, threads: int = 1) -> list[dict[str, Any]]:
    """Tune and test the baselines on ``task``'s split; one dict per method, in ``METHODS`` order.

    Each dict: name, test_acc, test_f1 (macro), val_acc, val_f1, params, config (the selected
    hyperparameters), configs_tried, wall_s (fitting the whole grid). ``budget_s`` caps each
    method's tuning time; ``seed`` seeds the MLP draws, the MLPs and the forests. ``threads``
    caps BLAS/OpenMP threads: on a busy 2-core machine, numpy's default two BLAS threads made a
    128x128 MLP fit 60 times slower (47 s instead of 0.7 s).
    """
    if task.kind != "classification":
        raise NasforgeError(f"{task.name} is a regression task; the baselines are classifiers (regression "
                            "baselines are not built yet)")
    with threadpool_limits(threads):
        return _run(task, seed, budget_s, mlp_configs, list(methods))


def _run(task: Task, seed: int, budget_s: float | None, mlp_configs: int, wanted: list[str]) -> list[dict[str, Any]]:
    data = _numpy(task)
    unknown = set(wanted) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown baselines {sorted(unknown)}; choose from {', '.join(METHODS)}")
    results = []
    for name in METHODS:
        if name not in wanted:
            continue
        if name == "tuned_mlp":
            grid = _grid(MLP_GRID)
            picks = np.random.default_rng(seed).choice(len(grid), size=min(mlp_configs, len(grid)), replace=False)
            configs = [grid[int(i)] for i in picks]
            result = _select(name, configs, lambda c: MLPClassifier(**c, max_iter=MLP_MAX_ITER, random_state=seed),
                             mlp_params, data, budget_s)
        elif name == "logistic_regression":
            result = _select(name, ({"C": c} for c in LR_C), lambda c: LogisticRegression(**c, max_iter=5000),
                             lr_params, data, budget_s)
        elif name == "svm_rbf":
            result = _select(name, ({"C": c} for c in SVM_C), lambda c: SVC(kernel="rbf", gamma="scale", **c),
                             svm_params, data, budget_s)
        else:
            result = _select(name, _grid(RF_GRID),
                             lambda c: RandomForestClassifier(**c, random_state=seed, n_jobs=1), rf_params, data, budget_s)
        results.append(result)
    return results


__all__ = ["run_baselines", "METHODS", "MLP_GRID", "LR_C", "SVM_C", "RF_GRID", "mlp_params", "lr_params",
           "svm_params", "rf_params"]
