"""EB-LNAST's upper level (SPEC §3): evolve MLP architectures for compactness under a
performance target set by the lower level.

The lower level (gradient, differential evolution of the weights, or DE then gradient) is
the evaluator's ``train.method``; this strategy only sees its metrics. The upper level
minimises (**ours**; the paper's formula is not public)::

    F(a) = params(a) / params_max + rho * max(0, tau - perf(a))

``perf`` is the lower level's validation score (``val_acc`` or ``val_f1``; ``val_acc`` is R² on a
regression, see :func:`perf_key`), ``tau`` a target:
fixed, or by default the best ``perf`` seen so far minus ``tolerance``. With ``rho`` large
(10), a network that misses the target by one point loses to any network that meets it
unless that one is over a tenth of ``params_max``: among networks meeting tau, the smallest wins.

Since tau moves as better networks appear, F is never cached: the strategy keeps each
member's (params, perf) from the metrics it was told and re-scores everyone under the
current tau at every selection.

The evolutionary algorithm is a generational GA with (mu + lambda) survival (**ours**):
generation 0 is ``population`` random genomes; every next generation is ``population``
children, each from a tournament on F: with ``crossover_rate`` a one-point crossover of two
winners' layer lists (then mutated with ``mutation_rate``), otherwise a mutation of one winner
by the space's operators (a plain copy would only repeat its parent); parents and children compete and
the ``population`` lowest-F survive. A child that repeats an architecture already asked is
mutated again (bounded) so the budget is not spent retraining a known network. All random
choices come from ``self.rng``, so replaying the same tells gives the same asks (resume).

With several objectives (``--objectives``) the user's objectives replace F: tournaments and
(mu + lambda) survival rank by Pareto rank, then crowding distance (NSGA-II). Members over
the user's limits lose to members within them in both modes.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ..data.targets import quality_text, score_key
from ..errors import InvalidGenome, NasforgeError
from ..flags import flag
from ..spaces import MLPGenome, MLPSpace, SearchSpace, genome_from_dict
from .base import STRATEGIES, Proposal, Strategy, StrategySettings
from .ga import (
    Member,
    Seen,
    keyed_tournament,
    mu_plus_lambda,
    pareto_select,
    rank_key,
    ranked,
    selection_keys,
    tournament,
)


class BilevelSettings(StrategySettings):
    """The upper level's knobs (the ``[strategy]`` table with ``name = "bilevel"``)."""

    name: Literal["bilevel"] = "bilevel"
    population_size: int | None = Field(default=None, ge=2, le=10000, json_schema_extra=flag("--population"),
                                        description="members per generation; default budget/5 between 4 and 30")
    rho: float = Field(default=10.0, ge=0, description="weight of the performance shortfall below tau")
    tolerance: float = Field(default=0.01, ge=0, le=1, description="tau = best perf seen - tolerance")
    tau: float | None = Field(default=None, ge=0, le=1, description="a fixed target instead of the moving one")
    perf_metric: Literal["val_acc", "val_f1"] = "val_acc"
    params_max: int | None = Field(default=None, ge=1, description="normaliser; default the space's largest MLP")
    mutation_rate: float = Field(default=0.9, ge=0, le=1,
                                 description="chance a crossover child is also mutated (other children always are)")
    crossover_rate: float = Field(default=0.3, ge=0, le=1, description="chance a child is a crossover of two parents")
    tournament_size: int = Field(default=2, ge=1, le=1000)


def upper_objective(params: float, perf: float, *, params_max: float, rho: float, tau: float | None) -> float:
    """F = params/params_max + rho * max(0, tau - perf); no target yet (tau None) means no penalty."""
    shortfall = 0.0 if tau is None else max(0.0, tau - perf)
    return params / params_max + rho * shortfall


