"""The offline rule designer: applies the surviving instructions to a genome, deterministically.

Instructions are applied one after another, strongest first, each to the result of the
previous one, through the search space's own instruction operators, so every step stays
inside the search space (an edit that would leave it, e.g. a conv past ``max_conv`` or a
net over the parameter budget, is skipped and recorded with the reason).

What an instruction means for a family, and whether it means anything, is the space's
business: the designer drives any space with the
:class:`~nasforge.spaces.capabilities.Instructable` capability (``net``: every instruction
is a NetSpace operator; ``mlp``: see MLPSpace's ``_instruction_ops``) and names no family.
All randomness comes from the ``rng`` passed in (the strategy's), so a run replays exactly.

The helpers that describe a space to a designer (its genome's JSON Schema, narrowed to the
space's grids) live here too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import InvalidGenome, NasforgeError
from ...spaces import Genome, SearchSpace
from ...spaces.capabilities import Instructable


def instructable(space: SearchSpace) -> Instructable:
    """The space, as one the expert system can drive; a one-line error for any other."""
    if not isinstance(space, Instructable):
        raise NasforgeError(
            f"the expert strategy edits 'net' and 'mlp' genomes, not {space.genome_type.family!r} "
            "(use --space net or mlp)"
        )
    return space


@dataclass
class Design:
    """A designed genome and, per instruction, whether it was applied (and if not, why)."""

    genome: Genome
    applied: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def genome_schema(space: SearchSpace) -> dict[str, Any]:
    """The published JSON Schema of the space's genome family (family key included)."""
    cls = space.genome_type
    if "json_schema" in vars(cls):
        return cls.json_schema()  # type: ignore[attr-defined]
    schema = cls.model_json_schema()
    schema["properties"] = {"family": {"const": cls.family, "type": "string"}, **schema.get("properties", {})}
    schema["required"] = ["family", *schema.get("required", [])]
    return schema


def reply_schema(space: SearchSpace) -> dict[str, Any]:
    """The schema a reply is decoded under: the genome schema, strict and narrowed to the space.

    Strict: every field is required (as in OpenAI's strict mode). Defaults make fields optional
    in the published schema, and a grammar built from it lets a model stop after
    ``{"family": "net"}``. Narrowed: sizes, activations, rules and rates are enums of this
    space's grids and the layer list is as long as the space allows, so constrained decoding
    (llama.cpp turns the schema into a grammar; numeric minimum/maximum are not enforced
    there, enums are) cannot leave the grids and cannot ramble. What a schema cannot say
    (layer order, conv/dense counts, the parameter budget) is checked after the reply.
    """
    grids, lengths = instructable(space).reply_grids()

    def strict(node: Any, prop: str | None = None) -> Any:  # prop: the property this node describes
        if isinstance(node, dict):
            node = {k: ({name: strict(sub, name) for name, sub in v.items()}
                        if k == "properties" and isinstance(v, dict) else strict(v)) for k, v in node.items()}  # fmt: skip
            if isinstance(node.get("properties"), dict):
                node["required"] = list(node["properties"])
            if prop in grids:
                node = {"title": node.get("title", prop), "enum": list(grids[prop])}
            if prop in lengths:
                node["minItems"], node["maxItems"] = lengths[prop]
        elif isinstance(node, list):
            node = [strict(v) for v in node]
        return node

    return strict(genome_schema(space))


def describe_change(old: Genome, new: Genome) -> str:
    """A one-line "before -> after" for the trial history."""
    return "unchanged" if old == new else f"{old.summary()} -> {new.summary()}"


class RuleDesigner:
    """Turns instruction codes into genome edits for one search space."""

    def __init__(self, space: SearchSpace):
        self.space = space
        self.instructions = instructable(space)  # the same space, seen through its capability
        self.family = space.genome_type.family

    # --- one instruction ---
    def apply_one(self, genome: Genome, code: str, rng: np.random.Generator) -> Genome | None:
        """A valid genome made by one instruction, or None when it cannot apply here."""
        if not self.instructions.applicable(code):
            return None
        return self.instructions.apply_instruction(genome, code, rng)

    # --- a whole instruction set ---
    def design(self, genome: Genome, codes: list[str], rng: np.random.Generator, limit: int | None = None) -> Design:
        """Apply ``codes`` in order, at most ``limit`` of them; each one that cannot apply is
        skipped with its reason."""
        out = Design(genome)
        for code in codes:
            if limit is not None and len(out.applied) >= limit:
                break
            if not self.instructions.applicable(code):
                out.skipped.append({"code": code, "reason": f"not applicable to the {self.family} family"})
                continue
            child = self.apply_one(out.genome, code, rng)
            if child is None:
                out.skipped.append({"code": code, "reason": "no edit of this kind stays inside the search space"})
                continue
            out.genome = child
            out.applied.append(code)
        return out

    def explore(self, genome: Genome, rng: np.random.Generator) -> tuple[Genome, str] | None:
        """A random mutation, for an iteration where no instruction could change anything."""
        try:
            return self.space.mutate(genome, rng)
        except InvalidGenome:
            return None

    # --- the first genome ---
    def initial(self, rng: np.random.Generator, kind: str = "small") -> Genome:
        """``small``: the space's fixed simple net in the paper's style (grown by the rules); ``sample``: random."""
        if kind == "small":
            try:
                genome = self.instructions.small_genome()
            except (ValueError, InvalidGenome):  # a space whose grids exclude the fixed choices
                genome = None
            if genome is not None and self.space.is_valid(genome):
                return genome
        return self.space.sample(rng)
