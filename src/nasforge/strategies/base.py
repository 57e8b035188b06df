"""The ask/tell contract every search strategy follows.

A strategy proposes genomes and learns from their fitness; it never trains anything and
holds no state that cannot be rebuilt by replaying the same asks and tells under the same
seed. That is how a killed search resumes exactly (see study.py).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..errors import NasforgeError
from ..objectives import Goal
from ..registry import Registry

if TYPE_CHECKING:
    from ..spaces import Genome, SearchSpace


class StrategySettings(BaseModel):
    """A strategy's own settings (the ``[strategy]`` table); ``name`` picks the strategy.

    Each strategy subclasses this with ``name: Literal["its-name"]`` and its fields; the run
    configuration is the union of them, so a setting another strategy owns is an error.
    """

    model_config = ConfigDict(extra="forbid")
    name: str


@dataclass
class Proposal:
    genome: Genome
    parents: tuple[int, ...] = ()  # trial numbers of the parents
    operator: str = "random"  # how the genome was made
    info: dict[str, Any] = field(default_factory=dict)  # strategy-specific (stage, generation, ...)
    trial: int | None = None  # set by the study once stored


class Strategy(ABC):
    """Subclasses register with ``@STRATEGIES.register`` and name their ``Settings`` model."""

    name: str = "base"
    Settings: ClassVar[type[StrategySettings]]
    legacy_section: ClassVar[str | None] = None  # the table its settings had in configs before 0.2
    family: ClassVar[str | None] = None  # the one space family it searches, if it is bound to one
    uses_proxy: ClassVar[bool] = True  # its first candidates come from sample_initial (a --proxy applies)
    reads_speed: ClassVar[bool] = False  # reads latency, FPS or inference energy from what it is told
    reads_train_fit: ClassVar[bool] = False  # reads training accuracy (or R²) from what it is told, at every rung

    @classmethod
    def create(cls, space: SearchSpace, rng: np.random.Generator, budget: int, settings: StrategySettings,
               task: str | None = None) -> Strategy:
        """Build from validated settings: by default ``cls(space, rng, budget, settings)``."""
        return cls(space, rng, budget, settings)

    @classmethod
    def weight_inheritance(cls, settings: StrategySettings, budget: int) -> dict[str, Any] | None:
        """Options for the search space's weight-inheritance store, if this strategy wants
        candidates to start from inherited weights (TS-ENAS); None trains from scratch."""
        return None

    @classmethod
    def summary(cls, records: Sequence[Any], settings: StrategySettings) -> str | None:
        """Text to print after a search (bi-level's trade-off); None for nothing."""
        return None

    goal: Goal = Goal()  # what "better" means; make_strategy sets the run's (several objectives, limits)
    proxy: Callable[[Genome], float] | None = None
    """A zero-cost score of a genome, higher is better (the run's ``--proxy``; None: no proxy).
    make_strategy sets it; strategies use it through :meth:`sample_initial` and may use it more."""

    def __init__(self, space: SearchSpace, rng: np.random.Generator, budget: int,
                 settings: StrategySettings | None = None):
        self.check_space(space)
        self.space, self.rng, self.budget = space, rng, budget
        self.settings = settings if settings is not None else self.Settings()

    @property
    def initial_size(self) -> int:
        """How many candidates the strategy starts from (its first population): a search whose
        first ones all break the user's limits stops there."""
        return int(getattr(self, "population_size", 10))

    @classmethod
    def check_space(cls, space: SearchSpace) -> None:
        """Raise NasforgeError when this strategy cannot search ``space`` (checked before a run is written)."""

    proxy_pool: int = 100
    _proxy_picks: list[Genome] | None = None

    def sample_initial(self) -> Genome:
        """A genome for the strategy's first candidates. Without a proxy: a plain sample of the
        space (the same draws as ``space.sample``). With one: ``proxy_pool`` samples are drawn
        at once, scored, and handed out best first (ties and NaN scores, which rank last, in
        the order drawn); when they are used up, another pool is drawn."""
        if self.proxy is None:
            return self.space.sample(self.rng)
        if not self._proxy_picks:
            from ..proxies.base import rank_key

            pool = [self.space.sample(self.rng) for _ in range(self.proxy_pool)]
            unique = list({g.id: g for g in pool}.values())  # each genome once, in the order first drawn
            scores = [rank_key(self.proxy(g)) for g in unique]
            order = sorted(range(len(unique)), key=lambda i: (-scores[i], i))
            self._proxy_picks = [unique[i] for i in order]
        return self._proxy_picks.pop(0)

    @abstractmethod
    def ask(self) -> Proposal:
        """The next genome to evaluate."""

    def tell(self, proposal: Proposal, fitness: float | None, metrics: dict[str, Any] | None = None) -> None:
        """The result of an evaluation: its fitness (``None``: the trial failed) and its metrics,
        for strategies whose selection needs more than one number (bi-level, expert system)."""

    def replay(self, genome: Genome, record: Any) -> Proposal:
        """Re-issue a stored ask while a run resumes (``record`` is the stored TrialRecord).

        The default asks again and insists on the stored genome: that proves the state was
        rebuilt exactly. A strategy whose asks cannot be repeated (an LLM's reply) overrides
        this to adopt the stored proposal and update its state from it.
        """
        proposal = self.ask()
        if proposal.genome != genome:
            raise NasforgeError(
                f"cannot resume: the {self.name} strategy proposed another genome at ask {record.ask_index} "
                "(was the run made by another nasforge version?)"
            )
        return proposal

    def describe(self) -> str:
        return self.name


STRATEGIES: Registry[type[Strategy]] = Registry("strategy", "nasforge.strategies")
