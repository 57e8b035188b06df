"""synflow (Tanaka et al., NeurIPS 2020; as a NAS proxy, Abdelfattah et al. 2021): data-free.

The network's weights are replaced by their absolute values, an all-ones input goes through
it in double precision (eval mode: batch-norm uses its initial statistics, an identity), and
the score is the sum over parameters of |theta * dR/dtheta| where R is the sum of the
outputs: the "synaptic flow" the architecture lets through. Abdelfattah et al. measured a
Spearman rho of ~0.76 with final accuracy on NAS-Bench-201 CIFAR-10.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .base import PROXIES, Proxy

if TYPE_CHECKING:
    import torch


@PROXIES.register
class Synflow(Proxy):
    name = "synflow"
    data_free = True
    summary = "data-free: gradient flow through the absolute-valued network on an all-ones input"

    def score(self, model: torch.nn.Module, batch: torch.Tensor) -> float:
        import torch

        model = model.double().eval()
        with torch.no_grad():
            for p in model.parameters():
                p.abs_()
        x = torch.ones_like(batch[:1], dtype=torch.float64)
        model.zero_grad()
        model(x).sum().backward()
        with torch.no_grad():
            return float(sum((p * p.grad).abs().sum() for p in model.parameters() if p.grad is not None))

