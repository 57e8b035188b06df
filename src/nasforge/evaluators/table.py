"""Benchmark mode: evaluate NAS-Bench-201 cells by table lookup instead of training.

A tabular benchmark lets a search method be compared over many seeds in seconds: the
"evaluation" of a cell is the accuracy recorded for it in a CSV with one row per cell
(columns ``arch`` and ``<dataset>-val`` / ``<dataset>-test`` in percent; the shared file is
the 12-epoch NAS-Bench-201 table). As with real training, only the validation column may
drive a search; the test column is reported beside it and never selects anything.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..errors import NasforgeError, TrialFailed
from ..flags import flag
from ..spaces.base import Genome
from ..spaces.nb201 import NB201Genome
from .base import EVALUATORS, Evaluation

if TYPE_CHECKING:
    import pandas as pd

    from ..config import SearchConfig
    from ..data import Task
    from ..spaces import SearchSpace

# Dataset name -> column prefix, and the class count of the benchmark's network for each.
DATASETS: dict[str, str] = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet": "imagenet"}
ALIASES: dict[str, str] = {"imagenet16-120": "imagenet", "imagenet16": "imagenet", "imagenet16_120": "imagenet",
                           "cifar-10": "cifar10", "cifar-100": "cifar100"}
N_CLASSES: dict[str, int] = {"cifar10": 10, "cifar100": 100, "imagenet": 120}
COLUMNS = ("val", "test")


class BenchmarkSettings(BaseModel):
    """Tabular benchmark mode: accuracies are looked up instead of trained (NAS-Bench-201)."""

    model_config = ConfigDict(extra="forbid")
    family: ClassVar[str] = "nb201"  # the space whose genomes the table scores
    name: str = Field(default="nb201", pattern="^nb201$", json_schema_extra=flag("--benchmark"), description=(
        "tabular benchmark mode: nb201 (accuracies looked up, not trained)"))
    file: str = Field(json_schema_extra=flag("--bench-file"), description="the benchmark table, e.g. "
                      "../shared/data/nb201_12epoch.csv")
    dataset: str = Field(default="cifar10", json_schema_extra=flag("--bench-dataset"), description=(
        "cifar10, cifar100 or imagenet16-120"))
    seconds_per_query: float = Field(default=0.0, ge=0, json_schema_extra=flag("--bench-seconds"), description=(
        "simulated training seconds per query"))


def _numeric(column: pd.Series) -> np.ndarray:
    import pandas as pd

    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)


class NotInTable(NasforgeError):
    """A cell the table has no row for (possible with a user's partial table)."""


def dataset_name(name: str) -> str:
    """Canonical dataset name for ``name`` (case-insensitive, aliases allowed)."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in DATASETS:
        raise NasforgeError(f"unknown benchmark dataset {name!r}; choose from {', '.join(DATASETS)} "
                            "(imagenet16-120 is an alias of imagenet)")
    return key


class NB201Table:
    """Validation and test accuracy (%) of NAS-Bench-201 cells, read from a CSV file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise NasforgeError(f"benchmark table {self.path} does not exist (expected a NAS-Bench-201 CSV "
                                "with columns arch, cifar10-val, cifar10-test, ...)")
        import pandas as pd  # here, not at import: the configuration reads this module's settings

        try:
            frame = pd.read_csv(self.path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise NasforgeError(f"benchmark table {self.path} is not a readable CSV: {exc}") from None
        self.rows: dict[tuple[str, ...], int] = {}
        self.archs: list[NB201Genome] = []
        self._read_archs(frame)
        self.values: dict[tuple[str, str], np.ndarray] = {}
        self._read_accuracies(frame)

    def _read_archs(self, frame: pd.DataFrame) -> None:
        if "arch" not in frame.columns:
            raise NasforgeError(f"benchmark table {self.path} has no 'arch' column; columns: {list(frame.columns)}")
        if frame.empty:
            raise NasforgeError(f"benchmark table {self.path} has no rows")
        for line, text in enumerate(frame["arch"].tolist(), start=2):  # line 1 is the header
            try:
                genome = NB201Genome.from_string(text)
            except NasforgeError as exc:
                raise NasforgeError(f"{self.path} line {line}: {exc}") from None
            if genome.ops in self.rows:
                raise NasforgeError(f"{self.path} line {line}: cell {text} appears twice")
            self.rows[genome.ops] = len(self.archs)
            self.archs.append(genome)

    def _read_accuracies(self, frame: pd.DataFrame) -> None:
        for name, prefix in DATASETS.items():
            present = [c for c in COLUMNS if f"{prefix}-{c}" in frame.columns]
            if len(present) == 1:
                missing = next(c for c in COLUMNS if c not in present)
                raise NasforgeError(f"benchmark table {self.path} has {prefix}-{present[0]} but no {prefix}-{missing}")
            for column in present:
                header = f"{prefix}-{column}"
                values = _numeric(frame[header])
                bad = np.flatnonzero(~np.isfinite(values) | (values < 0) | (values > 100))
                if bad.size:
                    raise NasforgeError(f"{self.path} line {bad[0] + 2}: {header} must be a percentage in [0, 100], "
                                        f"got {frame[header].iloc[bad[0]]!r}")
                self.values[(name, column)] = values
        if not self.datasets:
            raise NasforgeError(f"benchmark table {self.path} has no accuracy columns; expected pairs like "
                                "cifar10-val, cifar10-test (also cifar100-*, imagenet-*)")

    @property
    def datasets(self) -> list[str]:
        return [name for name in DATASETS if (name, "val") in self.values]

    def __len__(self) -> int:
        return len(self.archs)

    def resolve_dataset(self, dataset: str) -> str:
        """Canonical name of ``dataset``, checked to have columns in this table."""
        name = dataset_name(dataset)
        if name not in self.datasets:
            raise NasforgeError(f"benchmark table {self.path} has no {name} columns; it has {', '.join(self.datasets)}")
        return name

    def lookup(self, genome: Genome, dataset: str) -> tuple[float, float]:
        """(validation %, test %) of ``genome`` on ``dataset``."""
        name = self.resolve_dataset(dataset)
        if not isinstance(genome, NB201Genome):
            raise NasforgeError(f"the NAS-Bench-201 table scores nb201 cells, not {genome.family!r} genomes")
        row = self.rows.get(genome.ops)
        if row is None:
            raise NotInTable(f"cell {genome.to_string()} is not in benchmark table {self.path}")
        return float(self.values[(name, "val")][row]), float(self.values[(name, "test")][row])

    def best(self, dataset: str, column: str = "test") -> tuple[NB201Genome, float]:
        """The cell with the highest ``column`` accuracy and that accuracy (%): the oracle a
        search's regret is measured against. Searches themselves must never call this."""
        if column not in COLUMNS:
            raise NasforgeError(f"column must be one of {COLUMNS}, got {column!r}")
        values = self.values[(self.resolve_dataset(dataset), column)]
        row = int(np.argmax(values))
        return self.archs[row], float(values[row])


@EVALUATORS.register
class TabularEvaluator:
    """The ``table`` evaluator: looks NAS-Bench-201 cells up instead of training them.

    Metrics: ``val_acc`` and ``test_acc`` (fractions), ``params`` (closed-form count of the
    benchmark's own network, C=16 and N=5 on 3-channel input, with this dataset's classes;
    costs microseconds), ``simulated_seconds`` (the configured cost of one query) and its
    running total, and ``queries`` (how many lookups this evaluator has answered). The
    shared table holds one training run per cell, so ``seed`` does not change the result.
    """

    name = "table"
    needs_task = False
    weights = None  # nothing is trained, so nothing is inherited

    @classmethod
    def from_config(cls, config: SearchConfig, task: Task | None, space: SearchSpace, out: Path) -> TabularEvaluator:
        bench = config.benchmark
        assert bench is not None, "the table evaluator needs the [benchmark] settings"
        return cls(NB201Table(bench.file), bench.dataset, bench.seconds_per_query)

    def learn(self, genome: Genome, evaluation: Evaluation) -> None:
        """Nothing to learn from a looked-up result."""

    def __init__(self, table: NB201Table, dataset: str, seconds_per_query: float = 0.0):
        if not seconds_per_query >= 0:
            raise NasforgeError(f"seconds_per_query must be >= 0, got {seconds_per_query}")
        self.table, self.dataset = table, table.resolve_dataset(dataset)
        self.seconds_per_query = float(seconds_per_query)
        self.queries = 0

    def evaluate(self, genome: Genome, seed: int) -> Evaluation:
        try:
            val, test = self.table.lookup(genome, self.dataset)
        except NotInTable as exc:
            raise TrialFailed(str(exc)) from None
        self.queries += 1
        assert isinstance(genome, NB201Genome)
        metrics: dict[str, Any] = {
            "val_acc": val / 100.0,
            "test_acc": test / 100.0,
            "params": genome.n_params(3, N_CLASSES[self.dataset]),
            "simulated_seconds": self.seconds_per_query,
            "total_simulated_seconds": self.seconds_per_query * self.queries,
            "queries": self.queries,
            "benchmark": f"nb201/{self.dataset}",
        }
        return Evaluation(metrics, {})
