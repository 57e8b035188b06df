"""The validated configuration of a search: from a TOML file, flags, or Python keywords.

Every value is checked by pydantic; an error names the key and what is allowed, in one line.
The whole configuration is stored with the run, so ``nasforge resume`` needs nothing else.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import NasforgeError
from .evaluator import MeasureSettings
from .strategies.bilevel import BilevelSettings
from .strategies.expert import ExpertSettings
from .strategies.two_stage import TwoStageSettings
from .objectives import Objective
from .train import TrainSettings

LEARNING_RULES = ("backprop", "fa", "usf", "brsf", "frsf")


class DataSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: Optional[str] = None
    csv: Optional[str] = None
    target: Optional[str] = None
    drop: list[str] = Field(default_factory=list)
    path: Optional[str] = Field(default=None, description="image data: a folder of class folders, IDX files or CIFAR batches")
    format: str = Field(default="auto", pattern="^(auto|images|idx|cifar)$")
    image_size: Optional[list[int]] = Field(default=None, min_length=2, max_length=2)
    channels: Optional[int] = Field(default=None, ge=1, le=4)
    color_features: Optional[str] = None
    val_fraction: float = Field(default=0.2, gt=0, lt=1)
    test_fraction: float = Field(default=0.2, gt=0, lt=1)

    @model_validator(mode="after")
    def _one_source(self) -> "DataSettings":
        given = [name for name in ("dataset", "csv", "path") if getattr(self, name) is not None]
        if not given:
            self.dataset = "digits"
        elif len(given) > 1:
            raise ValueError(f"give one data source, not {' and '.join(given)}")
        if self.image_size is not None and any(n < 1 or n > 4096 for n in self.image_size):
            raise ValueError("image_size must be two numbers between 1 and 4096")
        return self

    @property
    def label(self) -> str:
        return self.dataset or Path(self.csv or self.path or "data").stem

    def load_args(self) -> dict[str, Any]:
        """The keyword arguments of ``load_task`` for these settings."""
        return self.model_dump(exclude={"val_fraction", "test_fraction"}, exclude_none=True) | {
            "val_fraction": self.val_fraction, "test_fraction": self.test_fraction}


class SpaceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    family: str = Field(default="mlp", pattern="^(mlp|net|nb201|cells)$", description="genome family searched")
    min_layers: int = Field(default=1, ge=0, le=64)
    max_layers: int = Field(default=4, ge=0, le=64)
    min_units: int = Field(default=8, ge=1, le=65536)
    max_units: int = Field(default=256, ge=1, le=65536)
    activations: list[str] = Field(default_factory=lambda: ["relu", "tanh", "gelu", "elu", "leaky_relu", "silu"])
    dropouts: list[float] = Field(default_factory=lambda: [0.0, 0.1, 0.2, 0.3, 0.5])
    max_params: Optional[int] = Field(default=None, ge=1)
    learning_rules: list[str] = Field(default_factory=lambda: ["backprop"])
    min_cells: int = Field(default=3, ge=1, le=64, description="cells space: fewest cells")
    max_cells: int = Field(default=5, ge=1, le=64, description="cells space: most cells")
    channels: int = Field(default=8, ge=1, le=1024, description="cells space: channels of the first cell")

    @field_validator("learning_rules")
    @classmethod
    def _known_rules(cls, rules: list[str]) -> list[str]:
        unknown = [r for r in rules if r not in LEARNING_RULES]
        if unknown or not rules:
            raise ValueError(f"unknown learning rules {unknown}; choose from {', '.join(LEARNING_RULES)}")
        return rules

    @field_validator("dropouts")
    @classmethod
    def _dropout_range(cls, values: list[float]) -> list[float]:
        if not values or any(not 0 <= v < 1 for v in values):
            raise ValueError("dropout rates must be in [0, 1)")
        return values

    @model_validator(mode="after")
    def _ordered(self) -> "SpaceSettings":
        if self.min_layers > self.max_layers:
            raise ValueError(f"min_layers ({self.min_layers}) is above max_layers ({self.max_layers})")
        if self.min_units > self.max_units:
            raise ValueError(f"min_units ({self.min_units}) is above max_units ({self.max_units})")
        return self


class StrategySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "evolution"
    population_size: Optional[int] = Field(default=None, ge=2, le=100000)
    sample_size: Optional[int] = Field(default=None, ge=1, le=100000)
    expert: Optional[ExpertSettings] = None
    two_stage: Optional[TwoStageSettings] = None
    bilevel: Optional[BilevelSettings] = None

    @field_validator("name")
    @classmethod
    def _known_strategy(cls, name: str) -> str:
        from .strategies import STRATEGIES

        if name not in STRATEGIES:
            raise ValueError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
        return name


class BenchmarkSettings(BaseModel):
    """Tabular benchmark mode: accuracies are looked up instead of trained (NAS-Bench-201)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="nb201", pattern="^nb201$")
    file: str
    dataset: str = "cifar10"
    seconds_per_query: float = Field(default=0.0, ge=0, description="simulated training time per query")


