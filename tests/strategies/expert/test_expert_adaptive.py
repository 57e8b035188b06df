"""The expert system's adaptive rule book (issue #18): priorities from the run's goal,
instructions that learn from their children, no growth over a limit, the overfitting
threshold from the run's own gaps. The paper's rule book is pinned by the golden record."""
from __future__ import annotations

import numpy as np
import pytest

from nasforge.objectives import Constraints, Goal, Objective
from nasforge.spaces import NetSpace
from nasforge.strategies.expert import ExpertSettings, ExpertStrategy, Thresholds
from nasforge.strategies.expert.adaptive import GROWTH, SHRINK, Credit, goal_thresholds, overfitting_threshold

SPACE = NetSpace((1, 8, 8), 10, max_params=60_000)


def test_priorities_follow_the_cm_weights_unless_the_user_set_them():
    cm = Goal(objective=Objective(accuracy=0.7, fps=0.3, fps_ref=5000.0))
    t = goal_thresholds(Thresholds(), cm)
    assert (t.PV_Acc, t.PF, t.PS, t.PT_E, t.TF) == (0.7, 0.3, 0.0, 0.0, 5000.0)
    assert goal_thresholds(Thresholds(PF=0.9), cm).PF == 0.9  # set by the user: kept
    assert goal_thresholds(Thresholds(), Goal()) == Thresholds()  # plain accuracy: the paper's defaults


@pytest.mark.parametrize(("objectives", "expected"), [
    (["accuracy", "latency"], {"PV_Acc": 1.0, "PF": 1.0, "PS": 0.0, "PV_E": 0.0}),
    (["accuracy", "params"], {"PV_Acc": 1.0, "PF": 0.0, "PS": 1.0, "PV_E": 0.0}),
    (["accuracy", "energy"], {"PV_Acc": 1.0, "PF": 0.0, "PS": 0.0, "PV_E": 1.0, "PT_E": 1.0}),
])
def test_with_several_objectives_each_named_one_gets_priority_one(objectives, expected):
    t = goal_thresholds(Thresholds(), Goal(objectives))
    assert {k: getattr(t, k) for k in expected} == expected


def test_credit_starts_neutral_and_falls_with_failures():
    credit = Credit()
    assert credit.factor("ACL") == 1.0
    credit.record(["ACL", "AMK"], better=False)
    credit.record(["ACL"], better=False)
    credit.record(["AMK"], better=True)
    assert credit.factor("ACL") == pytest.approx(0.5) and credit.factor("AMK") == pytest.approx(1.0)
    assert credit.to_dict() == {"ACL": [0, 2], "AMK": [1, 2]}


def test_the_overfitting_threshold_is_the_runs_median_gap_once_three_are_measured():
    assert overfitting_threshold([0.3, 0.4], 0.10) == 0.10
    assert overfitting_threshold([0.01, 0.05, 0.2], 0.10) == pytest.approx(0.05)
    assert overfitting_threshold([0.0, 0.0, 0.01], 0.10) == pytest.approx(0.02)


def slow_and_no_better(genome, space):
    """Growth never helps accuracy and costs speed: every conv adds time."""
    n = genome.n_params(space.input_shape, space.n_classes)
    return {"train_acc": 0.9, "val_acc": 0.88, "fps": 4000.0 / (1 + genome.count("conv")), "params": n,
            "train_energy_kwh": 0.0, "infer_energy_kwh": 0.0}


def drive(settings: ExpertSettings, goal: Goal, metrics_of, n: int, budget: int | None = None) -> list:
    s = ExpertStrategy(SPACE, np.random.default_rng(3), budget or n, settings=settings)
    s.goal = goal
    proposals = []
    for i in range(n):
        p = s.ask()
        p.trial = i
        m = metrics_of(p.genome, SPACE)
        s.tell(p, goal.fitness(m), m)
        proposals.append(p)
    return proposals


