"""What a zero-cost proxy is, and the scorer that applies one to a run's genomes.

A proxy scores a freshly initialised network, higher meaning "expected to train to a better
accuracy" (Abdelfattah et al., ICLR 2021, "Zero-Cost Proxies for Lightweight NAS"). It costs
one forward (and backward) pass on a mini-batch of the task's training data, or on a
constant input for data-free proxies, instead of a training run.

Determinism: every genome is built under the same torch seed (derived from the run seed)
inside a forked RNG, on a mini-batch the run seed picks, so its score depends only on the
genome and the run, not on what was scored before; the search's own random streams are not
touched. Modules here import torch only when they score (the CLI lists the proxies in
``--help``, which must start without torch).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import NasforgeError
from ..registry import Registry

if TYPE_CHECKING:
    import torch

    from ..data import Task
    from ..spaces import Genome, SearchSpace

NO_PROXY = "none"
BATCH = 64  # rows of the training data a data-dependent proxy sees
PROBES = 8  # genomes a proxy is tried on before a run is written


class Proxy:
    """Subclasses register with ``@PROXIES.register``: ``name`` is what users type."""

    name: ClassVar[str]
    data_free: ClassVar[bool] = False  # scores without the task's data (so also in table mode)
    summary: ClassVar[str] = ""

    def score(self, model: torch.nn.Module, batch: torch.Tensor) -> float:
        """The score of ``model`` (freshly initialised), higher is better. ``batch``: rows of
        the training inputs; for a data-free proxy, one input of the right shape (its values
        are the proxy's to choose)."""
        raise NotImplementedError

    def check(self, models: list[torch.nn.Module], family: str) -> None:
        """Raise NasforgeError when this proxy cannot score networks like ``models`` (sampled
        from the run's space) at all."""


PROXIES: Registry[type[Proxy]] = Registry("proxy", "nasforge.proxies")


def proxy_names() -> list[str]:
    return [NO_PROXY, *PROXIES.names()]


class ProxyScorer:
    """``scorer(genome)``: the proxy's score of the genome's network for this run, remembered
    per genome. A score that is not a finite number (or a network the proxy fails on) is
    NaN: strategies rank it below every other and the trial's ``info`` says so."""

    def __init__(self, proxy: Proxy, build: Callable[[Genome], torch.nn.Module], batch: torch.Tensor, seed: int):
        self.proxy, self.build, self.batch, self.seed = proxy, build, batch, seed
        self.scores: dict[str, float] = {}
        self.errors: dict[str, str] = {}

    @property
    def name(self) -> str:
        return self.proxy.name

    def __call__(self, genome: Genome) -> float:
        key = genome.id
        if key not in self.scores:
            self.scores[key] = self._score(genome)
        return self.scores[key]

    def _score(self, genome: Genome) -> float:
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            try:
                value = float(self.proxy.score(self.build(genome), self.batch))
            except (RuntimeError, ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
                self.errors[genome.id] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]
                return math.nan
        return value if math.isfinite(value) else math.nan

    def note(self, genome: Genome) -> dict[str, Any] | None:
        """What a trial's ``info`` records about the genome's score (None: it was not scored)."""
        if genome.id not in self.scores:
            return None
        value = self.scores[genome.id]
        if math.isnan(value):
            return {"name": self.name, "score": None, "note": "not a number, ranked worst"
                    + (f" ({self.errors[genome.id]})" if genome.id in self.errors else "")}
        return {"name": self.name, "score": value}


def rank_key(value: float) -> float:
    """A score as strategies sort it: NaN below everything."""
    return -math.inf if math.isnan(value) else value


TABLE_INPUTS = {"cifar10": (3, 32, 32), "cifar100": (3, 32, 32), "imagenet": (3, 16, 16)}


def make_scorer(name: str, space: SearchSpace, task: Task | None, seed: int,
                table_dataset: str | None = None) -> ProxyScorer | None:
    """The scorer of proxy ``name`` for a run (None for ``none``); a proxy that cannot run on
    this space or task is a one-line NasforgeError, raised before anything is written."""
    if name == NO_PROXY:
        return None
    import torch

    proxy = PROXIES.get(name)()
    if task is None:  # a benchmark table: the real NAS-Bench-201 network, no data
        from ..evaluators.table import N_CLASSES, dataset_name
        from ..spaces.nb201 import BENCH_CELLS, BENCH_CHANNELS

        if not proxy.data_free:
            raise NasforgeError(f"the {name} proxy needs training data and a benchmark table has none; "
                                f"use a data-free one: {', '.join(n for n in PROXIES.names() if PROXIES.get(n).data_free)}")
        dataset = dataset_name(table_dataset or "cifar10")
        shape, classes = TABLE_INPUTS[dataset], N_CLASSES[dataset]

        def build(g: Genome) -> torch.nn.Module:
            return g.build(shape, classes, BENCH_CHANNELS, BENCH_CELLS)

        batch = torch.ones((1, *shape))
    else:
        shape, classes = tuple(task.input_shape), task.n_outputs

        def build(g: Genome) -> torch.nn.Module:
            return g.build(shape, classes)

        rows = np.random.default_rng([seed, 7]).permutation(len(task.X_train))[:BATCH]
        # distinct rows only: two equal inputs would make naswot's kernel singular for every network
        batch = torch.ones((1, *shape)) if proxy.data_free else torch.unique(task.X_train[np.sort(rows)], dim=0)
    scorer = ProxyScorer(proxy, build, batch, seed)
    probe_rng = np.random.default_rng([seed, 11])
    proxy.check([build(space.sample(probe_rng)) for _ in range(PROBES)], space.name)
    return scorer
