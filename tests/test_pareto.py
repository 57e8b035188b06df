"""Pareto ranking against hand-worked examples (all coordinates maximised)."""
import math

import numpy as np
import pytest

from nasforge.pareto import (
    constrained_dominates,
    contributions,
    crowding,
    dominates,
    hypervolume,
    knee,
    pareto_front,
    rank_keys,
    sort_fronts,
)


def test_domination():
    assert dominates((1, 1), (1, 0)) and not dominates((1, 0), (1, 0)) and not dominates((1, 0), (0, 1))


def test_constrained_domination_is_debs_rule():
    assert constrained_dominates((0, 0), 0.0, (9, 9), 0.1)  # feasible beats a better infeasible point
    assert constrained_dominates((0, 0), 0.1, (9, 9), 0.5)  # of two infeasible, the smaller violation
    assert not constrained_dominates((9, 9), 0.5, (0, 0), 0.1)
    assert not constrained_dominates((1, 0), 0.0, (0, 1), 0.0)  # feasible: Pareto decides


def test_fronts_by_hand():
    #   a(3,1) b(2,2) c(1,3) on the first front; d(2,1) beaten by a and b; e(1,1) beaten by d too
    points = [(3, 1), (2, 2), (1, 3), (2, 1), (1, 1)]
    assert sort_fronts(points) == [[0, 1, 2], [3], [4]]
    assert sort_fronts(points, [0, 0, 0.5, 0, 0]) == [[0, 1], [3], [4], [2]]  # c breaks a constraint: last


def test_crowding_by_hand():
    points = [(0.0, 4.0), (1.0, 3.0), (3.0, 1.0), (4.0, 0.0)]
    # interior b: (3-0)/4 + (4-1)/4 = 1.5; interior c: (4-1)/4 + (3-0)/4 = 1.5; ends infinite
    assert crowding(points, [0, 1, 2, 3]) == [math.inf, 1.5, 1.5, math.inf]
    points = [(0.0, 4.0), (1.0, 3.0), (3.5, 0.5), (4.0, 0.0)]
    # b: (3.5-0)/4 + (4-0.5)/4 = 1.75; c: (4-1)/4 + (3-0)/4 = 1.5
    assert crowding(points, [0, 1, 2, 3]) == [math.inf, 1.75, 1.5, math.inf]
    keys = rank_keys(points + [(0.5, 0.5)])
    assert keys[4][0] == -1 and max(range(4), key=lambda i: keys[i]) in (0, 3)


def test_exclusive_hypervolume_by_hand():
    # above (0, 0): (3,1) 3 + (2,2.5) 2*1.5 + (1,3) 1*0.5 = 6.5; without (1,3) 6, without (2,2.5)
    # 3 + 1*2 = 5, without (3,1) 2*2.5 + 1*0.5 = 5.5
    points = [(1.0, 3.0), (2.0, 2.5), (3.0, 1.0)]
    assert contributions(points, [0, 1, 2], (0.0, 0.0)) == pytest.approx([0.5, 1.5, 1.0])
    # two boxes overlapping in a unit cube (5 in all): each alone loses what only it covers
    assert contributions([(2, 1, 1), (1, 2, 2)], [0, 1], (0, 0, 0)) == pytest.approx([1.0, 3.0])


def test_rank_keys_by_hypervolume_weigh_the_ends_of_a_front_by_their_reach():
    # a (0.2, -10) and b (0.8, -12) on the front, c dominated by b. Reference a tenth of the range
    # below the worst: (0.2 - 0.06, -40 - 3) = (0.14, -43). a adds (-10 + 12) * (0.2 - 0.14) = 0.12,
    # b adds (0.8 - 0.2) * (-12 + 43) = 18.6; crowding gives both ends infinity
    points = [(0.2, -10.0), (0.8, -12.0), (0.7, -40.0)]
    keys = rank_keys(points, spread="hypervolume")
    assert [k[0] for k in keys] == [0, 0, -1]
    assert keys[0][1] == pytest.approx(0.12) and keys[1][1] == pytest.approx(18.6)
    assert rank_keys(points)[:2] == [(0, math.inf), (0, math.inf)]
    with pytest.raises(ValueError, match="unknown spread"):
        rank_keys(points, spread="hv")


