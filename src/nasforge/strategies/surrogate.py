"""An ensemble of small regressors that predicts a genome's objectives from its encoding.

BANANAS (White et al. 2021) showed that a handful of small MLPs trained on a path encoding
predict NAS-Bench-201 accuracy well enough to choose what to train, and that their spread
is a usable uncertainty. Each member here is scikit-learn's ``MLPRegressor`` trained on its
own bootstrap resample with its own seed; targets are standardised per objective so several
objectives train as one multi-output regression. scikit-learn is imported when an ensemble
is made, not with this module (the strategy registry must import cheaply), so the seconds
a fit takes do not include the import.

Everything is seeded from ``seed`` and the size of the training set, so refitting on the
same evaluations gives the same ensemble: that is what lets a predictor run resume exactly.
"""
from __future__ import annotations

import warnings

import numpy as np


class Ensemble:
    """``members`` regressors of two hidden layers of ``hidden`` units; ``predict`` gives every
    member's predictions, shape (members, rows, objectives), in the targets' own units."""

    def __init__(self, members: int, hidden: int, seed: int):
        from sklearn.neural_network import MLPRegressor

        self.members, self.hidden, self.seed = members, hidden, seed
        self.regressor = MLPRegressor
        self.models: list = []
        self.mean = self.scale = np.zeros(0)

    def fit(self, X: np.ndarray, Y: np.ndarray) -> Ensemble:
        """Refit every member on (X, Y); the same data gives the same ensemble."""
        from sklearn.exceptions import ConvergenceWarning

        Y = Y.reshape(len(Y), -1)
        self.mean, self.scale = Y.mean(axis=0), Y.std(axis=0)
        self.scale[~(self.scale > 0)] = 1.0
        Z = (Y - self.mean) / self.scale
        n = len(X)
        draws = np.random.default_rng([self.seed, n])
        self.models = []
        for k in range(self.members):
            rows = draws.integers(n, size=n)
            model = self.regressor(hidden_layer_sizes=(self.hidden, self.hidden), alpha=1e-3, learning_rate_init=0.01,
                                  max_iter=300, random_state=self.seed + k)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X[rows], Z[rows] if Z.shape[1] > 1 else Z[rows, 0])
            self.models.append(model)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = np.stack([np.asarray(m.predict(X)).reshape(len(X), -1) for m in self.models])
        return out * self.scale + self.mean
