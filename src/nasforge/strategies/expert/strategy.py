"""LEMONADE (Algorithm 1) as an ask/tell strategy.

- First ask: an initial genome. Rules designer: a small fixed net (``initial="small"``, the
  paper's "simple CNN") or a random one; LLM designer: the LLM is asked for a first network
  from the task alone (Algorithm 1, line 4), falling back to the same initial genome.
- Every later ask edits one told genome: the LAST evaluated one by default, as Algorithm 1
  modifies the model it just measured (``start_from="best"`` edits the fittest so far).
  Its metrics go through the expert system (:mod:`.rules`), the instructions through
  Algorithm 2 (:mod:`.conflicts`), and the survivors to the designer.
- A failed trial (fitness None: NaN loss, build error, ...) carries no metrics to reason
  about, so the next ask reverts to the best genome so far and reasons from its metrics;
  with no success yet it starts again from a random genome.
- If no instruction changes the genome (all targets met, or every edit leaves the space),
  the rule designer makes one random mutation so that the run keeps exploring.
- "Best" is the study's fitness (the combined metric CM when weights are given), which is
  what ``tell`` receives; the strategy itself only reads the metrics it is told. A told
  genome over the user's limits loses to every one within them.
- With several objectives (``--objectives``) the genome to edit is always on the Pareto
  front of what was told: the last one if it is on the front, else (and for
  ``start_from="best"``) the front member in the least crowded place (largest crowding
  distance, ties to the earlier), so the edits spread along the front.

The adaptive rule book (the default, :mod:`.adaptive`) changes what feeds this loop: the
priorities and thresholds follow the run's goal and its measured networks, instructions
are credited with their children's results, several random starts come first, the base is
the best network, at most two instructions are applied per edit, and an edit that would
repeat a known network escapes by random mutations. ``rulebook="paper"`` is the loop
described above, unchanged.

Randomness: ask number i uses ``default_rng([seed, i])`` with ``seed`` drawn once from the
strategy's rng, so the rules designer is deterministic and resumes by the default replay;
the LLM designer's replay adopts the stored genome and never calls the endpoint.
Everything the trial history shows goes into ``Proposal.info`` (plain JSON).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ... import pareto
from ...spaces import Genome, SearchSpace
from ..base import STRATEGIES, Proposal, Strategy
from ..ga import rank_key
from .adaptive import Credit, goal_thresholds, over_limits, run_thresholds
from .compliance import check_compliance
from .conflicts import resolve
from .designer import RuleDesigner, describe_change, instructable
from .llm import ChatClient, LLMDesigner
from .rules import Thresholds, combine, fire_rules
from .settings import ExpertSettings

ESCAPE_TRIES = 5  # adaptive rule book: tries per number of random mutations when an edit repeats a network


@dataclass(frozen=True)
class Told:
    trial: int | None
    genome: Genome
    fitness: float | None  # None: the trial failed
    metrics: dict[str, Any]


def _pairs(items: list[tuple[str, float]]) -> list[list[Any]]:
    return [[code, round(float(weight), 6)] for code, weight in items]


@STRATEGIES.register
class ExpertStrategy(Strategy):
    name = "expert"
    reads_speed = True  # its rules (and an LLM's prompt) read FPS and inference energy
    reads_train_fit = True  # and the train/validation gap (underfitting, overfitting)
    Settings = ExpertSettings
    legacy_section = "expert"
    uses_proxy = False  # it starts from one designed genome (a small net, or the LLM's), not from samples

    @classmethod
    def create(cls, space: SearchSpace, rng: np.random.Generator, budget: int, settings: ExpertSettings,
               task: str | None = None) -> ExpertStrategy:
        return cls(space, rng, budget, settings, task=task)

    @classmethod
    def check_space(cls, space: SearchSpace) -> None:
        instructable(space)  # a space whose operators carry out the instructions

    def __init__(self, space: SearchSpace, rng: np.random.Generator, budget: int,
                 settings: ExpertSettings | None = None, task: str | None = None):  # fmt: skip
        super().__init__(space, rng, budget, settings)
        self.designer = RuleDesigner(space)
        self.n_classes: int | None = getattr(space, "n_classes", None)
        self.seed = int(rng.integers(2**62))
        self.asks = 0
        self.told: list[Told] = []
        self.credit = Credit()  # the adaptive rule book: what each instruction's children did
        self.asked: set[str] = set()  # ids of every genome proposed so far
        self.llm: LLMDesigner | None = None
        s = self.settings
        if s.designer == "llm":
            client: Any
            if s.llm_local:
                from .local_llm import LocalChatClient

                client = LocalChatClient(s.llm_local, timeout=s.llm_timeout, temperature=s.llm_temperature,
                                         max_tokens=s.llm_max_tokens, grammar=s.llm_grammar, seed=self.seed % 2**31)
            else:
                assert s.llm_url and s.llm_model  # ExpertSettings checks this
                client = ChatClient(s.llm_url, s.llm_model, os.environ.get(s.llm_key_env) or None,
                                    timeout=s.llm_timeout, retries=s.llm_retries, temperature=s.llm_temperature)
            self.llm = LLMDesigner(space, client, s.repair_attempts, task)

    # --- state ---
    def tell(self, proposal: Proposal, fitness: float | None, metrics: dict[str, Any] | None = None) -> None:
        ok = fitness is not None and math.isfinite(fitness)
        told = Told(proposal.trial, proposal.genome, float(fitness) if ok else None, dict(metrics or {}))
        if self.settings.rulebook == "adaptive":
            self._learn(proposal, told)
        self.told.append(told)

    def _learn(self, proposal: Proposal, child: Told) -> None:
        """Credit the instructions that made ``child`` with whether it beat its parent."""
        info = proposal.info or {}
        codes = list(info.get("applied", [])) + list(info.get("enforced", []))
        codes += list((info.get("compliance") or {}).get("followed", []))
        parent = next((t for t in self.told if proposal.parents and t.trial == proposal.parents[0]), None)
        if not codes or parent is None or parent.fitness is None:
            return
        self.credit.record(codes, child.fitness is not None and self._beats(child, parent))

    def _beats(self, child: Told, parent: Told) -> bool:
        if self.goal.violation(child.metrics) != self.goal.violation(parent.metrics):
            return self.goal.violation(child.metrics) < self.goal.violation(parent.metrics)
        if self.goal.multi:
            return not pareto.dominates(self.goal.point(parent.metrics), self.goal.point(child.metrics))
        assert child.fitness is not None and parent.fitness is not None
        return child.fitness > parent.fitness

    def thresholds(self) -> Thresholds:
        """The rule book's thresholds now: the paper's as configured, or adapted to the run."""
        t = self.settings.thresholds
        if self.settings.rulebook == "paper":
            return t
        measured = [told.metrics for told in self.told if told.fitness is not None]
        return run_thresholds(goal_thresholds(t, self.goal), measured)

    def _best(self) -> Told | None:
        """Highest fitness; ties go to fewer parameters, then the earlier trial (as the study's
        best). Several objectives: the front member in the least crowded place."""
        done = [(i, t) for i, t in enumerate(self.told) if t.fitness is not None]
        if self.goal.multi and done:
            keys = self._front_keys(done)
            return max(done, key=lambda it: (keys[it[0]], -it[0]))[1]
        best = max(done, default=None, key=lambda it: (-self.goal.violation(it[1].metrics), *rank_key(
            it[1].fitness, float(it[1].metrics.get("params", 0) or 0), it[0])))
        return best[1] if best else None

    def _front_keys(self, done: list[tuple[int, Told]]) -> dict[int, tuple[int, float]]:
        """Pareto rank and crowding of each successful tell (by its position in ``self.told``)."""
        keys = pareto.rank_keys([self.goal.ranking_point(t.metrics) for _, t in done],
                                [self.goal.violation(t.metrics) for _, t in done])
        return {i: key for (i, _), key in zip(done, keys)}

    def _base(self) -> tuple[Told | None, dict[str, Any]]:
        """The told genome to edit, and notes on why it was chosen."""
        if not self.told:
            return None, {}
        last = self.told[-1]
        if self.settings.base == "best":
            return self._best(), {}
        if last.fitness is None:
            return self._best(), {"after_failure": last.trial, "reverted_to_best": True}
        if self.goal.multi:
            done = [(i, t) for i, t in enumerate(self.told) if t.fitness is not None]
            if self._front_keys(done)[len(self.told) - 1][0] < 0:  # the last one is dominated
                return self._best(), {"dominated": last.trial, "front_member": True}
        return last, {}

    # --- asking ---
    def ask(self) -> Proposal:
        proposal = self._ask()
        self.asked.add(proposal.genome.id)
        return proposal

    def _ask(self) -> Proposal:
        index = self.asks
        self.asks += 1
        rng = np.random.default_rng([self.seed, index])
        base, notes = self._base()
        info: dict[str, Any] = {"designer_requested": self.settings.designer, "ask": index, **notes}
        if base is None or index < self.settings.n_starts(self.budget):
            return self._initial(rng, index, info)
        info.update(base_trial=base.trial, start_from=self.settings.base)
        chance_of = self.n_classes if self.goal.kind == "classification" else None  # regression: chance R² is 0
        thresholds = self.thresholds()
        firings = fire_rules(base.metrics, thresholds, chance_of)
        proposed = combine(firings)
        if self.settings.rulebook == "adaptive":
            if self.goal.violation(base.metrics) > 0:
                proposed = over_limits(proposed)
                info["over_limits"] = True
            proposed = self.credit.reweigh(proposed)
            info.update(rulebook="adaptive", credit=self.credit.to_dict(), retired=self.credit.retired(),
                        thresholds={k: round(getattr(thresholds, k), 9) for k in ("OT", "TF", "TS", "PV_Acc", "PF",
                                                                                    "PS", "PV_E")})
        resolution = resolve(proposed)
        applicable = self.designer.instructions.applicable
        info.update(rules=[f.to_dict() for f in firings], proposed=_pairs(proposed),
                    instructions=_pairs(resolution.kept), zeroed=resolution.zeroed,
                    not_applicable=[c for c in resolution.codes if not applicable(c)])  # fmt: skip
        usable = [(c, w) for c, w in resolution.kept if applicable(c)]
        if self.llm is not None:
            proposal = self._llm_step(base, usable, rng, info)
            if proposal is not None:
                return proposal
        return self._rules_step(base, resolution.codes, rng, info)

    def _initial(self, rng: np.random.Generator, index: int, info: dict[str, Any]) -> Proposal:
        info["initial"] = True
        if self.llm is not None:
            outcome = self.llm.design(None, {}, [], self.thresholds())
            info.update(repairs=outcome.repairs, llm_seconds=outcome.seconds)
            if outcome.genome is not None:
                info.update(designer="llm", model=self.llm.client.model)
                return Proposal(outcome.genome, operator=f"llm:{self.llm.client.model}", info=info)
            info["fallback"] = outcome.error
        kind = self.settings.initial if index == 0 and not self.told else "sample"  # never repeat a failed start
        if kind == "small" and self.settings.n_starts(self.budget) > 1:  # several starts: random ones, spread over the space
            kind = "sample"
        info.update(designer="rules", initial_kind=kind)
        return Proposal(self.designer.initial(rng, kind), operator=f"initial:{kind}", info=info)

    def _llm_step(self, base: Told, usable: list[tuple[str, float]], rng: np.random.Generator,
                  info: dict[str, Any]) -> Proposal | None:  # fmt: skip
        assert self.llm is not None
        model = self.llm.client.model
        outcome = self.llm.design(base.genome, base.metrics, usable, self.thresholds())
        info.update(repairs=outcome.repairs, llm_seconds=outcome.seconds)
        if outcome.genome is None:
            info["fallback"] = outcome.error
            return None
        genome = outcome.genome
        compliance = check_compliance(base.genome, genome, [c for c, _ in usable])
        info.update(designer="llm", model=model, compliance=compliance)
        operator = f"llm:{model}"
        if self.settings.enforce and compliance["ignored"]:
            enforced = self.designer.design(genome, compliance["ignored"], rng)
            genome = enforced.genome
            info.update(enforced=enforced.applied, enforce_skipped=enforced.skipped)
            if enforced.applied:
                operator += "+rules:" + "+".join(enforced.applied)
        info["changes"] = describe_change(base.genome, genome)
        return Proposal(genome, parents=self._parents(base), operator=operator, info=info)

    def _rules_step(self, base: Told, codes: list[str], rng: np.random.Generator, info: dict[str, Any]) -> Proposal:
        design = self.designer.design(base.genome, codes, rng, self.settings.edits)
        genome, operator = design.genome, "rules:" + ("+".join(design.applied) or "none")
        info.update(designer="rules", applied=design.applied, skipped=design.skipped)
        if genome == base.genome:
            explored = self.designer.explore(genome, rng)
            if explored is not None:
                genome, op = explored
                operator = f"rules:explore:{op}"
                info["explored"] = op
        if self.settings.rulebook == "adaptive" and self._known(genome):
            info["known_edit"], info["applied"] = info["applied"], []  # not what made the child: no credit
            genome, operator = self._escape(base.genome, rng, info)
        info["changes"] = describe_change(base.genome, genome)
        return Proposal(genome, parents=self._parents(base), operator=operator, info=info)

    def _known(self, genome: Genome) -> bool:
        return genome.id in self.asked

    def _escape(self, genome: Genome, rng: np.random.Generator, info: dict[str, Any]) -> tuple[Genome, str]:
        """The edit made a network this run has already asked for (its neighbourhood is used
        up): explore with more random mutations of it, one more every ESCAPE_TRIES tries, and
        restart from a random sample if none is new."""
        for tries in range(ESCAPE_TRIES * 3):
            child, ops = genome, []
            for _ in range(2 + tries // ESCAPE_TRIES):
                explored = self.designer.explore(child, rng)
                if explored is not None:
                    child, op = explored
                    ops.append(op)
            if not self._known(child):
                info["escaped"] = ops
                return child, "rules:escape:" + "+".join(ops)
        info["restarted"] = True
        return self.designer.initial(rng, "sample"), "rules:restart"

    @staticmethod
    def _parents(base: Told) -> tuple[int, ...]:
        return (base.trial,) if base.trial is not None else ()

    # --- resume ---
    def replay(self, genome: Genome, record: Any) -> Proposal:
        """Rules: ask again and insist on the stored genome. LLM: adopt the stored proposal."""
        if self.llm is None:
            return super().replay(genome, record)
        self.asks += 1
        self.asked.add(genome.id)
        return Proposal(genome, parents=tuple(getattr(record, "parents", ()) or ()),
                        operator=getattr(record, "operator", f"llm:{self.llm.client.model}"),
                        info=dict(getattr(record, "info", {}) or {}))  # fmt: skip

    def describe(self) -> str:
        s = self.settings
        where = f"{s.llm_model} at {s.llm_url}" if s.llm_url else f"{s.llm_local} in process"
        who = f"LLM designer {where}" if s.designer == "llm" else "rule designer"
        extra = ", enforce" if s.enforce and s.designer == "llm" else ""
        return f"LEMONADE expert system ({who}, {s.rulebook} rule book, start from {s.base}{extra})"
