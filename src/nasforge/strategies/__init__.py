"""Search strategies, by the name users type."""
from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from ..errors import NasforgeError
from ..spaces import SearchSpace
from .base import Proposal, Strategy
from .bilevel import BilevelEvolution, chosen, most_accurate, trade_off_report
from .evolution import RegularizedEvolution
from .expert import ExpertStrategy
from .random import RandomSearch
from .two_stage import TwoStageEvolution

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (RandomSearch, RegularizedEvolution, ExpertStrategy, TwoStageEvolution, BilevelEvolution)
}


def strategy_class(name: str) -> type[Strategy]:
    if name not in STRATEGIES:
        raise NasforgeError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def make_strategy(name: str, space: SearchSpace, rng: np.random.Generator, budget: int, **options: Any) -> Strategy:
    cls = strategy_class(name)
    accepted = inspect.signature(cls.__init__).parameters
    return cls(space, rng, budget, **{k: v for k, v in options.items() if k in accepted and v is not None})


def check_strategy(name: str, space: SearchSpace) -> None:
    """The one-line error make_strategy would give for this pair, without building the strategy."""
    strategy_class(name).check_space(space)


__all__ = ["Proposal", "Strategy", "STRATEGIES", "make_strategy", "check_strategy", "RandomSearch",
           "RegularizedEvolution", "ExpertStrategy", "TwoStageEvolution", "BilevelEvolution", "chosen", "most_accurate", "trade_off_report"]
