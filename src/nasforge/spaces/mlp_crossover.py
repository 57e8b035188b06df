"""Crossover of two MLP genomes, a space operation beside ``CellsSpace.crossover``.

Kept in its own module for now so that it can move onto ``MLPSpace`` as a ``crossover``
method without the strategies knowing; the bi-level GA is its only user.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .mlp import MLPGenome, MLPSpace


def crossover(space: MLPSpace, a: MLPGenome, b: MLPGenome, rng: np.random.Generator, tries: int = 10) -> MLPGenome | None:
    """One-point crossover of the layer lists: a's first i layers, then b's layers from j on.

    Dropout and output rule come from ``a``. None if no cut in ``tries`` gives a valid genome
    that differs from both parents (a copy of a parent would only repeat it).
    """
    for _ in range(tries):
        i = int(rng.integers(len(a.layers) + 1))
        j = int(rng.integers(len(b.layers) + 1))
        child = a.model_copy(update={"layers": a.layers[:i] + b.layers[j:]})
        if child != a and child != b and space.is_valid(child):
            return child
    return None