def test_growth_that_does_not_pay_is_retired_and_the_paper_rule_book_keeps_growing():
    goal = Goal(objective=Objective(accuracy=0.7, fps=0.3, fps_ref=14000.0))
    adaptive = drive(ExpertSettings(starts=1, max_instructions=15), goal, slow_and_no_better, 10)
    kept = [[code for code, _ in p.info.get("instructions", [])] for p in adaptive[1:]]
    assert set(GROWTH) <= set(kept[0])  # untried: the accuracy rules grow the network
    weights = [dict(p.info["instructions"])["ACL"] for p in adaptive[1:4]]
    assert weights == sorted(weights, reverse=True) and weights[-1] <= weights[0] / 2  # each failure costs weight
    assert set(GROWTH) <= set(adaptive[-1].info["retired"])  # four failures, no success: no longer issued
    assert not set(GROWTH) & set(kept[-1])
    assert adaptive[-1].info["credit"]["ACL"][0] == 0  # no child ACL made beat its parent
    assert adaptive[-1].info["thresholds"]["TF"] < 14000.0  # "too slow" is now relative to this run's networks
    paper = drive(ExpertSettings(rulebook="paper"), goal, slow_and_no_better, 10)
    assert all(set(GROWTH) & {c for c, _ in p.info["instructions"]} for p in paper[1:])  # grows every time


def test_a_base_over_a_limit_only_shrinks():
    goal = Goal(constraints=Constraints(max_latency_ms=0.001))

    def too_slow(genome, space):
        return {"train_acc": 0.7, "val_acc": 0.69, "latency_ms": 1.0, "fps": 100.0,
                "params": genome.n_params(space.input_shape, space.n_classes)}

    proposals = drive(ExpertSettings(starts=1), goal, too_slow, 3)
    for p in proposals[1:]:
        codes = [c for c, _ in p.info["instructions"]]
        assert p.info["over_limits"] and not set(codes) & set(GROWTH) and set(SHRINK) <= set(codes)


def test_the_adaptive_default_edits_the_best_and_the_paper_the_last():
    assert [ExpertSettings().n_starts(b) for b in (3, 12, 30, 1000)] == [1, 3, 7, 8]
    assert ExpertSettings(rulebook="paper").n_starts(1000) == 1 and ExpertSettings(starts=5).n_starts(3) == 5
    assert ExpertSettings().base == "best" and ExpertSettings(rulebook="paper").base == "last"
    assert ExpertSettings(rulebook="paper", start_from="best").base == "best"


def test_the_adaptive_default_starts_from_several_samples_and_applies_two_instructions_at_a_time():
    goal = Goal(objective=Objective(accuracy=0.7, fps=0.3))
    proposals = drive(ExpertSettings(), goal, slow_and_no_better, 11, budget=40)
    assert [p.operator for p in proposals[:8]] == ["initial:sample"] * 8  # a quarter of the budget, at most 8
    assert len({p.genome.id for p in proposals[:8]}) == 8
    edits = proposals[8:]
    assert all(p.operator.startswith("rules:") and len(p.info["applied"]) <= 2 for p in edits)
    best = max(range(8), key=lambda i: (goal.fitness(slow_and_no_better(proposals[i].genome, SPACE)),
                                        -slow_and_no_better(proposals[i].genome, SPACE)["params"], -i))
    assert edits[0].parents == (best,)


def test_when_edits_only_repeat_known_networks_it_escapes_instead_of_asking_them_again():
    goal = Goal(objective=Objective(accuracy=0.7, fps=0.3))
    proposals = drive(ExpertSettings(starts=1), goal, slow_and_no_better, 40)
    ids = [p.genome.id for p in proposals]
    assert len(set(ids)) == len(ids)  # every ask a network the run has not seen
    assert any(p.operator.startswith(("rules:escape:", "rules:restart")) for p in proposals)
    paper = drive(ExpertSettings(rulebook="paper"), goal, slow_and_no_better, 40)
    assert len({p.genome.id for p in paper}) < 40  # the published loop asks for known networks again