def test_pareto_front_and_two_dimensional_hypervolume():
    pts = [(0.9, -3.0), (0.8, -2.0), (0.85, -3.5), (0.7, -1.0)]
    assert pareto_front(pts) == [0, 1, 3]
    # rectangles above reference (0, -4): 0.9*1 + 0.8*1 + 0.7*1 stacked in y
    assert hypervolume([(0.9, -3.0), (0.8, -2.0), (0.7, -1.0)], (0.0, -4.0)) == pytest.approx(0.9 + 0.8 + 0.7)


def test_three_dimensional_hypervolume_by_hand():
    # two boxes from the origin: 2x1x1 and 1x2x2 overlap in 1x1x1 -> 2 + 4 - 1
    assert hypervolume([(2, 1, 1), (1, 2, 2)], (0, 0, 0)) == pytest.approx(5.0)
    assert hypervolume([(1, 1, 1)], (0, 0, 0)) == pytest.approx(1.0)
    assert hypervolume([(1, 1, 1)], (2, 0, 0)) == 0.0


def test_hypervolume_agrees_with_monte_carlo():
    rng = np.random.default_rng(1)
    pts = rng.random((6, 3))
    samples = rng.random((200_000, 3))
    covered = np.zeros(len(samples), bool)
    for p in pts:
        covered |= np.all(samples <= p, axis=1)
    assert hypervolume([tuple(p) for p in pts], (0, 0, 0)) == pytest.approx(covered.mean(), abs=0.01)


def test_knee_is_nearest_the_ideal_point():
    # accuracy up, params down (negated): the middle point trades almost nothing for a much smaller model
    points = [(0.99, -100_000.0), (0.98, -2_000.0), (0.60, -1_000.0)]
    assert knee(points) == 1
    assert knee([]) is None and knee([(1.0, 1.0)]) == 0


def test_two_dimensional_front_sweep_agrees_with_the_pairwise_check():
    rng = np.random.default_rng(0)
    for _ in range(50):
        points = [tuple(map(float, p)) for p in rng.integers(0, 6, size=(int(rng.integers(1, 30)), 2))]
        pairwise = pareto_front([(x, y, 0.0) for x, y in points])  # three coordinates: the pairwise path
        assert pareto_front(points) == pairwise


def _fronts_by_definition(points, violations):
    """Peel fronts with the pairwise rule: a front is every point left that no point left beats."""
    left, fronts = list(range(len(points))), []
    while left:
        front = [i for i in left if not any(constrained_dominates(points[j], violations[j], points[i], violations[i])
                                            for j in left)]
        fronts.append(front)
        left = [i for i in left if i not in front]
    return fronts


def test_sorting_agrees_with_the_pairwise_rule_with_ties_violations_nan_and_blocks():
    from nasforge.pareto import _constrained_domination

    rng = np.random.default_rng(1)
    for _ in range(200):
        n, d = int(rng.integers(1, 40)), int(rng.integers(1, 4))
        points = rng.integers(0, 4, size=(n, d)).astype(float)  # small integers: many ties and equal points
        points[rng.random((n, d)) < 0.03] = np.nan  # compares false: neither dominates nor is dominated
        violations = np.where(rng.random(n) < 0.3, rng.choice([0.2, 0.5], size=n), 0.0)
        pts, vio = [tuple(p) for p in points], violations.tolist()
        assert sort_fronts(pts, vio) == _fronts_by_definition(pts, vio)
        assert sort_fronts(pts) == _fronts_by_definition(pts, [0.0] * n)
        # the matrix built a few rows at a time is the one built at once
        assert (_constrained_domination(points, violations, block=3) == _constrained_domination(points, violations)).all()
    assert sort_fronts([]) == []
