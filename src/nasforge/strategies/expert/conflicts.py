"""LEMONADE's conflict resolution (Algorithm 2).

Sort the instructions by weight (descending; ties in Table 3 order so the result never
depends on dict order), walk from the highest, keep every instruction whose weight is
still positive and zero the conflicting partner of each kept one (ADL vs RDL, ...).
Opposite edits cannot both be passed to the designer: the stronger reason wins.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .rules import ORDER, conflict_of


@dataclass
class Resolution:
    """What Algorithm 2 made of one instruction set: the kept ones and the ones it zeroed."""

    kept: list[tuple[str, float]]
    zeroed: list[str] = field(default_factory=list)  # positive before, conflicting with a kept one
    dropped: list[str] = field(default_factory=list)  # weight 0 from the start (priority 0)

    @property
    def codes(self) -> list[str]:
        return [code for code, _ in self.kept]

    def weights(self) -> dict[str, float]:
        """Every instruction's weight after resolution (zeroed and dropped ones at 0)."""
        return {**{c: w for c, w in self.kept}, **{c: 0.0 for c in (*self.zeroed, *self.dropped)}}


def _as_pairs(ins: Iterable[tuple[str, float]] | Mapping[str, float]) -> list[tuple[str, float]]:
    pairs = list(ins.items()) if isinstance(ins, Mapping) else [(c, w) for c, w in ins]
    unknown = [c for c, _ in pairs if c not in ORDER]
    if unknown:
        raise ValueError(f"unknown instructions {unknown}; known: {list(ORDER)}")
    return pairs


def resolve(ins: Iterable[tuple[str, float]] | Mapping[str, float]) -> Resolution:
    """Algorithm 2, with a trace of what was zeroed."""
    order = sorted(_as_pairs(ins), key=lambda item: (-float(item[1]), ORDER[item[0]]))
    weights = {code: float(w) for code, w in order}
    kept: list[tuple[str, float]] = []
    zeroed: list[str] = []
    for m, (code, _) in enumerate(order):
        if weights[code] <= 0:
            continue
        kept.append((code, weights[code]))
        partner = conflict_of(code)
        for later, _ in order[m + 1 :]:
            if later == partner and weights[later] > 0:
                weights[later] = 0.0
                zeroed.append(later)
    dropped = [code for code, w in order if float(w) <= 0]
    return Resolution(kept, zeroed, dropped)


def resolve_conflicts(ins: Iterable[tuple[str, float]] | Mapping[str, float]) -> list[tuple[str, float]]:
    """Refined_Ins of Algorithm 2: the positive, conflict-free instructions, strongest first."""
    return resolve(ins).kept
