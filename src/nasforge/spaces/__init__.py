"""Genome families and their search spaces."""
from .base import Genome, SearchSpace, parse_genome
from .mlp import MLPGenome, MLPSpace
from .nb201 import NB201Genome, NB201Space
from .cells import CellsGenome, CellsSpace
from .net import NetGenome
from .net_space import NetSpace

GENOME_TYPES: dict[str, type[Genome]] = {g.family: g for g in (MLPGenome, NetGenome, NB201Genome, CellsGenome)}


def genome_from_dict(data: dict) -> Genome:
    """Rebuild any genome from its ``to_dict()`` form (the family key picks the class)."""
    from ..errors import InvalidGenome

    family = data.get("family") if isinstance(data, dict) else None
    if family not in GENOME_TYPES:
        raise InvalidGenome(f"unknown genome family {family!r}; known: {sorted(GENOME_TYPES)}")
    return parse_genome(GENOME_TYPES[family], data)


__all__ = ["Genome", "SearchSpace", "MLPGenome", "MLPSpace", "NB201Genome", "NB201Space", "NetGenome", "NetSpace", "CellsGenome", "CellsSpace", "GENOME_TYPES", "genome_from_dict", "parse_genome"]
