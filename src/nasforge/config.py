"""The validated configuration of a search: from a TOML file, flags, or Python keywords.

Every value is checked by pydantic; an error names the key and what is allowed, in one line.
The whole configuration is stored with the run, so ``nasforge resume`` needs nothing else.
"""
from __future__ import annotations

import functools
import operator
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .device import DeviceSettings
from .errors import NasforgeError
from .evaluators.table import BenchmarkSettings
from .flags import flag
from .halving import SchedulerSettings
from .measure.settings import MeasureSettings
from .objectives import Constraints, Objective, check_objectives
from .proxies import NO_PROXY, proxy_names
from .spaces import SPACES
from .strategies import STRATEGIES
from .train.settings import TrainSettings

M = TypeVar("M", bound=BaseModel)


class DataSettings(BaseModel):
    """What to search on: one of a built-in dataset, a CSV file or image files."""

    model_config = ConfigDict(extra="forbid")
    dataset: str | None = Field(default=None, json_schema_extra=flag("--dataset"), description=(
        "built-in dataset (list them with 'nasforge datasets'; default digits)"))
    csv: str | None = Field(default=None, json_schema_extra=flag("--csv"), description="your own CSV file (needs --target)")
    target: str | None = Field(default=None, json_schema_extra=flag("--target"),
                                 description="the CSV column holding the class labels or the number to predict")
    task: Literal["auto", "classification", "regression"] = Field(default="auto", json_schema_extra=flag("--task"), description=(
        "classification or regression (default auto: a built-in dataset's own; for a CSV, classification, "
        "and a question when the target is numeric with many values)"))
    drop: list[str] = Field(default_factory=list, json_schema_extra=flag("--drop"),
                            description="CSV columns to leave out, comma-separated")
    path: str | None = Field(default=None, json_schema_extra=flag("--data"), description=(
        "image data: a folder of class folders, IDX files or CIFAR batches (detected; or say which with "
        "--images, --idx, --cifar)"))
    format: str = Field(default="auto", pattern="^(auto|images|idx|cifar)$")
    image_size: list[int] | None = Field(default=None, min_length=2, max_length=2, json_schema_extra=flag(
        "--image-size", parse="size"), description="resize images to HxW, e.g. 32x32 (folders of images)")
    channels: int | None = Field(default=None, ge=1, le=4, json_schema_extra=flag("--image-channels"), description=(
        "1 (grayscale) or 3 (RGB) for folders of images (default: detected)"))
    color_features: str | None = Field(default=None, json_schema_extra=flag("--color-features"), description=(
        "colors dataset inputs: rgb, hsv, lab or a mix like rgb+lab"))
    val_fraction: float = Field(default=0.2, gt=0, lt=1)
    test_fraction: float = Field(default=0.2, gt=0, lt=1)

    @model_validator(mode="after")
    def _one_source(self) -> DataSettings:
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


# The [space] table: each registered family's own settings model, told apart by "family".
def union_of(models: Any) -> Any:
    """``A | B | ...`` of the registered settings models (built when the config is imported)."""
    return functools.reduce(operator.or_, models)


AnySpaceSettings = Annotated[union_of(cls.Settings for cls in SPACES), Field(discriminator="family")]
DEFAULT_FAMILY = SPACES.default().name
DEFAULT_STRATEGY = STRATEGIES.default().name


# The [strategy] table: each registered strategy's own settings model, told apart by "name".
AnyStrategySettings = Annotated[union_of(cls.Settings for cls in STRATEGIES), Field(discriminator="name")]


