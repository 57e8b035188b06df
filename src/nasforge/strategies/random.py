"""Random search: every candidate drawn independently from the space (the baseline to beat)."""
from __future__ import annotations

from typing import Literal

from .base import STRATEGIES, Proposal, Strategy, StrategySettings


class RandomSettings(StrategySettings):
    name: Literal["random"] = "random"


@STRATEGIES.register
class RandomSearch(Strategy):
    name = "random"
    Settings = RandomSettings

    asked = 0

    def ask(self) -> Proposal:
        """A sample of the space; with a proxy, the first ``initial_size`` are its picks
        (NASWOT-style: the best of a pool of untrained samples), the rest plain samples."""
        self.asked += 1
        return Proposal(self.sample_initial() if self.asked <= self.initial_size else self.space.sample(self.rng))
