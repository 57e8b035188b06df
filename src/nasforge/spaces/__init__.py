"""Genome families and their search spaces.

Each family is a module here that registers its space class with ``SPACES`` (see
``base.py``); the registry finds them by itself, and the names re-exported below are only
conveniences for Python users. Modules here import without torch: the networks genomes
build live in ``nasforge.nets``.
"""
from __future__ import annotations

from ..errors import InvalidGenome
from .base import SPACES, Genome, SearchSpace, SpaceSettings, parse_genome
from .cells import CellsGenome, CellsSpace
from .mlp import MLPGenome, MLPSpace
from .nb201 import NB201Genome, NB201Space
from .net import NetGenome
from .net_space import NetSpace


def genome_from_dict(data: dict) -> Genome:
    """Rebuild any genome from its ``to_dict()`` form (the family key picks the class)."""
    family = data.get("family") if isinstance(data, dict) else None
    if not isinstance(family, str) or family not in SPACES:
        raise InvalidGenome(f"unknown genome family {family!r}; known: {sorted(SPACES.names())}")
    return parse_genome(SPACES.get(family).genome_type, data)


def make_space(settings: SpaceSettings, task: object) -> SearchSpace:
    """The registered family's space for these settings, sized by ``task``."""
    return SPACES.get(settings.family).from_settings(settings, task)


__all__ = ["Genome", "SearchSpace", "SpaceSettings", "SPACES", "MLPGenome", "MLPSpace", "NB201Genome", "NB201Space",
           "NetGenome", "NetSpace", "CellsGenome", "CellsSpace", "genome_from_dict", "make_space", "parse_genome"]
