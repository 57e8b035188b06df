"""Predictor-guided search, after BANANAS (White et al. 2021): train only what a learned
predictor expects to be good (issue #20).

The first ``initial`` candidates are drawn as evolution's first population is
(:meth:`~nasforge.strategies.base.Strategy.sample_initial`, so a zero-cost proxy picks them
when the run has one). After that, every ask:

1. refits its surrogate on every genome the run has been told about, encoded by its
   family's encoding (:mod:`nasforge.spaces.encodings`), when a tell has arrived since the
   last fit: an ensemble of small regressors (:mod:`.surrogate`, BANANAS' choice and the
   default) or a Gaussian process (:mod:`.gaussian_process`, ``--surrogate gp``, which
   knows where it has no data); with ``--targets ranks`` it learns each objective's rank
   among the evaluated genomes rather than its value (on NAS-Bench-201 a few near-zero
   cells otherwise dominate a squared error that should be spent on the top);
2. makes ``candidates`` new genomes: mutations (one to three edits) of the ``parents`` best
   members, and a share ``fresh`` of plain samples;
3. scores them by acquisition over the ensemble (:mod:`.acquisition`: independent Thompson
   sampling or UCB) and proposes the best one not asked before in this run.

Several objectives: the ensemble predicts every objective, except the parameter count,
which is computed when the family can count it; candidates are chosen by Pareto rank, then
crowding, of their acquisition vectors. Asks that run ahead of tells (workers) never
repeat a genome: every asked one is excluded. Exact resume: the ensemble's seeds come from
the run's generator and the size of its training set, so replaying the stored asks and
tells refits the same ensembles and proposes the same genomes. The seconds spent fitting
and predicting are in each proposal's ``predict_s``; predictions that were not numbers
count as the worst and are counted in ``nan_predictions``.
"""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from .. import pareto
from ..flags import flag
from ..spaces.encodings import encode, encoder_for
from .acquisition import Acquisition, acquire
from .base import STRATEGIES, Proposal, Strategy, StrategySettings
from .ga import Member, Seen, selection_keys, told_member
from .gaussian_process import GaussianProcess
from .surrogate import Ensemble

if TYPE_CHECKING:
    from ..spaces import Genome, SearchSpace

MAX_EDITS = 3  # a candidate is one to three mutations away from its parent
Surrogate = Literal["ensemble", "gp"]
Targets = Literal["values", "ranks"]


class PredictorSettings(StrategySettings):
    name: Literal["predictor"] = "predictor"
    initial: int = Field(default=10, ge=2, le=10000, description=(
        "random (or proxy-picked) candidates trained before the predictor chooses (BANANAS: 10)"),
        json_schema_extra=flag("--initial"))
    surrogate: Surrogate = Field(default="ensemble", description=(
        "ensemble: small MLPs on bootstrap resamples (BANANAS); gp: a Gaussian process, whose spread grows away "
        "from the evaluated genomes (best with --acquisition ucb on longer searches)"),
        json_schema_extra=flag("--surrogate"))
    ensemble: int = Field(default=5, ge=1, le=50, description=(
        "regressors in the ensemble (BANANAS: 5); with the gp surrogate, posterior quantiles per candidate"),
        json_schema_extra=flag("--ensemble"))
    hidden: int = Field(default=32, ge=2, le=1024, description="units in each of a regressor's two hidden layers")
    candidates: int = Field(default=100, ge=1, le=100000, description="candidates scored per ask",
                            json_schema_extra=flag("--candidates"))
    parents: int = Field(default=10, ge=1, le=10000, description="best members whose mutations are candidates")
    fresh: float = Field(default=0.1, ge=0.0, le=1.0, description="share of candidates sampled afresh, not mutated")
    acquisition: Acquisition = Field(default="its", description=(
        "its: independent Thompson sampling (one random member per candidate); ucb: mean + beta * sd"),
        json_schema_extra=flag("--acquisition"))
    beta: float = Field(default=1.0, ge=0.0, le=100.0, description="UCB's weight on the ensemble's spread")
    targets: Targets = Field(default="values", description=(
        "what the surrogate learns of each objective: values, or ranks (each genome's rank among those "
        "evaluated, so the ordering among the best counts as much as the gap to the worst)"),
        json_schema_extra=flag("--targets"))
    proxy_feature: bool = Field(default=False, description=(
        "with --proxy: the proxy's score of each genome is one more input of the regressors (every candidate "
        "is then scored by the proxy, a forward pass each)"), json_schema_extra=flag("--proxy-feature", const=True))


def ranks(Y: np.ndarray) -> np.ndarray:
    """Each column's values replaced by their rank among the column's rows divided by the rows
    (1/n for the lowest, 1 for the highest; equal values share their mean rank)."""
    from scipy.stats import rankdata  # here, not at the top: scipy.stats takes a second to import

    return rankdata(Y, axis=0) / len(Y)


