"""Search strategies, by the name users type.

Each strategy is a module here that registers its class with ``STRATEGIES`` (see
``base.py``); nothing in this file names one. ``make_strategy`` builds a strategy from its
validated settings.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import STRATEGIES, Proposal, Strategy, StrategySettings

if TYPE_CHECKING:
    from ..objectives import Goal
    from ..spaces import Genome, SearchSpace


def strategy_class(name: str) -> type[Strategy]:
    return STRATEGIES.get(name)


def make_strategy(name: str, space: SearchSpace, rng: np.random.Generator, budget: int,
                  settings: StrategySettings | dict[str, Any] | None = None, task: str | None = None,
                  goal: Goal | None = None, proxy: Callable[[Genome], float] | None = None, proxy_pool: int = 100,
                  **options: Any) -> Strategy:
    """Build a registered strategy. ``settings`` (or keyword ``options``) are validated by the
    strategy's own settings model: a setting it does not have is an error, never dropped.
    ``goal``: several objectives and limits to select under (default: one fitness);
    ``proxy``: a zero-cost score that picks the first candidates, each the best of
    ``proxy_pool`` samples (:meth:`Strategy.sample_initial`)."""
    cls = strategy_class(name)
    if not isinstance(settings, StrategySettings):
        from ..config import validated

        settings = validated(cls.Settings, {**(settings or {}), **options, "name": name}, f"strategy.{name}")
    strategy = cls.create(space, rng, budget, settings, task)
    if goal is not None:
        strategy.goal = goal
    strategy.proxy, strategy.proxy_pool = proxy, proxy_pool
    return strategy


def check_strategy(name: str, space: SearchSpace) -> None:
    """The one-line error make_strategy would give for this pair, without building the strategy."""
    strategy_class(name).check_space(space)


__all__ = ["Proposal", "Strategy", "StrategySettings", "STRATEGIES", "make_strategy", "check_strategy",
           "strategy_class"]