def default_population(budget: int) -> int:
    """A fifth of the budget, between 4 and 30: enough generations for selection to act."""
    return int(min(30, max(4, budget // 5)))


def largest_params(space: MLPSpace) -> int:
    """Parameters of the space's largest MLP (every layer at the widest), capped by max_params."""
    widths = [space.input_dim, *[space.widths[-1]] * space.max_layers, space.n_classes]
    n = sum((a + 1) * b for a, b in zip(widths, widths[1:]))
    return min(n, space.max_params) if space.max_params else n


@STRATEGIES.register
class BilevelEvolution(Strategy):
    name = "bilevel"
    Settings = BilevelSettings
    legacy_section = "bilevel"

    @classmethod
    def summary(cls, records: Sequence[Any], settings: BilevelSettings) -> str | None:
        if any(len(_get(r, "values") or ()) > 1 for r in records):
            return None  # a Pareto search: the user's objectives replaced F, the front is the answer
        return trade_off_report(records, settings)

    @classmethod
    def check_space(cls, space: SearchSpace) -> None:
        if not isinstance(space, MLPSpace):
            raise NasforgeError("the bilevel strategy evolves MLPs: use the mlp search space")

    def __init__(self, space: SearchSpace, rng: np.random.Generator, budget: int,
                 settings: BilevelSettings | None = None):
        super().__init__(space, rng, budget, settings)
        self.space: MLPSpace = space
        self.population_size = self.settings.population_size or default_population(budget)
        self.params_max = self.settings.params_max or largest_params(space)
        self.population: list[Member] = []  # survivors of the last selection
        self.pool: list[Member] = []  # told since the last selection
        self.queue: list[Proposal] = []  # the current generation's asks not yet handed out
        self.generation = -1
        self.best_perf = -math.inf
        self.seen = Seen()
        self.tells = 0

    # --- the objective ---
    @property
    def tau(self) -> float | None:
        if self.settings.tau is not None:
            return self.settings.tau
        return self.best_perf - self.settings.tolerance if math.isfinite(self.best_perf) else None

    def objective(self, params: float, perf: float) -> float:
        """F under the current tau."""
        return upper_objective(params, perf, params_max=self.params_max, rho=self.settings.rho, tau=self.tau)

    def _key(self, m: Member) -> tuple[float, ...]:
        """Within the user's limits first, then the common tie rule on -F: lower F, then fewer
        parameters, then the earlier tell."""
        return (-m.violation, *rank_key(-self.objective(m.params, m.perf), m.params, m.order))

    def ranked(self) -> list[Member]:
        """Every member alive (survivors and new arrivals), best F first, re-scored under today's tau."""
        return ranked(self.population + self.pool, self._key)

    def best(self) -> Member | None:
        return next(iter(self.ranked()), None)

    # --- ask / tell ---
    def ask(self) -> Proposal:
        if not self.queue:
            self._next_generation()
        proposal = self.queue.pop(0)
        self.seen.add(proposal.genome)
        return proposal

    def tell(self, proposal: Proposal, fitness: float | None, metrics: dict[str, Any] | None = None) -> None:
        perf = (metrics or {}).get(perf_key(self.settings.perf_metric, metrics or {}))
        if fitness is None or perf is None or not math.isfinite(float(perf)):
            return  # a failed trial joins nothing
        genome = proposal.genome
        assert isinstance(genome, MLPGenome)
        params = (metrics or {}).get("params")
        if params is None:
            params = genome.n_params(self.space.input_dim, self.space.n_classes)
        trial = proposal.trial if proposal.trial is not None else self.tells
        self.pool.append(Member.told(self.goal, genome, float(fitness), trial, metrics, params=int(params),
                                     order=self.tells, perf=float(perf)))
        self.best_perf = max(self.best_perf, float(perf))
        self.tells += 1

    # --- the GA ---
    def _next_generation(self) -> None:
        self.generation += 1
        if self.goal.multi:
            pool = self.population + self.pool
            self.population = pareto_select(pool, self.population_size, selection_keys(pool, multi=True))
        else:
            self.population = mu_plus_lambda(self.population, self.pool, self.population_size, self._key)
        self.pool = []
        self.seen.start_batch()
        info = {"generation": self.generation, "params_max": self.params_max}
        for _ in range(self.population_size):
            if self.population:
                proposal = self._child(info)
            else:  # the start, or every member failed so far: random genomes, new if the space allows
                genome = self.seen.novel(self.sample_initial(), lambda _: self.sample_initial(), 50)
                proposal = Proposal(genome, info={**info, "initial": True})
            self.seen.keep(proposal.genome)
            self.queue.append(proposal)

    def _tournament(self) -> Member:
        if self.goal.multi:
            keys = selection_keys(self.population, multi=True)
            return keyed_tournament(self.population, keys, self.settings.tournament_size, self.rng)
        return tournament(self.population, self.settings.tournament_size, self.rng, self._key)

    def _child(self, info: dict[str, Any]) -> Proposal:
        first = self._tournament()
        genome: MLPGenome = first.genome
        parents: tuple[int, ...] = (first.trial,)
        ops: list[str] = []
        if len(self.population) > 1 and self.rng.random() < self.settings.crossover_rate:
            second = self._tournament()
            crossed = self.space.crossover(first.genome, second.genome, self.rng)
            if crossed is not None:
                genome, parents = crossed, (first.trial, second.trial)
                ops.append("crossover")
        if not ops or self.rng.random() < self.settings.mutation_rate:
            genome = self._mutate(genome, ops)
        genome = self.seen.novel(genome, lambda g: self._mutate(g, ops), 20)  # a known architecture mutates further
        return Proposal(genome, parents=parents, operator="+".join(ops) or "copy", info=info)

    def _mutate(self, genome: MLPGenome, ops: list[str]) -> MLPGenome:
        try:
            child, op = self.space.mutate(genome, self.rng)
        except InvalidGenome:
            return genome
        assert isinstance(child, MLPGenome)
        ops.append(op)
        return child

    def describe(self) -> str:
        s = self.settings
        tau = f"{s.tau:g}" if s.tau is not None else f"best {s.perf_metric} - {s.tolerance:g}"
        return (f"bi-level evolution (GA, P={self.population_size}, tournament {s.tournament_size}, "
                f"F = params/{self.params_max} + {s.rho:g} * max(0, tau - {s.perf_metric}), tau = {tau})")


# --- reading a finished search: "the result states the trade-off" ---
def _get(record: Any, key: str, default: Any = None) -> Any:
    """Records are the study's TrialRecords or plain dicts with the same keys."""
    if isinstance(record, Mapping):
        return record.get(key, default)
    return getattr(record, key, default)


def perf_key(metric: str, metrics: Mapping[str, Any]) -> str:
    """The metric ``perf`` reads: ``val_acc`` stands for the task's validation score, which is
    R² (``val_r2``) on a regression."""
    return score_key(metrics, "val") if metric == "val_acc" else metric


def _usable(records: Sequence[Any], metric: str) -> list[Any]:
    out = []
    for r in records:
        m = _get(r, "metrics") or {}
        key = perf_key(metric, m)
        if _get(r, "state", "complete") == "complete" and m.get(key) is not None and math.isfinite(float(m[key])):
            out.append(r)
    return out


def _number(record: Any) -> int:
    n = _get(record, "number")
    return int(n) if n is not None else 0


@dataclass(frozen=True)
class TradeOff:
    """F's constants at the end of a search: the final tau and params_max."""

    tau: float
    params_max: float
    rho: float
    metric: str

    def F(self, record: Any) -> float:
        m = _get(record, "metrics")
        return upper_objective(m["params"], m[self.metric], params_max=self.params_max, rho=self.rho, tau=self.tau)


def final_trade_off(records: Sequence[Any], settings: BilevelSettings | None = None,
                    params_max: int | None = None) -> TradeOff:
    """tau and params_max as the strategy would have them after its last tell.

    params_max: the argument, else the settings', else the one the strategy stored in each
    proposal's ``info``, else the largest network in the records.
    """
    s = settings or BilevelSettings()
    ok = _usable(records, s.perf_metric)
    if not ok:
        raise NasforgeError("no completed trial to choose from")
    metric = perf_key(s.perf_metric, _get(ok[0], "metrics"))
    tau = s.tau if s.tau is not None else max(_get(r, "metrics")[metric] for r in ok) - s.tolerance
    stored = [(_get(r, "info") or {}).get("params_max") for r in ok]
    pmax = params_max or s.params_max or next((p for p in stored if p), None) or max(
        _get(r, "metrics")["params"] for r in ok)
    return TradeOff(float(tau), float(pmax), s.rho, metric)


def chosen(records: Sequence[Any], settings: BilevelSettings | None = None, params_max: int | None = None) -> Any:
    """The bi-level search's answer: min F under the final tau (ties: fewer params, earlier trial)."""
    s = settings or BilevelSettings()
    t = final_trade_off(records, s, params_max)
    return max(_usable(records, s.perf_metric), key=lambda r: rank_key(-t.F(r), _get(r, "metrics")["params"], _number(r)))


def most_accurate(records: Sequence[Any], settings: BilevelSettings | None = None) -> Any:
    """The best network by the validation score (ties: fewer params, earlier trial); never by test."""
    metric = (settings or BilevelSettings()).perf_metric
    return max(_usable(records, metric), key=lambda r: rank_key(
        _get(r, "metrics")[perf_key(metric, _get(r, "metrics"))], _get(r, "metrics")["params"], _number(r)))


def _describe(record: Any, label: str, t: TradeOff) -> str:
    m = _get(record, "metrics")
    try:
        arch = genome_from_dict(_get(record, "genome")).summary()
    except (InvalidGenome, TypeError, AttributeError):
        arch = "?"
    test = quality_text(m, ("test",)).replace("   ", ", ") or "no test metrics"
    return (f"  {label + ':':<26} trial {_number(record)} {arch}: {int(m['params']):,} parameters, "
            f"{t.metric} {m[t.metric]:.4f}, {test}, F {t.F(record):.4f}")


def trade_off_report(records: Sequence[Any], settings: BilevelSettings | None = None,
                     params_max: int | None = None) -> str:
    """A few lines for the end of a bi-level search: the chosen network vs the most accurate."""
    s = settings or BilevelSettings()
    t = final_trade_off(records, s, params_max)
    pick, top = chosen(records, s, params_max), most_accurate(records, s)
    lines = [f"bi-level trade-off: F = params/{t.params_max:,.0f} + {t.rho:g} * max(0, {t.tau:.4f} - {t.metric})"
             + ("" if s.tau is not None else f"  (tau = best {t.metric} - {s.tolerance:g})"),
             _describe(pick, "chosen (min F)", t),
             _describe(top, f"most accurate ({t.metric})", t)]
    if pick is top or _number(pick) == _number(top) and _get(pick, "genome") == _get(top, "genome"):
        lines.append("  the most accurate network is also the chosen one")
    else:
        mp, mt = _get(pick, "metrics"), _get(top, "metrics")
        saved = 100.0 * (1.0 - mp["params"] / mt["params"]) if mt["params"] else 0.0
        test = score_key(mp, "test")
        diff = f"{100 * (mp[test] - mt[test]):+.2f} pp {test}, " if test in mp and test in mt else ""
        lines.append(f"  chosen vs most accurate: {saved:.1f} % fewer parameters, {diff}"
                     f"{100 * (mp[t.metric] - mt[t.metric]):+.2f} pp {t.metric}")
    return "\n".join(lines)


__all__ = ["BilevelEvolution", "BilevelSettings", "Member", "TradeOff", "upper_objective", "largest_params",
           "default_population", "final_trade_off", "chosen", "most_accurate", "trade_off_report"]
