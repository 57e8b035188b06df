"""Successive halving's arithmetic against hand-worked examples (issue #16)."""
from __future__ import annotations

import pytest

from nasforge.halving import Halving, Result, best_first, rungs


def r(trial, *point, violation=0.0):
    return Result(trial, tuple(point), violation)


def test_rungs_are_geometric_down_from_the_full_training():
    assert rungs(1, 27, 3) == [1, 3, 9, 27]
    assert rungs(1, 10, 3) == [1, 3, 10]
    assert rungs(2, 40, 3) == [4, 13, 40]
    assert rungs(1, 4, 2) == [1, 2, 4]
    assert rungs(5, 5, 3) == [5]
    with pytest.raises(ValueError, match="eta"):
        rungs(1, 9, 1)
    with pytest.raises(ValueError, match="min_epochs"):
        rungs(10, 9, 3)


def test_asha_decides_at_once_against_the_rung_so_far_after_its_cold_start():
    h = Halving("asha", [1, 3, 9], eta=3)
    assert [h.start(t) for t in range(6)] == [0] * 6
    got = [h.report(t, 0, r(t, acc)) for t, acc in enumerate([0.5, 0.4, 0.6, 0.55, 0.3, 0.58])]
    # n=1, 2: fewer than eta to judge, they wait; n=3: the best of the three goes on (0.6), the
    # others stop; then keep max(1, n // 3): n=4 keep 1 (0.55 second: stops, rounding up would
    # keep it); n=5 keep 1 (0.3 last); n=6 keep 2 (0.58 second)
    assert got == [[], [], [(2, "continue"), (0, "stop"), (1, "stop")], [(3, "stop")], [(4, "stop")],
                   [(5, "continue")]]
    assert h.report(2, 1, r(2, 0.7)) == []  # rung 1's cold start: waits
    assert h.report(5, 1, None) == []  # a failure decides nothing and does not count
    h.start(6)
    assert h.report(6, 0, r(6, 0.9)) == [(6, "continue")]  # n=7 keep 2: the best so far
    assert h.report(6, 1, r(6, 0.65)) == []
    h.start(7)
    h.report(7, 0, r(7, 0.95))
    assert h.report(7, 1, r(7, 0.75)) == [(7, "continue"), (2, "stop"), (6, "stop")]
    assert h.report(7, 2, r(7, 0.8)) == [(7, "complete")]


def test_asha_decides_what_waits_when_the_budget_is_spent_and_waits_again_when_it_is_raised():
    h = Halving("asha", [1, 3, 9], eta=3)
    for t in range(2):
        h.start(t)
    assert h.report(0, 0, r(0, 0.5)) == [] and h.report(1, 0, r(1, 0.6)) == []
    assert h.close_brackets() == [(1, "continue"), (0, "stop")]  # nothing more will come: the best goes on
    assert h.report(1, 1, r(1, 0.7)) == [(1, "continue")]  # alone at rung 1, decided at once
    assert h.report(1, 2, r(1, 0.8)) == [(1, "complete")]
    h.start(2)  # a raised budget: candidates come again
    assert h.report(2, 0, r(2, 0.9)) == [(2, "continue")]  # n=3 at rung 0: judged at once, the best
    assert h.report(2, 1, r(2, 0.75)) == []  # n=2 at rung 1: short of eta again, it waits
    assert h.close_brackets() == [(2, "continue")]


def test_sha_waits_for_the_bracket_then_keeps_a_third_or_half():
    h = Halving("sha", [1, 2, 4], eta=2)  # brackets of 2**2 = 4
    assert [h.start(t) for t in range(4)] == [0, 0, 0, 0]
    assert h.report(0, 0, r(0, 0.5)) == []
    assert h.report(1, 0, r(1, 0.7)) == []
    assert h.report(2, 0, r(2, 0.6)) == []
    assert h.report(3, 0, r(3, 0.4)) == [(1, "continue"), (2, "continue"), (0, "stop"), (3, "stop")]
    assert h.start(4) == 0 and h.bracket_of[4] is not h.bracket_of[0]  # the next bracket fills meanwhile
    assert h.report(1, 1, r(1, 0.8)) == []
    assert h.report(2, 1, r(2, 0.9)) == [(2, "continue"), (1, "stop")]
    assert h.report(2, 2, r(2, 0.95)) == [(2, "complete")]