class ExecutorSettings(BaseModel):
    """Where evaluations run. Not part of a run's identity: resume with more workers freely."""

    model_config = ConfigDict(extra="forbid")
    kind: str = Field(default="auto", pattern="^(auto|in-process|processes|ray)$",
                      description="auto: in-process for one worker, local processes for more")
    workers: int = Field(default=1, ge=1, le=4096)
    ray_address: Optional[str] = Field(default=None, description="join a Ray cluster: auto or HOST:PORT")
    cpus_per_task: float = Field(default=1.0, gt=0, le=1024)
    gpus_per_task: float = Field(default=0.0, ge=0, le=64)
    retries: int = Field(default=1, ge=0, le=100, description="re-runs of an evaluation whose worker died")

    @model_validator(mode="after")
    def _ray_address_means_ray(self) -> "ExecutorSettings":
        if self.ray_address and self.kind == "auto":
            self.kind = "ray"
        if self.kind == "in-process" and self.workers > 1:
            raise ValueError("in-process runs one evaluation at a time; use --workers with processes or ray")
        return self


class SearchConfig(BaseModel):
    """Everything that defines a search. ``budget`` counts evaluations (finished trials)."""

    model_config = ConfigDict(extra="forbid")
    data: DataSettings = Field(default_factory=DataSettings)
    space: SpaceSettings = Field(default_factory=SpaceSettings)
    strategy: StrategySettings = Field(default_factory=StrategySettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    measure: MeasureSettings = Field(default_factory=MeasureSettings)
    objective: Objective = Field(default_factory=Objective)
    budget: int = Field(default=40, ge=1, le=10_000_000)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    threads: Optional[int] = Field(default=None, ge=1, le=1024,
                                   description="torch threads per evaluation (default: 1 in process, cores/workers otherwise)")
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    benchmark: Optional[BenchmarkSettings] = None

    @model_validator(mode="after")
    def _strategy_space(self) -> "SearchConfig":
        if self.strategy.name == "ts-enas":
            if self.space.family not in ("mlp", "cells"):
                raise ValueError(f"ts-enas searches the cells space, not {self.space.family!r}")
            self.space.family = "cells"
        return self

    @model_validator(mode="after")
    def _benchmark_mode(self) -> "SearchConfig":
        if self.benchmark is not None:
            if self.objective.combined:
                raise ValueError("a tabular benchmark records validation and test accuracy only: leave out --weights")
            self.space.family = "nb201"
        return self

    @property
    def label(self) -> str:
        """A short name for the data searched, used in default run directory names."""
        return f"{self.benchmark.name}-{self.benchmark.dataset}" if self.benchmark else self.data.label

    def identity(self) -> dict[str, Any]:
        """What must match for a run to be continued (the budget may grow)."""
        return self.model_dump(mode="json", exclude={"budget", "executor", "threads"})


def validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "config"
    value = first.get("input")
    shown = f" (got {value!r})" if not isinstance(value, dict) else ""
    return f"config {key}: {first['msg']}{shown}"


def build_config(data: dict[str, Any]) -> SearchConfig:
    try:
        return SearchConfig.model_validate(data)
    except ValidationError as exc:
        raise NasforgeError(validation_message(exc)) from None


def load_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise NasforgeError(f"config file not found: {path}")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise NasforgeError(f"{path} is not valid TOML: {exc}") from None


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Nested dict merge: values in ``override`` win (flags over file)."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
