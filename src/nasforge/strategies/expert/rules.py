"""LEMONADE's expert system (NNGES): metrics and user thresholds in, weighted instructions out.

The paper states one rule explicitly (R1); Fig. 2, which holds the rest, is an image, so
R2..R7 are our completion (SPEC §4), marked "ours". Every rule compares the last trial's
metrics with the user's thresholds (Table 2) and, when it fires, gives each of its
instructions a weight. An instruction emitted by several rules keeps the largest weight
(the strongest reason for it), not the sum, so that how many rules happen to fire does not
decide a conflict. Instructions with weight 0 are still listed (the record shows that a rule
fired but its priority was 0); Algorithm 2 (:mod:`.conflicts`) drops them.

Weights: R1, R2, R6, R7 carry the user's priority unchanged, as the paper's R1 does.
The two diagnoses, over- and underfitting (R3, R4), are more specific than "accuracy is
below target", so they carry the accuracy priority ``PA = max(PT_Acc, PV_Acc)`` times
``1 + severity`` (severity in [0, 1]): an overfitting net then has RDL outrank R2's ADL.
Ties are broken by the order of Table 3 (see :data:`INSTRUCTIONS`).

| rule | condition (metrics of the last trial) | instructions | weight |
|---|---|---|---|
| R1 (paper) | TAcc < TT_Acc | ACL, AMK, ADL, ASC | PT_Acc |
| R2 (ours) | VAcc < TV_Acc | ACL, AMK, ADL, ASC | PV_Acc |
| R3 overfitting (ours) | TAcc - VAcc > OT | AD, AR, RDL, RN | PA * (1 + TAcc - VAcc) |
| R4 underfitting (ours) | TAcc < chance + UT, or (TAcc < TT_Acc and VAcc < TV_Acc and abs(TAcc - VAcc) <= UT) | AMN, AMK, ACL, RD, RR | PA * (1 + TT_Acc - TAcc) |
| R5 no learning (ours) | TAcc < chance + UT | AWI | PA |
| R6 speed (ours) | FPS < TF | RCL, RK, RN, RSC | PF |
| R7 energy (ours) | train energy > TT_E / validation-inference energy > TV_E | RCL, RK, RN | PT_E / PV_E |
| R8 size (ours) | params > TS, only with a size priority PS > 0 | RCL, RK, RN | PS |

chance = 1 / number of classes (0 when unknown). A metric that is missing or not finite
fires no rule (an infinite FPS is never "too slow").
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ...data.targets import score_key

# Table 3, in the paper's order (the tie-break of Algorithm 2): code -> (meaning, conflicting code).
INSTRUCTIONS: dict[str, tuple[str, str | None]] = {
    "ACL": ("add a convolutional layer", "RCL"),
    "ASC": ("add a skip connection", "RSC"),
    "ADL": ("add a dense layer", "RDL"),
    "RCL": ("remove a convolutional layer", "ACL"),
    "RSC": ("remove a skip connection", "ASC"),
    "RDL": ("remove a dense layer", "ADL"),
    "AD": ("add dropout", "RD"),
    "AMK": ("add more kernels (conv channels)", "RK"),
    "AWI": ("change the weight initialiser", None),
    "AR": ("add regularisation (weight decay)", "RR"),
    "RK": ("reduce the number of kernels (conv channels)", "AMK"),
    "RD": ("reduce dropout", "AD"),
    "AMN": ("add more neurons (dense units)", "RN"),
    "RN": ("reduce neurons (dense units)", "AMN"),
    "RR": ("reduce regularisation (weight decay)", "AR"),
}
ORDER: dict[str, int] = {code: i for i, code in enumerate(INSTRUCTIONS)}


def conflict_of(code: str) -> str | None:
    """The instruction that undoes ``code`` (Table 3's "conflict with" column)."""
    return INSTRUCTIONS[code][1]


class Thresholds(BaseModel):
    """Table 2's user-defined parameters, with the paper's defaults (SPEC §4).

    P* are priorities (the weights rules give their instructions), T* thresholds.
    Field names are the paper's, so a config reads like the paper: ``PV_Acc = 1``.
    """

    model_config = ConfigDict(extra="forbid")
    PT_Acc: float = Field(default=0.0, ge=0, description="priority of training accuracy")
    PV_Acc: float = Field(default=1.0, ge=0, description="priority of validation accuracy")
    TT_Acc: float = Field(default=0.99, ge=0, le=1, description="training accuracy threshold")
    TV_Acc: float = Field(default=0.99, ge=0, le=1, description="validation accuracy threshold")
    PF: float = Field(default=0.0, ge=0, description="priority of FPS")
    TF: float = Field(default=14000.0, ge=0, description="FPS threshold (samples per second)")
    PT_E: float = Field(default=0.0, ge=0, description="priority of training energy")
    TT_E: float = Field(default=1e-3, ge=0, description="training energy threshold (kWh)")
    PV_E: float = Field(default=0.0, ge=0, description="priority of validation-inference energy")
    TV_E: float = Field(default=1e-5, ge=0, description="validation-inference energy threshold (kWh)")
    PS: float = Field(default=0.0, ge=0, description="priority of size (parameters; ours, not in the paper)")
    TS: float = Field(default=100_000.0, ge=0, description="size threshold (parameters; ours)")
    OT: float = Field(default=0.10, ge=0, le=1, description="overfitting threshold: TAcc - VAcc above it overfits")
    UT: float = Field(default=0.05, ge=0, le=1, description="underfitting threshold (see the rule table)")


@dataclass(frozen=True)
class Firing:
    """One rule that fired: which, why (readable, for the trial history), what, how strongly."""

    rule: str
    reason: str
    instructions: tuple[str, ...]
    weight: float

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "reason": self.reason, "instructions": list(self.instructions),
                "weight": self.weight}  # fmt: skip


