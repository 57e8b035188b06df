"""Pareto ranking of objective vectors: domination, fronts, crowding, hypervolume, knee.

Every function takes points whose coordinates are all MAXIMISED (an objective to minimise,
such as parameters or latency, enters negated; :class:`nasforge.objectives.Goal` does that).
``violations`` (optional, one per point) is how far a point breaks the user's constraints,
0 when it meets them all: Deb's constrained domination (Deb 2000; NSGA-II, Deb et al. 2002)
then ranks every feasible point above every infeasible one, and infeasible points by their
violation alone. Torch-free: strategies, the report and ``show`` all use it.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Point = Sequence[float]


def dominates(a: Point, b: Point) -> bool:
    """``a`` is at least as good as ``b`` everywhere and better somewhere."""
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def constrained_dominates(a: Point, va: float, b: Point, vb: float) -> bool:
    """Deb's rule: feasible beats infeasible; of two infeasible, the smaller violation wins;
    of two feasible, Pareto domination decides."""
    if va > 0 or vb > 0:
        return va < vb
    return dominates(a, b)


def sort_fronts(points: Sequence[Point], violations: Sequence[float] | None = None) -> list[list[int]]:
    """Non-dominated sorting: the indices of the first front (no point dominates them), then
    of the second (dominated only by the first), and so on; each front in input order. The
    domination matrix is built with numpy, a block of rows at a time (a search ranks its
    asha rung or population at every result: hundreds of points, thousands in ``show``)."""
    n = len(points)
    if n == 0:
        return []
    beats = _constrained_domination(np.asarray(points, dtype=float).reshape(n, -1),
                                    np.zeros(n) if violations is None else np.asarray(violations, dtype=float))
    beaten_by = beats.sum(axis=0)
    placed = np.zeros(n, dtype=bool)
    fronts = []
    current = np.flatnonzero(beaten_by == 0)
    while current.size:
        fronts.append(current.tolist())
        placed[current] = True
        beaten_by -= beats[current].sum(axis=0)
        current = np.flatnonzero((beaten_by == 0) & ~placed)
    return fronts


def _constrained_domination(points: np.ndarray, violations: np.ndarray, block: int = 1024) -> np.ndarray:
    """``out[i, j]``: point i dominates point j under :func:`constrained_dominates` (a NaN
    coordinate compares false, as there: such a point neither dominates nor is dominated)."""
    n = len(points)
    out = np.empty((n, n), dtype=bool)
    infeasible = violations > 0
    for start in range(0, n, block):
        rows = slice(start, start + block)
        at_least = np.ones((len(points[rows]), n), dtype=bool)
        better = np.zeros_like(at_least)
        for k in range(points.shape[1]):  # one objective at a time: a few, against n x n pairs
            mine, theirs = points[rows, k, None], points[None, :, k]
            at_least &= mine >= theirs
            better |= mine > theirs
        out[rows] = at_least & better
        if infeasible.any():
            either = infeasible[rows, None] | infeasible[None, :]
            out[rows] = np.where(either, violations[rows, None] < violations[None, :], out[rows])
    return out


def crowding(points: Sequence[Point], front: Sequence[int]) -> list[float]:
    """NSGA-II's crowding distance of each member of ``front`` (aligned with it): the sum over
    objectives of the normalised gap between its two neighbours; the extremes of each objective
    get infinity, so the ends of a front are always kept. Larger means a lonelier point."""
    distance = [0.0] * len(front)
    if len(front) <= 2:
        return [math.inf] * len(front)
    for k in range(len(points[front[0]])):
        order = sorted(range(len(front)), key=lambda i: points[front[i]][k])
        low, high = points[front[order[0]]][k], points[front[order[-1]]][k]
        distance[order[0]] = distance[order[-1]] = math.inf
        if high == low:
            continue
        for pos in range(1, len(order) - 1):
            gap = points[front[order[pos + 1]]][k] - points[front[order[pos - 1]]][k]
            distance[order[pos]] += gap / (high - low)
    return distance


def contributions(points: Sequence[Point], front: Sequence[int], reference: Point) -> list[float]:
    """Each member's exclusive hypervolume in ``front`` (aligned with it): what the front's
    hypervolume above ``reference`` loses without it (SMS-EMOA's selection, Beume et al. 2007)."""
    members = [points[i] for i in front]
    whole = hypervolume(members, reference)
    return [whole - hypervolume(members[:i] + members[i + 1:], reference) for i in range(len(members))]


def rank_keys(points: Sequence[Point], violations: Sequence[float] | None = None,
              spread: str = "crowding") -> list[tuple[int, float]]:
    """One key per point, larger is better: (minus its front's index, then within the front
    its crowding distance (``spread="crowding"``, NSGA-II's crowded-comparison order) or its
    exclusive hypervolume (``"hypervolume"``) above a reference a tenth of each coordinate's
    range below the worst of all ``points``, so that an end of the front counts by how far it
    reaches rather than always first)."""
    if spread not in ("crowding", "hypervolume"):
        raise ValueError(f"unknown spread {spread!r}; choose crowding or hypervolume")
    keys: list[tuple[int, float]] = [(0, 0.0)] * len(points)
    fronts = sort_fronts(points, violations)
    if spread == "hypervolume" and points:
        columns = list(zip(*points))
        reference = tuple(min(c) - (0.1 * (max(c) - min(c)) or 1.0) for c in columns)
    for depth, front in enumerate(fronts):
        spreads = (contributions(points, front, reference) if spread == "hypervolume"
                   else crowding(points, front))
        for i, value in zip(front, spreads):
            keys[i] = (-depth, value)
    return keys


def pareto_front(points: Sequence[Point]) -> list[int]:
    """Indices of the points no other point dominates, in input order; equal points do not
    dominate each other. Two coordinates take one sorted sweep (reports draw fronts of
    thousands of trials), more take the pairwise check."""
    if points and all(len(p) == 2 for p in points):
        return _front_2d(points)
    return sort_fronts(points)[0] if points else []


def _front_2d(points: Sequence[Point]) -> list[int]:
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], -points[i][1]))
    front, best_y, start = [], -math.inf, 0
    while start < len(order):  # one group of equal x at a time, x falling
        end = start
        while end < len(order) and points[order[end]][0] == points[order[start]][0]:
            end += 1
        top = points[order[start]][1]  # the group's highest y
        front += [i for i in order[start:end] if points[i][1] == top and top > best_y]
        best_y = max(best_y, top)
        start = end
    return sorted(front)