@STRATEGIES.register
class PredictorSearch(Strategy):
    name = "predictor"
    Settings = PredictorSettings

    @classmethod
    def check_space(cls, space: SearchSpace) -> None:
        encoder_for(space)

    def __init__(self, space: SearchSpace, rng: np.random.Generator, budget: int,
                 settings: PredictorSettings | None = None):
        super().__init__(space, rng, budget, settings)
        self.encoder = encoder_for(space)
        self.seed = int(rng.integers(2**31 - 2**16))
        self.members: list[Member] = []
        self.seen = Seen()
        self.initial_open = 0  # initial proposals out or told
        s = self.settings
        self.model = (GaussianProcess(s.ensemble, self.seed) if s.surrogate == "gp"
                      else Ensemble(s.ensemble, s.hidden, self.seed))
        self.fitted_on = 0  # members the ensemble was last fitted on (0: never)
        self.proxy_floor = 0.0  # the lowest compressed proxy score seen (NaN scores go below it)

    @property
    def initial_size(self) -> int:
        return self.settings.initial

    def ask(self) -> Proposal:
        if self.initial_open < self.settings.initial or len(self.members) < 2:
            self.initial_open += 1
            genome = self.seen.novel(self.sample_initial(), lambda _: self.sample_initial(), 20)
            return self._proposal(genome, info={"initial": True})
        started = time.perf_counter()
        if self.fitted_on != len(self.members):
            self._fit()
        pool = self._candidates()
        if not pool:  # nothing new nearby: the space looks exhausted; the study ends such a run
            return self._proposal(self.space.sample(self.rng), info={"exhausted": True})
        scores, nan = acquire(self._predict([g for g, _, _ in pool]), self.settings.acquisition, self.settings.beta,
                              self.rng)
        if self.goal.multi:
            keys = pareto.rank_keys([tuple(s) for s in scores])
            best = max(range(len(pool)), key=lambda i: keys[i])
        else:
            best = int(np.argmax(scores[:, 0]))
        genome, parent, operator = pool[best]
        predicted = ([m.unranked(float(x)) for m, x in zip(self.goal.measures, scores[best])] if self.goal.multi
                     else [float(scores[best][0])])
        info: dict[str, Any] = {"predicted": [float(f"{x:.10g}") for x in predicted], "candidates": len(pool),
                                "predict_s": round(time.perf_counter() - started, 4)}
        if nan:
            info["nan_predictions"] = nan
        return self._proposal(genome, parents=() if parent is None else (parent.trial,), operator=operator, info=info)

    def _proposal(self, genome: Genome, **fields: Any) -> Proposal:
        self.seen.add(genome)
        return Proposal(genome, **fields)

    def _fit(self) -> None:
        """Refit the ensemble on every member told so far (targets: the objectives to maximise)."""
        self.fitted_on = len(self.members)
        X = self._features([m.genome for m in self.members])
        Y = np.array([self._target(m) for m in self.members], dtype=float)
        self.model.fit(X, ranks(Y) if self.settings.targets == "ranks" else Y)

    def _features(self, genomes: list[Genome]) -> np.ndarray:
        """The family's encoding, and with ``proxy_feature`` the proxy score, compressed by
        sign(x) log(1 + |x|) (synflow spans thirty orders of magnitude); a score that is not a
        number gets -1 below the lowest finite one the proxy has given in this run."""
        X = encode(self.space, genomes)
        if not (self.settings.proxy_feature and self.proxy is not None):
            return X
        raw = np.array([self.proxy(g) for g in genomes], dtype=float)
        column = np.sign(raw) * np.log1p(np.abs(raw))
        finite = [v for v in column if math.isfinite(v)]
        self.proxy_floor = min([self.proxy_floor, *finite]) if finite else self.proxy_floor
        column[~np.isfinite(column)] = self.proxy_floor - 1.0
        return np.hstack([X, column[:, None]])

    def _target(self, member: Member) -> tuple[float, ...]:
        return member.point if self.goal.multi and member.point else (member.fitness,)

    def _predict(self, genomes: list[Genome]) -> np.ndarray:
        """(members, candidates, objectives), objectives to maximise; a parameter count the
        family can compute replaces its prediction in every member."""
        predictions = self.model.predict(self._features(genomes))
        if self.goal.multi and self.encoder.params is not None:
            for k, measure in enumerate(self.goal.measures):
                if measure.metric == "params":
                    predictions[:, :, k] = [measure.ranked(float(self.encoder.params(self.space, g))) for g in genomes]
        return predictions

    def _candidates(self) -> list[tuple[Genome, Member | None, str]]:
        """New genomes with their parent (None: sampled) and how they were made."""
        keys = selection_keys(self.members, self.goal.multi)
        order = sorted(range(len(self.members)), key=lambda i: keys[i], reverse=True)
        parents = [self.members[i] for i in order[: self.settings.parents]]
        pool: list[tuple[Genome, Member | None, str]] = []
        self.seen.start_batch()
        for _ in range(self.settings.candidates * 3):  # bounded: a small space runs out of new genomes
            if len(pool) >= self.settings.candidates:
                break
            if self.rng.random() < self.settings.fresh:
                genome, parent, operator = self.space.sample(self.rng), None, "random"
            else:
                parent = parents[int(self.rng.integers(len(parents)))]
                genome, operator = parent.genome, []
                for _ in range(1 + int(self.rng.integers(MAX_EDITS))):
                    genome, op = self.space.mutate(genome, self.rng)
                    operator.append(op)
                operator = "+".join(operator)
            if self.seen.is_new(genome):
                self.seen.keep(genome)
                pool.append((genome, parent, operator))
        return pool

    def tell(self, proposal: Proposal, fitness: float | None, metrics: dict | None = None) -> None:
        member = told_member(self, proposal, fitness, metrics, order=len(self.members))
        if member is not None and all(math.isfinite(x) for x in self._target(member)):
            self.members.append(member)

    def describe(self) -> str:
        s = self.settings
        model = "a Gaussian process" if s.surrogate == "gp" else f"ensemble of {s.ensemble} MLPs"
        targets = ", on ranks" if s.targets == "ranks" else ""
        return (f"predictor ({model}{targets}, {s.acquisition}, {s.candidates} candidates per ask, "
                f"{s.initial} initial)")