def _metric(metrics: Mapping[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def fire_rules(metrics: Mapping[str, Any], t: Thresholds, n_classes: int | None = None) -> list[Firing]:
    """Every rule of the table above that fires for ``metrics`` (the evaluator's keys)."""
    tacc, vacc = _metric(metrics, score_key(metrics, "train")), _metric(metrics, score_key(metrics, "val"))
    fps = _metric(metrics, "fps")
    t_e, v_e = _metric(metrics, "train_energy_kwh"), _metric(metrics, "infer_energy_kwh")
    chance = 1.0 / n_classes if n_classes else 0.0
    pa = max(t.PT_Acc, t.PV_Acc)
    out: list[Firing] = []
    if tacc is not None and tacc < t.TT_Acc:
        out.append(Firing("R1", f"train_acc {tacc:.4g} < TT_Acc {t.TT_Acc:g}", ("ACL", "AMK", "ADL", "ASC"), t.PT_Acc))
    if vacc is not None and vacc < t.TV_Acc:
        out.append(Firing("R2", f"val_acc {vacc:.4g} < TV_Acc {t.TV_Acc:g}", ("ACL", "AMK", "ADL", "ASC"), t.PV_Acc))
    if tacc is not None and vacc is not None and tacc - vacc > t.OT:
        gap = tacc - vacc
        out.append(Firing("R3", f"overfitting: train_acc - val_acc = {gap:.4g} > OT {t.OT:g}",
                          ("AD", "AR", "RDL", "RN"), pa * (1 + min(gap, 1.0))))  # fmt: skip
    if tacc is not None:
        no_learning = tacc < chance + t.UT
        close = vacc is not None and abs(tacc - vacc) <= t.UT + 1e-9  # 0.9 - 0.85 is 0.05000000000000004
        low_close = close and tacc < t.TT_Acc and vacc is not None and vacc < t.TV_Acc
        if no_learning or low_close:
            why = (f"train_acc {tacc:.4g} < chance {chance:.3g} + UT {t.UT:g}" if no_learning else
                   f"underfitting: accuracies below target and within UT {t.UT:g} of each other")  # fmt: skip
            severity = min(max(t.TT_Acc - tacc, 0.0), 1.0)
            out.append(Firing("R4", why, ("AMN", "AMK", "ACL", "RD", "RR"), pa * (1 + severity)))
        if no_learning:
            out.append(Firing("R5", f"no learning: train_acc {tacc:.4g} near chance {chance:.3g}", ("AWI",), pa))
    if fps is not None and fps < t.TF:
        out.append(Firing("R6", f"fps {fps:.4g} < TF {t.TF:g}", ("RCL", "RK", "RN", "RSC"), t.PF))
    if t_e is not None and t_e > t.TT_E:
        out.append(Firing("R7", f"train energy {t_e:.3g} kWh > TT_E {t.TT_E:g}", ("RCL", "RK", "RN"), t.PT_E))
    if v_e is not None and v_e > t.TV_E:
        out.append(Firing("R7", f"inference energy {v_e:.3g} kWh > TV_E {t.TV_E:g}", ("RCL", "RK", "RN"), t.PV_E))
    params = _metric(metrics, "params")
    if t.PS > 0 and params is not None and params > t.TS:
        out.append(Firing("R8", f"params {params:.4g} > TS {t.TS:g}", ("RCL", "RK", "RN"), t.PS))
    return out


def combine(firings: list[Firing]) -> list[tuple[str, float]]:
    """One weight per instruction (the largest), sorted by weight, ties in Table 3 order."""
    weights: dict[str, float] = {}
    for firing in firings:
        for code in firing.instructions:
            weights[code] = max(weights.get(code, 0.0), firing.weight)
    return sorted(weights.items(), key=lambda item: (-item[1], ORDER[item[0]]))


def instructions(metrics: Mapping[str, Any], thresholds: Thresholds | None = None,
                 n_classes: int | None = None) -> list[tuple[str, float]]:  # fmt: skip
    """NNGES: the weighted instructions (before conflict resolution) for one trial's metrics."""
    return combine(fire_rules(metrics, thresholds or Thresholds(), n_classes))