def strategy_table(data: Any, stored: bool = False) -> Any:
    """The [strategy] table in today's shape, from any shape nasforge has written or read.

    Before registries, one table held every strategy's settings: the generic
    ``population_size``/``sample_size`` keys plus an ``expert``, ``two_stage`` and ``bilevel``
    sub-table (null when unused). Now the table holds the chosen strategy's own fields. The
    strategy's old sub-table is flattened into it (its ``population`` is the
    ``population_size`` it always overrode); empty keys of other strategies are dropped.
    ``stored``: a configuration a run saved, where a setting the strategy never had was
    silently ignored then, so it is dropped now too rather than refusing the run.
    """
    if not isinstance(data, dict):
        return data
    name = data.get("name", DEFAULT_STRATEGY)
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES.names())}")
    cls = STRATEGIES.get(name)
    table = {"name": name}
    section = cls.legacy_section
    for key, value in data.items():
        if key == "name" or (value is None and key not in cls.Settings.model_fields):
            continue
        if key == section and isinstance(value, dict):
            continue
        table[key] = value
    if section and isinstance(data.get(section), dict):
        inner = dict(data[section])
        if "population" in inner:
            inner["population_size"] = inner.pop("population")
        table.update(inner)
    if stored:
        table = {k: v for k, v in table.items() if k in cls.Settings.model_fields}
    return table


class ExecutorSettings(BaseModel):
    """Where evaluations run. Not part of a run's identity: resume with more workers freely."""

    model_config = ConfigDict(extra="forbid")
    kind: str = Field(default="auto", pattern="^(auto|in-process|processes|ray)$", json_schema_extra=flag("--executor"),
                      description="in-process, processes or ray (default: in-process, processes with --workers)")
    workers: int = Field(default=1, ge=1, le=4096, json_schema_extra=flag("--workers"), description=(
        "evaluate this many candidates at once in local worker processes"))
    ray_address: str | None = Field(default=None, json_schema_extra=flag("--ray-address"), description=(
        "join a running Ray cluster: auto or HOST:PORT (implies --executor ray)"))
    cpus_per_task: float = Field(default=1.0, gt=0, le=1024, json_schema_extra=flag("--cpus-per-task"),
                                 description="Ray: CPUs each evaluation asks for")
    gpus_per_task: float = Field(default=0.0, ge=0, le=64, json_schema_extra=flag("--gpus-per-task"),
                                 description="Ray: GPUs each evaluation asks for (default 0)")
    retries: int = Field(default=1, ge=0, le=100, json_schema_extra=flag("--retries"),
                         description="re-runs of an evaluation whose worker died")

    @model_validator(mode="after")
    def _ray_address_means_ray(self) -> ExecutorSettings:
        if self.ray_address and self.kind == "auto":
            self.kind = "ray"
        if self.kind == "in-process" and self.workers > 1:
            raise ValueError("in-process runs one evaluation at a time; use --workers with processes or ray")
        return self


