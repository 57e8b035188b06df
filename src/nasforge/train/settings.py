"""How each candidate is trained: the ``[train]`` table (torch-free, so the CLI starts fast)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..flags import flag


class TrainSettings(BaseModel):
    """How each candidate is trained (all of it configurable, defaults tuned for small data)."""

    model_config = ConfigDict(extra="forbid")
    optimizer: str = Field(default="adam", pattern="^(adam|adamw|sgd)$", json_schema_extra=flag("--optimizer"),
                           description="adam, adamw or sgd")
    lr: float = Field(default=3e-3, gt=0, le=10, json_schema_extra=flag("--lr"), description="learning rate")
    weight_decay: float = Field(default=0.0, ge=0, le=1, json_schema_extra=flag("--weight-decay"),
                                description="weight decay (default 0)")
    epochs: int = Field(default=40, ge=1, le=100000, json_schema_extra=flag("--epochs"),
                        description="maximum training epochs per candidate")
    batch_size: int = Field(default=64, ge=1, le=1_000_000, json_schema_extra=flag("--batch-size"),
                            description="mini-batch size")
    patience: int = Field(default=6, ge=0, le=100000, json_schema_extra=flag("--patience"),
                          description="early stopping: epochs without validation improvement; 0 = off")
    regression_loss: str = Field(default="mse", pattern="^(mse|huber)$", json_schema_extra=flag("--regression-loss"),
                                 description="regression: mse (default), or huber (less pulled by outliers; delta 1 "
                                             "on the standardised target)")
    method: str = Field(default="gradient", pattern="^(gradient|de|hybrid)$", json_schema_extra=flag("--lower-level"),
                        description="how weights are found: gradient (default), de (differential evolution, MLPs) "
                                    "or hybrid (DE, then gradient)")
    de_population: int = Field(default=32, ge=4, le=100000)
    de_generations: int = Field(default=100, ge=1, le=10_000_000)
    de_f: float = Field(default=0.5, gt=0, le=2)
    de_cr: float = Field(default=0.9, ge=0, le=1)
