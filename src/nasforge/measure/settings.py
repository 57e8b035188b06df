"""How trained models are measured: the ``[measure]`` table (torch-free)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..flags import flag
from .energy import PowerSettings


class MeasureSettings(BaseModel):
    """How latency is measured (warm-up runs, timed repeats, batch size)."""

    model_config = ConfigDict(extra="forbid")
    batch_size: int = Field(default=64, ge=1, le=100000)
    warmup: int = Field(default=5, ge=0, le=1000)
    repeats: int = Field(default=30, ge=1, le=10000)
    backend: str = Field(default="torch", pattern="^(torch|onnx)$", json_schema_extra=flag("--measure"),
                         description="torch (default) or onnx: also time every candidate in onnxruntime")
    power: PowerSettings = Field(default_factory=PowerSettings)
