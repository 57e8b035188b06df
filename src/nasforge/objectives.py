"""From metrics to fitness: the validation score (accuracy, or R² for regression), or LEMONADE's
combined metric (CM).

``CM = W_A (TAcc + VAcc) + W_F NF - W_E (TNE + VNE) - W_S NS``  (LEMONADE Eq. 1, plus a size
term of ours). TAcc is training accuracy and VAcc validation accuracy, as in the paper (for
regression, training and validation R²).
Normalisation (ours, documented in the README): a quantity ``x`` with a reference ``r``
becomes ``x / (x + r)``, a number in [0, 1) that is 0.5 at the reference and grows with x,
so weights compare like with like whatever the units:
- NF: FPS with reference ``fps_ref`` (default 14,000, LEMONADE's target TF);
- TNE: training energy (kWh) with reference ``train_energy_ref`` (default 1e-3, TT_E);
- VNE: energy of inference on the validation set with reference ``val_energy_ref`` (1e-5, TV_E);
- NS: parameter count with reference ``params_ref`` (default 100,000).
Test metrics never enter a fitness.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .data.targets import score, score_label
from .errors import NasforgeError
from .flags import flag


def normalise(value: float, reference: float) -> float:
    if not math.isfinite(value):
        return 1.0 if value > 0 else 0.0
    value = max(value, 0.0)
    return value / (value + reference)


class Objective(BaseModel):
    """Fitness to maximise. With no weights given, fitness is the validation score: accuracy,
    or R² for regression."""

    model_config = ConfigDict(extra="forbid")
    accuracy: float = Field(default=0.0, ge=0)
    fps: float = Field(default=0.0, ge=0)
    energy: float = Field(default=0.0, ge=0)
    size: float = Field(default=0.0, ge=0)
    fps_ref: float = Field(default=14000.0, gt=0)
    train_energy_ref: float = Field(default=1e-3, gt=0)
    val_energy_ref: float = Field(default=1e-5, gt=0)
    params_ref: float = Field(default=100_000.0, gt=0)

    @property
    def combined(self) -> bool:
        return any((self.accuracy, self.fps, self.energy, self.size))

    def describe(self, kind: str = "classification") -> str:
        if not self.combined:
            return f"validation {score_label(kind)}"
        parts = [f"{k}={getattr(self, k):g}" for k in ("accuracy", "fps", "energy", "size") if getattr(self, k)]
        return "combined metric CM (" + ", ".join(parts) + ")"

    def fitness(self, m: Mapping[str, Any]) -> float:
        if not self.combined:
            return float(score(m, "val"))
        return (
            self.accuracy * (score(m, "train") + score(m, "val"))
            + self.fps * normalise(m["fps"], self.fps_ref)
            - self.energy * (normalise(m["train_energy_kwh"], self.train_energy_ref)
                             + normalise(m["infer_energy_kwh"], self.val_energy_ref))
            - self.size * normalise(m["params"], self.params_ref)
        )


def parse_weights(text: str) -> dict[str, float]:
    """``"accuracy=0.7,fps=0.2,energy=0.1"`` -> dict; unknown names are a one-line error."""
    allowed = ("accuracy", "fps", "energy", "size")
    if not text.strip():
        raise NasforgeError(f"--weights needs NAME=VALUE pairs with NAME in {', '.join(allowed)}, e.g. accuracy=0.7,fps=0.3")
    weights: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in allowed:
            raise NasforgeError(f"--weights takes NAME=VALUE pairs with NAME in {', '.join(allowed)}; got {item!r}")
        try:
            weights[name] = float(value)
        except ValueError:
            raise NasforgeError(f"--weights {name}={value!r} is not a number") from None
        if not (math.isfinite(weights[name]) and weights[name] >= 0):
            raise NasforgeError(f"--weights {name} must be a finite number >= 0, got {value}")
    if not any(weights.values()):  # would silently mean plain validation accuracy
        raise NasforgeError("--weights: the weights are all 0; give at least one above 0, or leave out --weights")
    return weights


# --- several objectives at once (Pareto search) and constraints ---
@dataclass(frozen=True)
class Measure:
    """One objective a user may name: the metric it reads, its direction, whether it is
    known before training (from the built network alone: LEMONADE's cheap objectives), and
    whether it is a ratio quantity (a size, time, rate or energy, spanning orders of
    magnitude: halving it is worth the same at every size), which selection spreads on log10."""

    name: str
    metric: str
    maximise: bool
    cheap: bool
    unit: str
    kinds: tuple[str, ...] = ("classification", "regression")  # the tasks it is measured on
    ratio: bool = True

    @property
    def direction(self) -> str:
        return "maximize" if self.maximise else "minimize"

    def ranked(self, value: float) -> float:
        """``value`` (in this objective's units) as selection ranks it, larger is better: negated
        when minimised, a ratio objective on log10 first (0 and below as 1e-30)."""
        if self.ratio and math.isfinite(value):
            value = math.log10(max(value, 1e-30))
        return value if self.maximise else -value

    def unranked(self, coordinate: float) -> float:
        """The inverse of ``ranked``: a ranked coordinate back in this objective's units."""
        value = coordinate if self.maximise else -coordinate
        return 10.0 ** value if self.ratio and math.isfinite(value) else value


MEASURES: dict[str, Measure] = {m.name: m for m in (
    Measure("accuracy", "val_acc", True, False, "validation accuracy", ("classification",), ratio=False),
    Measure("r2", "val_r2", True, False, "validation R²", ("regression",), ratio=False),
    Measure("rmse", "val_rmse", False, False, "validation root-mean-square error", ("regression",), ratio=False),
    Measure("mae", "val_mae", False, False, "validation mean absolute error", ("regression",), ratio=False),
    Measure("params", "params", False, True, "parameters"),
    Measure("flops", "flops", False, True, "FLOPs per sample"),
    Measure("size", "size_bytes", False, True, "bytes serialised"),
    Measure("latency", "latency_ms", False, False, "ms per single sample"),
    Measure("fps", "fps", True, False, "samples per second in a batch"),
    Measure("energy", "infer_energy_kwh", False, False, "kWh of inference on the validation set"),
)}


def check_task_objectives(names: Sequence[str], kind: str) -> None:
    """One line when an objective is not measured on this kind of task (accuracy on a
    regression, RMSE on a classification)."""
    wrong = [n for n in names if kind not in MEASURES[n].kinds]
    if wrong:
        fits = ", ".join(m.name for m in MEASURES.values() if m.kinds == (kind,))
        raise NasforgeError(f"objective {wrong[0]!r} does not apply to {kind}; its quality objectives are {fits}")


def check_objectives(names: Sequence[str]) -> list[str]:
    """The objectives a user named, checked: known, each once, and none or at least two."""
    names = [str(n).strip() for n in names]
    unknown = [n for n in names if n not in MEASURES]
    if unknown:
        raise ValueError(f"unknown objective {unknown[0]!r}; choose two or more of {', '.join(MEASURES)}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"objective {repeated[0]!r} is named twice")
    if len(names) == 1:
        raise ValueError(f"give two or more objectives (e.g. {names[0]},{'params' if names[0] != 'params' else 'accuracy'}); "
                         "one alone is the plain search (leave out --objectives)")
    return names


class Constraints(BaseModel):
    """Limits a model must meet (feasibility, not weights): a candidate over a limit loses to
    every candidate within all limits (Deb's constrained domination); one over a limit known
    before training (size) is never trained. The parameter limit is the search space's own
    ``max_params`` (``--max-params``): the space never proposes a larger network."""

    model_config = ConfigDict(extra="forbid")
    max_latency_ms: float | None = Field(default=None, gt=0, json_schema_extra=flag("--max-latency-ms"),
                                         description="only models answering one sample within this many ms")
    max_size_kb: float | None = Field(default=None, gt=0, json_schema_extra=flag("--max-size-kb"),
                                      description="only models whose saved weights take at most this many KB")

    def limits(self) -> list[tuple[str, float, str]]:
        """(metric, limit, what to call it) for each limit set."""
        limits = [("latency_ms", self.max_latency_ms, "ms latency"),
                  ("size_bytes", None if self.max_size_kb is None else self.max_size_kb * 1000, "bytes")]
        return [(metric, float(limit), label) for metric, limit, label in limits if limit is not None]

    @property
    def any(self) -> bool:
        return bool(self.limits())

    def cheap(self) -> bool:
        """Whether a limit can be checked before training."""
        return any(metric in CHEAP_METRICS for metric, _, _ in self.limits())

    def violation(self, metrics: Mapping[str, Any], cheap_only: bool = False) -> float:
        """How far ``metrics`` break the limits: the sum of each excess relative to its limit
        (0: feasible). A metric that is missing is not judged."""
        total = 0.0
        for metric, limit, _ in self.limits():
            if cheap_only and metric not in CHEAP_METRICS:
                continue
            value = _number(metrics.get(metric))
            if value is not None:
                total += max(0.0, value / limit - 1.0) if math.isfinite(value) else 1e9
        return total

    def broken(self, metrics: Mapping[str, Any]) -> str:
        """The limits ``metrics`` break, in words ('' when none)."""
        parts = []
        for metric, limit, label in self.limits():
            value = _number(metrics.get(metric))
            if value is not None and not value <= limit:
                parts.append(f"{value:,.4g} {label} > {limit:,.4g}")
        return "; ".join(parts)


CHEAP_METRICS = {m.metric for m in MEASURES.values() if m.cheap}


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def format_value(value: float | None) -> str:
    """An objective's value for people: counts with thousands separators, others to 4 digits."""
    if value is None or not math.isfinite(value):
        return "-"
    if float(value).is_integer() and abs(value) >= 1:
        return f"{value:,.0f}"
    return f"{value:.4g}"


class Goal:
    """What a run optimises: one fitness (validation accuracy or CM) or several objectives,
    under constraints. ``point`` gives objectives as one tuple to MAXIMISE (what
    :mod:`nasforge.pareto` ranks), ``values`` in their own units and directions (what the
    Optuna study stores)."""

    def __init__(self, objectives: Sequence[str] = (), objective: Objective | None = None,
                 constraints: Constraints | None = None, kind: str = "classification"):
        self.measures = [MEASURES[n] for n in objectives]
        self.objective = objective or Objective()
        self.constraints = constraints or Constraints()
        self.kind = kind

    @classmethod
    def of(cls, config: Any, kind: str = "classification") -> Goal:
        """The goal of a SearchConfig, on a task of ``kind``."""
        return cls(config.objectives, config.objective, config.constraints, kind)

    @property
    def multi(self) -> bool:
        return len(self.measures) > 1

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.measures]

    @property
    def directions(self) -> list[str]:
        return [m.direction for m in self.measures] if self.multi else ["maximize"]

    def fitness(self, metrics: Mapping[str, Any]) -> float:
        """The single objective's fitness (validation accuracy or CM)."""
        return self.objective.fitness(metrics)

    def values(self, metrics: Mapping[str, Any]) -> list[float]:
        """Each objective in its own units (a single objective: the fitness). Raises KeyError
        when a metric is missing, ValueError when one is not a number."""
        if not self.multi:
            return [self.fitness(metrics)]
        return [float(metrics[m.metric]) for m in self.measures]

    def point(self, metrics: Mapping[str, Any]) -> tuple[float, ...]:
        """The objectives as one point to maximise (minimised ones negated)."""
        if not self.multi:
            return (self.fitness(metrics),)
        return tuple(v if m.maximise else -v for v, m in zip(self.values(metrics), self.measures))

    def ranking_point(self, metrics: Mapping[str, Any]) -> tuple[float, ...]:
        """The point selection ranks: ``point`` with every ratio objective (parameters, FLOPs,
        bytes, latency, FPS, energy) on log10, so that crowding distances and hypervolume
        contributions count halving a network's size alike whether it has 1,000 parameters
        or 100,000 (on a linear axis every small network sits at one end, and a search that
        spreads its front there never explores the small models). Pareto ranks are the same
        on either scale."""
        if not self.multi:
            return self.point(metrics)
        return tuple(m.ranked(v) for v, m in zip(self.values(metrics), self.measures))

    def violation(self, metrics: Mapping[str, Any]) -> float:
        return self.constraints.violation(metrics)

    def reads(self) -> set[str]:
        """The metrics the objectives, the combined metric's weights and the limits read
        (beside the quality scores, which every candidate has)."""
        o = self.objective
        weights = {("fps",): o.fps, ("train_energy_kwh", "infer_energy_kwh"): o.energy, ("params",): o.size}
        weighted = {metric for metrics, weight in weights.items() if weight for metric in metrics}
        return {m.metric for m in self.measures} | weighted | {metric for metric, _, _ in self.constraints.limits()}

    def describe(self) -> str:
        text = (f"Pareto front of {', '.join(f'{m.name} ({m.direction[:3]})' for m in self.measures)}"
                if self.multi else self.objective.describe(self.kind))
        limits = [f"{label} <= {limit:,.4g}" for _, limit, label in self.constraints.limits()]
        return text + (f", subject to {', '.join(limits)}" if limits else "")
