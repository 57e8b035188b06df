"""From metrics to fitness: validation accuracy, or LEMONADE's combined metric (CM).

``CM = W_A (TAcc + VAcc) + W_F NF - W_E (TNE + VNE) - W_S NS``  (LEMONADE Eq. 1, plus a size
term of ours). TAcc is training accuracy and VAcc validation accuracy, as in the paper.
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
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .errors import NasforgeError


def normalise(value: float, reference: float) -> float:
    if not math.isfinite(value):
        return 1.0 if value > 0 else 0.0
    value = max(value, 0.0)
    return value / (value + reference)


class Objective(BaseModel):
    """Fitness to maximise. With no weights given, fitness is validation accuracy."""

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

    def describe(self) -> str:
        if not self.combined:
            return "validation accuracy"
        parts = [f"{k}={getattr(self, k):g}" for k in ("accuracy", "fps", "energy", "size") if getattr(self, k)]
        return "combined metric CM (" + ", ".join(parts) + ")"

    def fitness(self, m: Mapping[str, Any]) -> float:
        if not self.combined:
            return float(m["val_acc"])
        return (
            self.accuracy * (m["train_acc"] + m["val_acc"])
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
