"""The adaptive rule book: the expert system serving the run's own goal (issue #18).

The paper's rule book (``--rulebook paper``) takes its priorities and thresholds from
Table 2 as constants, so with the defaults it grows the network whenever accuracy is below
99 %, whatever the user weighted: on digits-images with CM weights accuracy 0.7 / FPS 0.3
it lost to random search. The adaptive rule book (the default) changes four things, each
small and each visible in the trial's ``info``:

1. **Priorities from the goal.** A priority left at the paper's default follows what the run
   optimises: the CM's weights (accuracy -> PV_Acc, FPS -> PF, energy -> PT_E and PV_E,
   size -> PS), or with several objectives 1 for each one named (accuracy; latency or fps;
   energy; params, flops or size) and 0 for the rest. Until the run has measured three
   networks, TF and TS follow the CM's own references (``fps_ref``, ``params_ref``).
2. **Instructions learn from the run.** Every applied instruction is credited with whether
   the child it helped make beat its parent (single objective: a higher fitness; several: a
   child the parent does not dominate). An instruction's weight is multiplied by
   ``2 (successes + 1) / (applications + 2)``: 1 before it is tried, below 1 once it has
   failed more often than not, so growth that costs more FPS than it earns in accuracy
   loses to the instruction that undoes it (Algorithm 2 then zeroes the loser). At 1/3 or
   below (four failures without a success) it is no longer issued at all; when nothing is
   left to apply, the designer explores with a random mutation, as it always has.
3. **Limits forbid growth.** A base network over one of the run's limits (``--max-params``,
   ``--max-latency-ms``, ...) gets no growth instruction at all and every shrinking one at
   the top priority.
4. **Thresholds from the task.** Once three networks have been measured, overfitting is a
   train-validation gap above this run's median gap (at least 0.02) rather than a fixed
   0.10, and "too slow", "too large" and "too costly" (TF, TS, TT_E, TV_E, when left at the
   paper's defaults) mean below the run's median FPS or above its median parameters or
   energy, so the speed and size rules keep pressing where the CM still rewards speed; and
   the base network is the best so far (``start_from="best"``), not the last.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from ...data.targets import score_key
from ...objectives import Goal
from .rules import Thresholds

GROWTH = ("ACL", "AMK", "ADL", "ASC", "AMN")  # instructions that make a network larger or slower
SHRINK = ("RCL", "RK", "RN")
MIN_GAP = 0.02  # the adaptive overfitting threshold never goes below this
GAPS_NEEDED = 3  # measured networks before the run's own median gap replaces OT
RETIRED = 1 / 3  # an instruction whose factor falls this low is no longer issued

# Several objectives: which threshold priority each objective name raises to 1.
OBJECTIVE_PRIORITY = {"accuracy": ("PV_Acc",), "r2": ("PV_Acc",), "rmse": ("PV_Acc",), "mae": ("PV_Acc",),
                      "latency": ("PF",), "fps": ("PF",), "energy": ("PT_E", "PV_E"),
                      "params": ("PS",), "flops": ("PS",), "size": ("PS",)}


def goal_thresholds(thresholds: Thresholds, goal: Goal) -> Thresholds:
    """``thresholds`` with every priority and reference left at the paper's default taken from
    the goal. (Equal to the default, not "unset": the stored config holds every value, and a
    resumed run must derive the same priorities.)"""
    paper = Thresholds()
    given = {name for name in type(thresholds).model_fields if getattr(thresholds, name) != getattr(paper, name)}
    derived: dict[str, float] = {}
    if goal.multi:
        named = {p for name in goal.names for p in OBJECTIVE_PRIORITY.get(name, ())}
        derived = {p: float(p in named) for p in ("PV_Acc", "PF", "PT_E", "PV_E", "PS")}
    elif goal.objective.combined:
        o = goal.objective
        derived = {"PV_Acc": o.accuracy, "PF": o.fps, "PT_E": o.energy, "PV_E": o.energy, "PS": o.size,
                   "TF": o.fps_ref, "TS": o.params_ref}
    return thresholds.model_copy(update={k: v for k, v in derived.items() if k not in given})


@dataclass
class Credit:
    """Per instruction: how often it was applied and how often its child beat the parent."""

    applied: dict[str, int] = field(default_factory=dict)
    improved: dict[str, int] = field(default_factory=dict)

    def record(self, codes: Iterable[str], better: bool) -> None:
        for code in codes:
            self.applied[code] = self.applied.get(code, 0) + 1
            self.improved[code] = self.improved.get(code, 0) + int(better)

    def factor(self, code: str) -> float:
        return 2.0 * (self.improved.get(code, 0) + 1) / (self.applied.get(code, 0) + 2)

    def reweigh(self, proposed: list[tuple[str, float]]) -> list[tuple[str, float]]:
        """Each weight times its instruction's factor; an instruction at or below ``RETIRED``
        (four failures and no success, or worse) is left out."""
        return [(code, weight * self.factor(code)) for code, weight in proposed if self.factor(code) > RETIRED]

    def retired(self) -> list[str]:
        return sorted(code for code in self.applied if self.factor(code) <= RETIRED)

    def to_dict(self) -> dict[str, list[int]]:
        return {code: [self.improved.get(code, 0), n] for code, n in sorted(self.applied.items())}


def over_limits(proposed: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """A base over the run's limits: no growth, every shrinking instruction at the top priority."""
    top = max([w for _, w in proposed] + [1.0])
    kept = [(c, w) for c, w in proposed if c not in GROWTH and c not in SHRINK]
    return [(c, 2.0 * top) for c in SHRINK] + kept


def overfitting_threshold(gaps: list[float], default: float) -> float:
    """The run's median train-validation gap (at least MIN_GAP), once enough are measured."""
    if len(gaps) < GAPS_NEEDED:
        return default
    return max(MIN_GAP, statistics.median(gaps))


# threshold -> the metric whose run median replaces it (when left at the paper's default)
RUN_MEDIANS = {"TF": "fps", "TS": "params", "TT_E": "train_energy_kwh", "TV_E": "infer_energy_kwh"}


def score_gap(metrics: dict) -> float | None:
    """A measured network's train - validation score (accuracy, or R²), None if not known."""
    train, val = metrics.get(score_key(metrics, "train")), metrics.get(score_key(metrics, "val"))
    if isinstance(train, (int, float)) and isinstance(val, (int, float)) and math.isfinite(train - val):
        return float(train - val)
    return None


def run_thresholds(thresholds: Thresholds, measured: list[dict]) -> Thresholds:
    """Once GAPS_NEEDED networks are measured: OT from the run's train-validation gaps, and each
    cost threshold left at the paper's default becomes the run's median of its metric, so "too
    slow" or "too large" means slower or larger than what this run typically trains."""
    if len(measured) < GAPS_NEEDED:
        return thresholds
    paper = Thresholds()
    gaps = [g for g in map(score_gap, measured) if g is not None]
    update: dict[str, float] = {"OT": overfitting_threshold(gaps, thresholds.OT)}
    for name, metric in RUN_MEDIANS.items():
        values = [float(m[metric]) for m in measured if isinstance(m.get(metric), (int, float))]
        values = [v for v in values if v == v and abs(v) != float("inf")]
        if getattr(thresholds, name) == getattr(paper, name) and len(values) >= GAPS_NEEDED:
            update[name] = statistics.median(values)
    return thresholds.model_copy(update=update)
