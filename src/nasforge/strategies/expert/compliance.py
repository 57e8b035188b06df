"""Did the designer do what it was told? A per-instruction check on the genome diff.

The paper found GPT-4o ignored the instructions in about 10 % of its replies; nasforge
measures this instead of trusting it. Each check compares the old and the new genome:

| instruction | net: followed iff | mlp: followed iff |
|---|---|---|
| ACL / RCL | more / fewer conv layers | not applicable |
| ASC / RSC | more / fewer skip connections | not applicable |
| ADL / RDL | more / fewer dense layers | more / fewer hidden layers |
| AD / RD | more / fewer dropout layers, or as many with a higher / lower total rate | higher / lower dropout rate |
| AMK / RK | more / fewer channels per conv layer on average | not applicable |
| AMN / RN | more / fewer units per dense layer on average | more / fewer units per hidden layer on average |
| AR / RR | higher / lower weight decay | higher / lower dropout rate |
| AWI | another weight initialiser | not applicable |

Widths are compared per layer on average, so that adding a layer (ACL, ADL) does not by
itself count as "more kernels/neurons". Comparing counts and averages needs no alignment
of old and new layers, which an LLM may reorder freely. Each family's column is its
genome's ``instruction_checks`` (:mod:`nasforge.spaces.net`, :mod:`nasforge.spaces.mlp`), so
this module names no family.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...spaces import Genome


def followed(old: Genome, new: Genome, code: str) -> bool | None:
    """True/False: the new genome did / did not do ``code``; None: not applicable to the family."""
    checks = type(old).instruction_checks
    if type(old) is not type(new) or code not in checks:
        return None
    return bool(checks[code](old, new))


def check_compliance(old: Genome, new: Genome, codes: Iterable[str]) -> dict[str, list[str]]:
    """Split the instructions given into followed, ignored and not applicable."""
    out: dict[str, list[str]] = {"followed": [], "ignored": [], "not_applicable": []}
    for code in codes:
        verdict = followed(old, new, code)
        out["not_applicable" if verdict is None else "followed" if verdict else "ignored"].append(code)
    return out


def _info(record: Any) -> dict[str, Any]:
    info = record.get("info") if isinstance(record, dict) else getattr(record, "info", None)
    return info if isinstance(info, dict) else {}


def compliance_summary(records: Iterable[Any]) -> dict[str, Any]:
    """Instruction compliance of the LLM designer over a run.

    ``records`` are the study's trial records (or proposals, or dicts with an ``info`` key).
    Only iterations whose genome the LLM designed count towards the rate; fallbacks to the
    rule designer, repairs and enforced instructions are counted separately.
    """
    given = kept = llm_iterations = fallbacks = repairs = enforced = 0
    per: dict[str, dict[str, float]] = {}
    for record in records:
        info = _info(record)
        if info.get("designer_requested") != "llm":
            continue
        repairs += len(info.get("repairs", []))
        if info.get("fallback"):
            fallbacks += 1
        comp = info.get("compliance")
        if info.get("designer") != "llm" or not isinstance(comp, dict):
            continue
        llm_iterations += 1
        enforced += len(info.get("enforced", []))
        for verdict in ("followed", "ignored"):
            for code in comp.get(verdict, []):
                entry = per.setdefault(code, {"given": 0, "followed": 0})
                entry["given"] += 1
                given += 1
                if verdict == "followed":
                    entry["followed"] += 1
                    kept += 1
    for entry in per.values():
        entry["rate"] = entry["followed"] / entry["given"]
    return {
        "llm_iterations": llm_iterations, "instructions": given, "followed": kept,
        "rate": kept / given if given else None, "per_instruction": dict(sorted(per.items())),
        "fallbacks": fallbacks, "repairs": repairs, "enforced": enforced,
    }  # fmt: skip
