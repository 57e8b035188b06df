"""params: the number of trainable parameters, a baseline every proxy should beat.

Larger networks of a space usually train to a higher accuracy (on NAS-Bench-201 the count
alone ranks cells with Spearman rho ~0.7, Abdelfattah et al. 2021), so more is better here;
use ``--objectives accuracy,params`` to prefer small networks instead.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .base import PROXIES, Proxy

if TYPE_CHECKING:
    import torch


@PROXIES.register
class Params(Proxy):
    name = "params"
    data_free = True
    summary = "parameter count (more is better): the baseline"

    def score(self, model: torch.nn.Module, batch: torch.Tensor) -> float:
        return float(sum(p.numel() for p in model.parameters() if p.requires_grad))
