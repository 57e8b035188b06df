"""A Gaussian process over genome encodings: the predictor's surrogate for longer searches.

The ensemble of small MLPs (:mod:`.surrogate`) is what BANANAS uses, and it is confident
where it has no data: on NAS-Bench-201, about one seed in five spends the rest of its
budget in a basin the first candidates happened to find, because the members agree that
the far better cells elsewhere are poor (after 150 queries in such a seed, the table's
best cell was predicted 11,685th of 15,625, with a spread of 0.01 across members).
A Gaussian process says how far a genome is from everything it was fitted on: its
standard deviation grows there, so upper confidence bound acquisition (``--acquisition
ucb``) leaves an exhausted basin (``benchmarks/RESULTS.md``, section nb201-gp).

Kernel: a constant times an RBF on the encoding, plus white noise for evaluation noise;
its three hyperparameters are fitted by maximum marginal likelihood (scikit-learn's
``GaussianProcessRegressor``, targets normalised), one process per objective. Fitting them
costs up to half a second at 300 genomes, so beyond ``EVERY_FIT`` genomes they are fitted
only on the first ``EVERY_FIT + k * EVERY`` genomes (the largest such prefix) and reused, with the posterior still
conditioned on every genome: what a fit gives depends on the told genomes alone, never
on which sizes an earlier fit happened to see (an exact resume needs that). Features are
shifted to start at 0 on the training genomes and divided by their range there (binary
encodings stay as they are), so a width in log2 units does not outweigh an op one-hot.

:meth:`GaussianProcess.predict` returns ``members`` fixed quantiles of each candidate's
posterior, mean + sd * z with z the standard normal quantiles at (k + 1/2) / members rescaled to
unit spread: their mean is the posterior mean and their spread the posterior sd, so UCB
reads mean + beta * sd and independent Thompson sampling draws one quantile per
candidate. Nothing is random in a fit or a prediction: the same data give the same
scores, which an exact resume needs.
"""
from __future__ import annotations

import warnings
from statistics import NormalDist

import numpy as np

EVERY_FIT = 30  # up to this many genomes, the hyperparameters are fitted at every size
EVERY = 10  # beyond it, on the first EVERY_FIT + k * EVERY genomes


def quantile_offsets(members: int) -> np.ndarray:
    """``members`` standard normal quantiles at (k + 1/2) / members, scaled to unit spread
    (population sd); one member gives [0]."""
    z = np.array([NormalDist().inv_cdf((k + 0.5) / members) for k in range(members)])
    sd = z.std()
    return z / sd if sd > 0 else z


class GaussianProcess:
    """``fit(X, Y)`` then ``predict(X)`` of shape (members, rows, objectives), as :class:`.Ensemble`."""

    def __init__(self, members: int, seed: int):
        self.members, self.seed = members, seed
        self.processes: list = []
        self.low = self.span = np.zeros(0)
        self.kernels: dict[tuple[int, int], object] = {}  # (genomes, objective) -> fitted kernel

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        return (X - self.low) / self.span

    @staticmethod
    def _range(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        low, high = X.min(axis=0), X.max(axis=0)
        return low, np.where(high > low, high - low, 1.0)

    def fit(self, X: np.ndarray, Y: np.ndarray) -> GaussianProcess:
        Y = Y.reshape(len(Y), -1)
        self.low, self.span = self._range(X)
        Xs, n = self._scaled(X), len(X)
        tuned = n if n <= EVERY_FIT else n - (n - EVERY_FIT) % EVERY
        self.processes = []
        for k, column in enumerate(Y.T):
            if (tuned, k) not in self.kernels:
                from sklearn.exceptions import ConvergenceWarning

                low, span = self._range(X[:tuned])  # the prefix's own scaling: its kernel depends on it alone
                prefix = (X[:tuned] - low) / span
                with warnings.catch_warnings():  # a hyperparameter at its bound is a fit, not a failure
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    self.kernels[(tuned, k)] = self._regressor(None).fit(prefix, column[:tuned]).kernel_
            self.processes.append(self._regressor(self.kernels[(tuned, k)]).fit(Xs, column))
        return self

    def _regressor(self, kernel: object | None):
        """A regressor that fits the kernel's hyperparameters (``kernel`` None) or keeps ``kernel``'s."""
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        if kernel is not None:
            return GaussianProcessRegressor(kernel, normalize_y=True, optimizer=None)
        start = ConstantKernel(1.0, (1e-2, 1e2)) * RBF(3.0, (0.1, 100.0)) + WhiteKernel(0.1, (1e-5, 1.0))
        return GaussianProcessRegressor(start, normalize_y=True, random_state=self.seed)

    def predict(self, X: np.ndarray) -> np.ndarray:
        z = quantile_offsets(self.members)[:, None]
        out = np.empty((self.members, len(X), len(self.processes)))
        Xs = self._scaled(X)
        for k, gp in enumerate(self.processes):
            mean, sd = gp.predict(Xs, return_std=True)
            out[:, :, k] = mean[None] + z * sd[None]
        return out

