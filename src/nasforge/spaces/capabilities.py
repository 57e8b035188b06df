"""What a search space can do beyond sampling and mutating, declared by the space itself.

An algorithm that needs more than :class:`~nasforge.spaces.base.SearchSpace` asks for a
capability (``isinstance(space, Instructable)``), never for a space type, so a new family
becomes usable by it by implementing the protocol, without touching the algorithm
(DESIGN.md, "Capabilities, not types").
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .base import Genome, SearchSpace

Operator = Callable[[Any, np.random.Generator], Genome | None]
"""A genome edit: a new genome, or None when the edit does not apply."""


@runtime_checkable
class Instructable(Protocol):
    """A space LEMONADE's expert system can drive (:mod:`nasforge.strategies.expert`).

    It knows which instructions of the paper's Table 3 (codes ACL, RCL, ..., AWI) mean
    something for its genomes and applies them, and it describes itself to an LLM designer.
    Whether a new genome followed an instruction is read off the genomes alone, by their
    family's :attr:`~nasforge.spaces.base.Genome.instruction_checks`.
    """

    n_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input sample, as networks of this space are built for it."""

    def applicable(self, code: str) -> bool:
        """Whether the instruction means anything for this family (an mlp has no convolutions)."""

    def apply_instruction(self, genome: Any, code: str, rng: np.random.Generator) -> Genome | None:
        """A valid child made by one applicable instruction, or None when no such edit stays in the space."""

    def small_genome(self) -> Genome | None:
        """A small fixed genome in the paper's style (a simple CNN), for the first trial; None
        when the space's grids exclude its fixed choices (it may still break the bounds)."""

    def reply_grids(self) -> tuple[dict[str, tuple], dict[str, tuple[int, int]]]:
        """Per genome property name, the values this space allows; per list property, its
        length bounds: what narrows the schema an LLM's reply is decoded under."""

    def prompt_bounds(self) -> dict[str, Any]:
        """What the space allows beyond its schema (grids, counts, parameter budget), for the prompt."""


def valid_child(space: SearchSpace, op: Operator, genome: Genome, rng: np.random.Generator,
                tries: int = 20) -> Genome | None:  # fmt: skip
    """The first child of ``op`` that differs from ``genome`` and is valid in ``space``.

    Operators choose at random (which layer, which value) and may pick a no-op or an edit
    that leaves the space, so they get ``tries`` attempts; None as soon as ``op`` says it
    does not apply, or when every attempt fails.
    """
    for _ in range(tries):
        child = op(genome, rng)
        if child is None:
            return None
        if child != genome and space.is_valid(child):
            return child
    return None
