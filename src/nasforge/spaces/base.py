"""What every genome family and search space shares.

A genome is an immutable pydantic model: its canonical JSON (sorted keys, no spaces) is the
identity of an architecture, its id a short hash of that JSON. Pydantic gives validation
with readable reasons and a JSON Schema for free (the schema is what an LLM designer writes).

Nothing here imports torch, and no genome module does at import time: a family's ``build``
imports its torch module when it is called, so configs, strategies, the expert system and
the report can handle genomes in processes that never build a network.
"""
from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import InvalidGenome, NasforgeError
from ..flags import flag
from ..registry import Registry
from .vocabulary import LEARNING_RULES

if TYPE_CHECKING:
    import torch

    from .diagram import Diagram


class Genome(BaseModel):
    """An architecture description: immutable, hashable, JSON round-trippable."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    family: ClassVar[str] = "base"
    instruction_checks: ClassVar[Mapping[str, Callable[[Any, Any], bool]]] = {}
    """Per LEMONADE instruction code: did ``new`` do what the code asks of ``old``? (the expert
    system's compliance check, on two genomes of this family; empty: no instruction applies)."""

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, **self.model_dump(mode="json")}

    def to_json(self) -> str:
        """Canonical JSON: equal architectures give equal strings."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def id(self) -> str:
        return hashlib.sha1(self.to_json().encode()).hexdigest()[:12]

    def build(self, input_shape: tuple[int, ...], n_classes: int) -> torch.nn.Module:
        raise NotImplementedError

    def summary(self) -> str:
        """One short line for tables."""
        raise NotImplementedError

    def diagram(self) -> Diagram | None:
        """How the report draws this genome: a shape of :mod:`nasforge.spaces.diagram`, as
        plain data; None (the default) gives the report's generic view of the genome's JSON."""
        return None


def parse_genome(cls: type[Genome], data: dict[str, Any] | str) -> Genome:
    """Build a genome of ``cls`` from a dict or JSON text; invalid input raises InvalidGenome
    (genomes come from users, stored runs and LLM replies: nothing else may escape)."""
    try:
        if isinstance(data, (str, bytes)):
            data = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidGenome(f"genome is not valid JSON: {str(exc)[:200] or type(exc).__name__}") from None
    if not isinstance(data, Mapping):
        raise InvalidGenome(f"a genome is a JSON object, not {type(data).__name__}")
    data = dict(data)
    family = data.pop("family", cls.family)
    if family != cls.family:
        raise InvalidGenome(f"genome family is {family!r}, expected {cls.family!r}")
    try:
        return cls.model_validate(data)
    except RecursionError:
        raise InvalidGenome("genome is nested too deeply") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "genome"
        raise InvalidGenome(f"{where}: {first['msg']}") from None


class SpaceSettings(BaseModel):
    """A family's own settings (the ``[space]`` table); ``family`` picks the family.

    Each family subclasses this with ``family: Literal["its-name"]`` and its fields (mixing in
    :class:`ParamBudget` and :class:`RuleChoice` where they apply), so the run configuration
    is the union of the families' settings and a bound another family owns is an error.
    """

    model_config = ConfigDict(extra="forbid")
    family: str


class ParamBudget(BaseModel):
    max_params: int | None = Field(default=None, ge=1, json_schema_extra=flag("--max-params"), description=(
        "parameter budget: larger candidates are never trained"))


class RuleChoice(BaseModel):
    learning_rules: list[str] = Field(default_factory=lambda: ["backprop"], json_schema_extra=flag("--learning-rules"),
                                      description="learning rules to search per layer: backprop,fa,usf,brsf,frsf "
                                                  "(one name fixes it; default backprop)")

    @field_validator("learning_rules")
    @classmethod
    def _known_rules(cls, rules: list[str]) -> list[str]:
        unknown = [r for r in rules if r not in LEARNING_RULES]
        if unknown or not rules:
            raise ValueError(f"unknown learning rules {unknown}; choose from {', '.join(LEARNING_RULES)}")
        return rules


class SearchSpace(ABC):
    """Samples, mutates and checks genomes of one family under user bounds.

    A family registers its space class with ``@SPACES.register`` and names its ``Settings``
    and how it is built from them and a task (:meth:`from_settings`).
    """

    name: ClassVar[str]  # the family, as users type it
    genome_type: ClassVar[type[Genome]]
    Settings: ClassVar[type[SpaceSettings]]
    max_tries: ClassVar[int] = 200

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Any, task: Any) -> SearchSpace:
        """The space a run's settings describe, sized by its task (None in table mode)."""

    def weight_store(self, task: Any, train: Any, path: Any, seed: int, **options: Any) -> Any:
        """A store of trained weights new candidates start from (weight inheritance)."""
        raise NasforgeError(f"the {self.name} space keeps no inherited weights (only the cells space does)")

    @abstractmethod
    def random_genome(self, rng: np.random.Generator) -> Genome:
        """A genome drawn from the space (may still break bounds; sample() checks)."""

    @abstractmethod
    def mutation_operators(self) -> dict[str, Any]:
        """name -> callable(genome, rng) -> genome or None when it does not apply."""

    @abstractmethod
    def check(self, genome: Genome) -> None:
        """Raise InvalidGenome with the reason if the genome is outside the space."""

    def parse(self, data: dict[str, Any] | str) -> Genome:
        genome = parse_genome(self.genome_type, data)
        self.check(genome)
        return genome

    def is_valid(self, genome: Genome) -> bool:
        try:
            self.check(genome)
        except InvalidGenome:
            return False
        return True

    def sample(self, rng: np.random.Generator) -> Genome:
        for _ in range(self.max_tries):
            genome = self.random_genome(rng)
            if self.is_valid(genome):
                return genome
        raise InvalidGenome("could not sample a valid genome: the space's bounds are too tight")

    def mutate(self, genome: Genome, rng: np.random.Generator) -> tuple[Genome, str]:
        """A valid child that differs from ``genome``, and the operator that made it."""
        ops = self.mutation_operators()
        names = sorted(ops)
        for _ in range(self.max_tries):
            name = names[int(rng.integers(len(names)))]
            child = ops[name](genome, rng)
            if child is not None and child != genome and self.is_valid(child):
                return child, name
        raise InvalidGenome(f"no mutation of {genome.summary()} stays inside the space")


SPACES: Registry[type[SearchSpace]] = Registry("search space", "nasforge.spaces")
