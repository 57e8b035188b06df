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

    def ask(self) -> Proposal:
        return Proposal(self.space.sample(self.rng))