def test_sha_failures_leave_the_bracket_and_the_budget_closes_the_last_one():
    h = Halving("sha", [1, 2, 4], eta=2)
    for t in range(4):
        h.start(t)
    h.report(0, 0, r(0, 0.5))
    h.report(1, 0, r(1, 0.7))
    h.report(2, 0, r(2, 0.6))
    assert h.report(3, 0, None) == [(1, "continue"), (2, "stop"), (0, "stop")]  # 3 left: keep 3 // 2 = 1
    h.start(4)
    h.start(5)
    assert h.report(4, 0, r(4, 0.2)) == [] and h.report(5, 0, r(5, 0.3)) == []  # bracket of 4 not full
    assert h.close_brackets() == [(5, "continue"), (4, "stop")]  # the budget is spent: 2 members, keep 1


def test_hyperband_brackets_start_later_with_fewer_candidates():
    h = Halving("hyperband", [1, 3, 9], eta=3)  # s_max = 2
    starts = [h.start(t) for t in range(9 + 6 + 3 + 1)]
    assert starts == [0] * 9 + [1] * 6 + [2] * 3 + [0]
    assert [(b.start, b.size) for b in h.brackets] == [(0, 9), (1, 6), (2, 3), (0, 9)]
    assert h.report(15, 2, r(15, 0.9)) == [(15, "complete")]  # a bracket starting at full training
    for t in range(9, 14):
        assert h.report(t, 1, r(t, t / 100)) == []
    decided = h.report(14, 1, r(14, 0.01))
    assert decided[0] == (13, "continue") and sum(d == "continue" for _, d in decided) == 2  # 6 // 3


def test_several_objectives_rank_by_front_then_crowding_within_the_limits():
    results = [r(0, 0.9, -100.0), r(1, 0.8, -10.0), r(2, 0.85, -50.0), r(3, 0.7, -200.0),
               r(4, 0.99, -1.0, violation=0.3)]
    ranked = [x.trial for x in best_first(results, "crowding")]
    assert set(ranked[:3]) == {0, 1, 2} and ranked[2] == 2 and ranked[3:] == [3, 4]
    h = Halving("asha", [1, 3], eta=2, promote="crowding")
    for x in results:
        h.start(x.trial)
    decided = [h.report(x.trial, 0, x) for x in results]
    # n=1: waits (eta 2); n=2: the cold start ends, both on the front: the boundary points tie on
    # crowding -> earlier wins; n=3 keep 1, the middle one is the most crowded; n=4 keep 2,
    # dominated; n=5 keep 2 but it breaks a limit
    assert decided == [[], [(0, "continue"), (1, "stop")], [(2, "stop")], [(3, "stop")], [(4, "stop")]]


def test_several_objectives_rank_by_front_then_exclusive_hypervolume_by_default():
    # reference (0.7 - 0.029, -200 - 19.9) over all five (the infeasible one too); the front's
    # exclusive hypervolumes: 0 (0.9-0.85)*(-100+219.9) = 5.995, 1 (0.8-0.671)*(-10+50) = 5.16,
    # 2 (0.85-0.8)*(-50+100) = 2.5; then the dominated 3, then 4, which breaks a limit
    results = [r(0, 0.9, -100.0), r(1, 0.8, -10.0), r(2, 0.85, -50.0), r(3, 0.7, -200.0),
               r(4, 0.99, -1.0, violation=0.3)]
    assert [x.trial for x in best_first(results)] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("promote, goes_on", [("hypervolume", 1), ("crowding", 0)])
def test_asha_cold_start_with_two_objectives_promotes_the_end_that_reaches_furthest(promote, goes_on):
    # (accuracy, -params): 0 is smallest but barely learns, 1 is nearly as small and far more
    # accurate, 2 is dominated by 1. Crowding gives both ends infinity and the tie to the
    # earlier (0); exclusive hypervolume 0.12 for 0 against 18.6 for 1 (test_pareto.py)
    h = Halving("asha", [1, 3], eta=3, promote=promote)
    for t in range(3):
        h.start(t)
    decided = [h.report(t, 0, r(t, acc, params)) for t, (acc, params) in enumerate([(0.2, -10.0), (0.8, -12.0),
                                                                                    (0.7, -40.0)])]
    assert decided[:2] == [[], []]
    assert dict(decided[2]) == {t: "continue" if t == goes_on else "stop" for t in range(3)}
