"""What every evaluator is: genome and seed in, measured metrics out (or TrialFailed).

Kinds register with ``EVALUATORS`` in their own module here: ``training`` trains and
measures real networks, ``table`` looks NAS-Bench-201 cells up. The study picks the kind
from the configuration (``SearchConfig.evaluator_kind``) and names none of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..registry import Registry

if TYPE_CHECKING:
    from pathlib import Path

    import torch

    from ..config import SearchConfig
    from ..data import Task
    from ..spaces import Genome, SearchSpace


@dataclass
class Evaluation:
    metrics: dict[str, Any]
    state_dict: dict[str, torch.Tensor] = field(repr=False)
    train_state: dict[str, Any] | None = field(default=None, repr=False)  # to continue training (multi-fidelity)


class WeightSource(Protocol):
    """Where a new network's starting weights may come from (TS-ENAS's weight inheritance)."""

    def initialise(self, model: torch.nn.Module, genome: Genome) -> bool:
        """Copy stored weights into ``model``; True if anything was inherited."""

    def update(self, model: torch.nn.Module, genome: Genome, metrics: dict[str, Any]) -> None:
        """Learn from a trained, measured network (e.g. keep the best weights per cell type)."""


class Evaluator(Protocol):
    """The evaluator contract the study and the executors rely on."""

    name: ClassVar[str]
    needs_task: ClassVar[bool]  # False: candidates are scored without the run's data (a table)
    weights: WeightSource | None  # where new networks' starting weights come from, if anywhere

    @classmethod
    def from_config(cls, config: SearchConfig, task: Task | None, space: SearchSpace, out: Path) -> Evaluator:
        """Build for a run (``task`` is None for kinds that need no data)."""

    def evaluate(self, genome: Genome, seed: int) -> Evaluation:
        """Train (or look up) and measure; raise TrialFailed for a candidate that cannot be evaluated.
        An evaluator that trains in epochs also takes ``until`` (stop after that epoch) and
        ``resume`` (a previous Evaluation's ``train_state`` to continue from): multi-fidelity."""

    def learn(self, genome: Genome, evaluation: Evaluation) -> None:
        """Learn from a finished evaluation in the study's process (weight inheritance)."""


EVALUATORS: Registry[type[Evaluator]] = Registry("evaluator", "nasforge.evaluators")
