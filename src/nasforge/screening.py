"""Cheap objectives first (LEMONADE, Elsken et al. 2019, section 4): in a Pareto search whose
objectives include one known before training (params, flops, size), a candidate is measured
on its built network before anyone trains it, and may be skipped.

A candidate that would widen the front on the cheap side (no front member is at least as
cheap on every cheap objective) is always trained. One that some front member beats on
every cheap objective can only join the front by beating it on an expensive one (accuracy,
latency), so it is trained with a probability that falls with how crowded its place in the
cheap objectives already is: ``p = clip(median density of the trained / its density, 0.1,
1)``, the density a Gaussian kernel estimate over the trained candidates' log10 cheap values
(Scott's bandwidth). Sparse places are always tried; the most crowded ones one time in ten.
LEMONADE draws many children and keeps them with probability inverse to this density; here
the strategy proposes one and the screen decides, so every strategy gets it unchanged.

A screened candidate is stored as skipped (never trained, not counted against the budget)
and told to the strategy as a failure. The decision's random draw comes from the run seed
and the ask index, so a resumed run decides the same. Switch it off with
``--no-screening`` (``screening = false``).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .objectives import Goal

FLOOR = 0.1  # the smallest chance a screened candidate is still trained


def cheap_coordinates(goal: Goal, metrics: dict) -> tuple[float, ...] | None:
    """log10 of each cheap objective's value (None when one is missing)."""
    out = []
    for m in goal.measures:
        if m.cheap:
            value = metrics.get(m.metric)
            if value is None or not math.isfinite(float(value)):
                return None
            out.append(math.log10(max(float(value), 1.0)))
    return tuple(out)


def density(points: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Gaussian kernel density of ``points`` (n x d) at each row of ``at`` (Scott's bandwidth)."""
    n, d = points.shape
    spread = points.std(axis=0) if n > 1 else np.ones(d)
    h = np.maximum(spread * n ** (-1.0 / (d + 4)), 0.05)
    z = (at[:, None, :] - points[None, :, :]) / h
    return np.exp(-0.5 * (z**2).sum(axis=2)).mean(axis=1)


def chance(candidate: Sequence[float], trained: Sequence[Sequence[float]], front: Sequence[Sequence[float]]) -> float:
    """The probability of training a candidate (cheap log coordinates, smaller is cheaper)."""
    if not trained or not any(all(f <= c for f, c in zip(member, candidate)) for member in front):
        return 1.0
    points = np.asarray(trained, dtype=float)
    at_trained = density(points, points)
    here = float(density(points, np.asarray([candidate], dtype=float))[0])
    if here <= 0:
        return 1.0
    return float(min(1.0, max(FLOOR, float(np.median(at_trained)) / here)))


def applies(goal: Goal) -> bool:
    """Whether a goal has both kinds of objective (cheap and measured after training)."""
    return goal.multi and any(m.cheap for m in goal.measures) and not all(m.cheap for m in goal.measures)


__all__ = ["FLOOR", "applies", "chance", "cheap_coordinates", "density"]