def hypervolume(points: Sequence[Point], reference: Point) -> float:
    """The volume dominated by ``points`` and dominating ``reference`` (exact; slices one
    objective at a time, fine for the fronts of a search: tens of points, a few objectives)."""
    pts = [tuple(p) for p in points if all(x > r for x, r in zip(p, reference))]
    if not pts:
        return 0.0
    if len(reference) == 1:
        return max(p[0] for p in pts) - reference[0]
    if len(reference) == 2:
        return _hypervolume_2d(pts, (reference[0], reference[1]))
    pts = [pts[i] for i in pareto_front(pts)]
    levels = sorted({p[-1] for p in pts}, reverse=True)
    volume = 0.0
    for upper, lower in zip(levels, [*levels[1:], reference[-1]]):  # slabs of the last objective
        above = [p[:-1] for p in pts if p[-1] >= upper]
        volume += hypervolume(above, reference[:-1]) * (upper - lower)
    return volume


def _hypervolume_2d(points: Sequence[tuple[float, ...]], reference: tuple[float, float]) -> float:
    area, best_y = 0.0, reference[1]
    for x, y in sorted(set(points), reverse=True):
        if y > best_y:
            area += (x - reference[0]) * (y - best_y)
            best_y = y
    return area


def knee(points: Sequence[Point]) -> int | None:
    """Index of the front's knee: each objective scaled to [0, 1] over the front (1 the best),
    the point nearest the ideal point where every objective is at its best. The default pick
    when one model must be chosen from a front without weights; None for no points."""
    if not points:
        return None
    front = pareto_front(points)
    dims = len(points[front[0]])
    low = [min(points[i][k] for i in front) for k in range(dims)]
    high = [max(points[i][k] for i in front) for k in range(dims)]

    def distance(i: int) -> float:
        return math.fsum((1 - ((points[i][k] - low[k]) / (high[k] - low[k]) if high[k] > low[k] else 1)) ** 2
                         for k in range(dims))

    return min(front, key=lambda i: (distance(i), i))


__all__ = ["constrained_dominates", "crowding", "dominates", "hypervolume", "knee", "pareto_front", "rank_keys",
           "sort_fronts"]
