"""Random search: every candidate drawn independently from the space (the baseline to beat)."""
from __future__ import annotations

from .base import Proposal, Strategy


class RandomSearch(Strategy):
    name = "random"

    def ask(self) -> Proposal:
        return Proposal(self.space.sample(self.rng))