class SearchConfig(BaseModel):
    """Everything that defines a search. ``budget`` counts evaluations (finished trials)."""

    model_config = ConfigDict(extra="forbid")
    data: DataSettings = Field(default_factory=DataSettings, json_schema_extra={"group": "data"})
    space: AnySpaceSettings = Field(default_factory=lambda: SPACES.get(DEFAULT_FAMILY).Settings(),
                                    json_schema_extra={"group": "search space"})
    strategy: AnyStrategySettings = Field(default_factory=lambda: STRATEGIES.get(DEFAULT_STRATEGY).Settings())
    train: TrainSettings = Field(default_factory=TrainSettings, json_schema_extra={"group": "training"})
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings, json_schema_extra={"group": "training"})
    measure: MeasureSettings = Field(default_factory=MeasureSettings, json_schema_extra={"group": "objective"})
    objective: Objective = Field(default_factory=Objective)
    objectives: list[str] = Field(default_factory=list, json_schema_extra=flag("--objectives", group="objective"),
                                  description=("search for the Pareto front of two or more of accuracy, params, flops, "
                                               "size, latency, fps, energy, e.g. accuracy,latency"))
    constraints: Constraints = Field(default_factory=Constraints, json_schema_extra={"group": "objective"})
    repeats: bool = Field(default=False, description=(
        "train a genome the run has evaluated before again (default: its stored result is reused, free)"),
        json_schema_extra=flag("--allow-repeats", const=True, group="strategy", help=(
            "train a genome again when a strategy proposes one the run has evaluated (the old behaviour; "
            "by default its stored result is reused and costs no budget)")))
    screening: bool = Field(default=True, description=(
        "a Pareto search with a cheap objective (params, flops, size) and another: skip candidates a front member "
        "beats on the cheap ones, with a probability that grows with how crowded their place is"),
        json_schema_extra=flag("--no-screening", const=False, group="objective", help=(
            "train every candidate of a Pareto search (no cheap-objectives screen before training)")))
    proxy: str = Field(default=NO_PROXY, json_schema_extra=flag("--proxy", group="strategy"), description=(
        "zero-cost proxy that picks the strategy's first candidates, each the best of --proxy-pool untrained "
        "samples: synflow, naswot, jacob_cov, params or none"))
    proxy_pool: int = Field(default=100, ge=1, le=100_000, json_schema_extra=flag("--proxy-pool", group="strategy"),
                            description="untrained samples the proxy scores for the first candidates")
    budget: int = Field(default=40, ge=1, le=10_000_000, json_schema_extra=flag("--budget", group="strategy"),
                        description="number of evaluations (trained candidates)")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, json_schema_extra=flag("--seed", group="strategy"),
                      description="seed of the split, the strategy and every training run")
    threads: int | None = Field(default=None, ge=1, le=1024, json_schema_extra=flag("--threads", group="execution"),
                                   description="torch threads per evaluation (default: 1 in process, cores/workers otherwise)")
    log: list[str] = Field(default_factory=list, json_schema_extra=flag("--log", group="execution"), description=(
        "experiment trackers that record every trial: mlflow, tensorboard (comma-separated)"))
    mlflow_uri: str | None = Field(default=None, json_schema_extra=flag("--mlflow-uri", group="execution"), description=(
        "MLflow tracking URI for --log mlflow (default: sqlite:///RUN/mlflow.db)"))
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings, json_schema_extra={"group": "execution"})
    device: DeviceSettings = Field(default_factory=DeviceSettings, json_schema_extra={"group": "execution"})
    benchmark: BenchmarkSettings | None = Field(default=None, json_schema_extra={"group": "data"})

    @field_validator("log")
    @classmethod
    def _known_trackers(cls, names: list[str]) -> list[str]:
        from .trackers import TRACKERS

        names = list(dict.fromkeys(n.strip() for n in names if n.strip()))
        for name in names:
            if name not in TRACKERS.names():
                raise ValueError(f"unknown tracker {name!r}; choose from {', '.join(TRACKERS.names())}")
        return names

    @field_validator("strategy", mode="before")
    @classmethod
    def _strategy_shape(cls, data: Any) -> Any:
        return strategy_table(data)

    @model_validator(mode="before")
    @classmethod
    def _implied_family(cls, data: Any) -> Any:
        """The [space] table's family: as given, else the default. A strategy bound to one family
        (``Strategy.family``) and the benchmark table (``BenchmarkSettings.family``) imply theirs: it
        replaces the default, another one is an error."""
        if not isinstance(data, dict) or not isinstance(data.get("space", {}), dict):
            return data
        space = dict(data.get("space") or {})
        given = space.setdefault("family", DEFAULT_FAMILY)
        strategy = data.get("strategy") or {}
        name = strategy.get("name", DEFAULT_STRATEGY) if isinstance(strategy, dict) else getattr(strategy, "name", None)
        if data.get("benchmark") is not None:
            space["family"] = BenchmarkSettings.family
        elif name in STRATEGIES and STRATEGIES.get(name).family is not None:
            implied = STRATEGIES.get(name).family
            if given not in (DEFAULT_FAMILY, implied):
                raise ValueError(f"{name} searches the {implied} space, not {given!r}")
            space["family"] = implied
        return {**data, "space": space}

    @field_validator("proxy")
    @classmethod
    def _known_proxy(cls, name: str) -> str:
        if name not in proxy_names():
            raise ValueError(f"unknown proxy {name!r}; choose from {', '.join(proxy_names())}")
        return name

    @field_validator("objectives")
    @classmethod
    def _known_objectives(cls, names: list[str]) -> list[str]:
        return check_objectives(names)

    @model_validator(mode="after")
    def _benchmark_mode(self) -> SearchConfig:
        if self.objectives and self.objective.combined:
            raise ValueError("give --objectives (a Pareto front) or --weights (one combined metric), not both")
        if self.benchmark is not None:
            given = [name for name, used in (("--weights", self.objective.combined), ("--objectives", self.objectives),
                                             ("limits", self.constraints.any)) if used]
            if given:
                raise ValueError(f"a tabular benchmark records validation and test accuracy only: leave out {given[0]}")
        if getattr(self.strategy, "proxy_feature", False) and self.proxy == NO_PROXY:
            raise ValueError("--proxy-feature feeds the proxy's score to the predictor: name one with --proxy")
        return self

    @model_validator(mode="after")
    def _fidelity(self) -> SearchConfig:
        s = self.scheduler
        if not s.on:
            return self
        if self.benchmark is not None:
            raise ValueError("a tabular benchmark trains nothing: leave out --scheduler")
        if self.train.method != "gradient":
            raise ValueError(f"--scheduler halves gradient training; --lower-level {self.train.method} has no epochs "
                             "to stop early (use gradient)")
        if s.min_epochs > self.max_epochs:
            raise ValueError(f"--min-epochs {s.min_epochs} is above --max-epochs {self.max_epochs}")
        return self

    @property
    def max_epochs(self) -> int:
        """Epochs of a fully trained candidate: the scheduler's max_epochs, else train.epochs."""
        return self.scheduler.max_epochs or self.train.epochs

    @property
    def evaluator_kind(self) -> str:
        """Which registered evaluator scores candidates: a benchmark table or real training."""
        return "table" if self.benchmark is not None else "training"

    @property
    def label(self) -> str:
        """A short name for the data searched, used in default run directory names."""
        return f"{self.benchmark.name}-{self.benchmark.dataset}" if self.benchmark else self.data.label

    def identity(self) -> dict[str, Any]:
        """What must match for a run to be continued (the budget may grow)."""
        return self.model_dump(mode="json", exclude={"budget", "executor", "device", "threads", "log", "mlflow_uri"})


