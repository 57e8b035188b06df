"""jacob_cov (Mellor et al. 2021, first version; as a NAS proxy, Abdelfattah et al. 2021).

The Jacobian of the summed outputs with respect to each input of a mini-batch: a network
whose Jacobians are little correlated across inputs can tell them apart. The score is
-sum(log(lambda + k) + 1 / (lambda + k)) over the eigenvalues lambda of their correlation
matrix (k = 1e-5), higher is better.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .base import PROXIES, Proxy

if TYPE_CHECKING:
    import torch

K = 1e-5


@PROXIES.register
class JacobCov(Proxy):
    name = "jacob_cov"
    summary = "how little the input Jacobians of a mini-batch correlate"

    def score(self, model: torch.nn.Module, batch: torch.Tensor) -> float:
        x = batch.clone().requires_grad_(True)
        out = model.train()(x)
        out.backward(out.new_ones(out.shape))
        jacobians = x.grad.flatten(1).numpy().astype(np.float64)
        with np.errstate(all="ignore"):
            corr = np.corrcoef(jacobians)
        if not np.isfinite(corr).all():
            return float("nan")
        eigenvalues = np.linalg.eigvalsh(corr)
        return float(-np.sum(np.log(eigenvalues + K) + 1.0 / (eigenvalues + K)))
