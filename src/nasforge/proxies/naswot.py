"""naswot (Mellor et al., ICML 2021, "Neural Architecture Search without Training").

The ReLUs of the untrained network split a mini-batch into linear regions: each input gets a
binary code (which units are active). Inputs the network tells apart have different codes;
the score is log |det K| with K[i, j] = the number of units on which inputs i and j agree.
Networks that separate inputs well score higher. **Ours**: the identity is added to K (as if
one more unit told every input apart), so a network with fewer units than the batch has
rows, whose K is singular, still gets a finite score that ranks it. Needs ReLU activations: a network without
any cannot be scored (NaN, ranked worst), a space whose networks have none is refused.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import NasforgeError
from .base import PROXIES, Proxy

if TYPE_CHECKING:
    import torch


def _relus(model: torch.nn.Module) -> list[torch.nn.Module]:
    import torch

    return [m for m in model.modules() if isinstance(m, torch.nn.ReLU)]


@PROXIES.register
class Naswot(Proxy):
    name = "naswot"
    summary = "log-determinant of the ReLU activation-pattern kernel over a mini-batch"

    def check(self, models: list[torch.nn.Module], family: str) -> None:
        if not any(_relus(m) for m in models):
            raise NasforgeError(f"the naswot proxy reads ReLU activations and the {family} networks sampled have "
                                "none; use --proxy synflow, jacob_cov or params")

    def score(self, model: torch.nn.Module, batch: torch.Tensor) -> float:
        import torch

        relus = _relus(model)
        if not relus:
            raise ValueError("the network has no ReLU")
        codes: list[torch.Tensor] = []
        hooks = [m.register_forward_hook(lambda _m, _i, out: codes.append((out > 0).flatten(1).double()))
                 for m in relus]
        try:
            with torch.no_grad():
                model.train()(batch)
        finally:
            for h in hooks:
                h.remove()
        c = torch.cat(codes, dim=1)
        kernel = c @ c.T + (1 - c) @ (1 - c).T + torch.eye(len(c), dtype=c.dtype)
        sign, logdet = torch.linalg.slogdet(kernel)
        return float(logdet) if float(sign) > 0 else float("nan")
