"""Acquisition: from an ensemble's predictions to one score per candidate, larger is better.

- ``its``, independent Thompson sampling (BANANAS' choice): each candidate takes the
  prediction of one ensemble member drawn at random for it, so candidates the members
  disagree on get their chance in proportion to that disagreement;
- ``ucb``: mean + beta * standard deviation over the members.

A prediction that is not a number (a member that diverged) scores as the worst of all, so
the search goes on without it; :func:`acquire` says how many there were.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

ACQUISITIONS = ("its", "ucb")
Acquisition = Literal[ACQUISITIONS]  # type: ignore[valid-type]


def acquire(predictions: np.ndarray, kind: str, beta: float, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """``predictions``: (members, candidates, objectives), every objective to maximise.
    Returns (candidates, objectives) scores with non-finite ones replaced by the worst, and
    how many candidates had a non-finite prediction."""
    members, n, _ = predictions.shape
    if kind == "its":
        scores = predictions[rng.integers(members, size=n), np.arange(n)]
    elif kind == "ucb":
        scores = predictions.mean(axis=0) + beta * predictions.std(axis=0)
    else:
        raise ValueError(f"unknown acquisition {kind!r}; choose from {', '.join(ACQUISITIONS)}")
    bad = ~np.isfinite(scores)
    if bad.any():
        finite = scores[~bad]
        worst = (finite.min() if finite.size else 0.0) - 1.0 - abs(finite).max(initial=0.0)
        scores = np.where(bad, worst, scores)
    return scores, int(bad.any(axis=1).sum())