def validation_message(exc: ValidationError, prefix: str = "") -> str:
    first = exc.errors()[0]
    loc = [str(p) if str(p).isprintable() else repr(str(p)) for p in first["loc"]]  # a key may hold a newline
    message = " ".join(first["msg"].removeprefix("Value error, ").split())
    tables = {"strategy": ("strategy", STRATEGIES), "space": ("search space", SPACES)}
    if loc and loc[0] in tables:  # a registry's union: name the part, not the union's tag
        kind, registry = tables[loc[0]]
        if first["type"] == "union_tag_invalid":
            message = f"unknown {kind} {first['ctx']['tag']!r}; choose from {', '.join(registry.names())}"
        elif len(loc) > 1 and loc[1] in registry:
            part = loc.pop(1)
            if first["type"] == "extra_forbidden":
                message = f"the {part} {kind} has no such setting"
    key = ".".join(filter(None, [prefix, *loc]))
    value = first.get("input")
    shown = f" (got {_clipped(repr(value))})" if not isinstance(value, dict) else ""
    return f"config {key}: {message}{shown}" if key else f"config: {message}"


def _clipped(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def validated(model: type[M], data: Any, prefix: str = "") -> M:
    """``model`` validated from ``data``, or a one-line NasforgeError naming the key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise NasforgeError(validation_message(exc, prefix)) from None


def build_config(data: dict[str, Any], stored: bool = False) -> SearchConfig:
    """The configuration from a file/flags tree; ``stored``: one a run saved (older shapes allowed)."""
    if stored and isinstance(data.get("strategy"), dict):
        data = {**data, "strategy": strategy_table(data["strategy"], stored=True)}
    if stored and isinstance(data.get("space"), dict):  # one flat table held every family's bounds before 0.2
        fields = SPACES.get(data["space"].get("family", DEFAULT_FAMILY)).Settings.model_fields
        data = {**data, "space": {k: v for k, v in data["space"].items() if k in fields}}
    return validated(SearchConfig, data)


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
