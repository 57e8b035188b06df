"""Pareto search: nasforge's strategies against Optuna NSGA-II, Optuna's multi-objective TPE and
random search, by hypervolume at the same budget and at the same wall time.

    .venv/bin/python benchmarks/pareto.py                 # digits, wdbc, colors, digits-images; 5 seeds; budget 20
    .venv/bin/python benchmarks/pareto.py --quick         # iris, 1 seed, budget 6 (under 2 minutes)
    .venv/bin/python benchmarks/pareto.py --datasets wdbc --seeds 2 --budget 10

Objectives: validation accuracy up and parameters down (``mlp`` space: digits, wdbc, colors, iris,
wine) or validation accuracy up and single-sample latency down (``net`` space: digits-images).

Methods (the budget is the number of candidates trained; failed ones count too):
- nasforge ``evolution``, ``bilevel`` (mlp space only) and ``expert`` (the rule designer), each one
  ``nasforge.search(..., objectives=[...])`` run: the "nasforge" side;
- peers: nasforge ``random`` (random search), Optuna ``NSGAIISampler`` and Optuna
  ``TPESampler(multivariate=True)`` on a two-objective Optuna study. Every Optuna trial becomes a
  nasforge genome, trained and measured by nasforge's ``TrainingEvaluator`` with the seed nasforge
  gives the same evaluation index (as in ``run_peers.py``), on the split ``nasforge.search`` uses.

Hypervolume: each candidate is the point (accuracy, 1 - cost / C_ref), both maximised, with the
reference point (0, 0); C_ref is 1.1 x the largest cost any method trained on that dataset (all
seeds), so one reference serves every method and seed of a dataset and a hypervolume is a share of
the box [0, 1] x [0, C_ref]. The validation hypervolume is what the searches see; the test
hypervolume takes the same front members (chosen on validation) with test accuracy instead. At the
same wall time: the validation hypervolume of the trials each run had finished when the fastest
method of that dataset and seed had finished all of its own. Writes the ``pareto`` section of
benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean, stdev
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from _results import RESULTS, machine, mean_sd, table, write_section  # noqa: E402
from run_peers import genome_from_params, nsga2_population, suggest_params  # noqa: E402

import nasforge  # noqa: E402
from nasforge.config import build_config  # noqa: E402
from nasforge.data import load_task  # noqa: E402
from nasforge.errors import TrialFailed  # noqa: E402
from nasforge.evaluators.training import TrainingEvaluator as Evaluator  # noqa: E402
from nasforge.loop import trial_seed  # noqa: E402
from nasforge.pareto import hypervolume, pareto_front  # noqa: E402
from nasforge.spaces import MLPSpace, make_space  # noqa: E402
from nasforge.spaces.net import NetGenome  # noqa: E402
from nasforge.spaces.net_layers import ConvLayer, DenseLayer, DropoutLayer, GlobalPoolLayer, PoolLayer  # noqa: E402
from nasforge.spaces.net_space import NetSpace  # noqa: E402

DEFAULT_DATASETS = "digits,wdbc,colors,digits-images"
FULL = {"datasets": DEFAULT_DATASETS, "seeds": 5, "budget": 20, "epochs": 10}
QUICK = {"datasets": "iris", "seeds": 1, "budget": 6, "epochs": 10}
# dataset -> (space family, cost objective); any other dataset: the mlp space and parameters
SETUPS: dict[str, tuple[str, str]] = {"digits-images": ("net", "latency")}
COST_METRIC = {"params": "params", "latency": "latency_ms"}
COST_LABEL = {"params": "parameters", "latency": "latency ms"}
NASFORGE = ("evolution", "bilevel", "expert")  # the nasforge side; "random" is a peer
PEERS = ("random", "nsga2", "tpe")
NAMES = {"evolution": "nasforge evolution", "bilevel": "nasforge bilevel", "expert": "nasforge expert (rules)",
         "random": "nasforge random", "nsga2": "Optuna NSGA-II", "tpe": "Optuna MO-TPE"}
HV_GOAL, ACC_POINTS, PARAM_SHARE = 1.05, 0.5, 0.10


def setup(dataset: str) -> tuple[str, str]:
    return SETUPS.get(dataset, ("mlp", "params"))


# ---------------------------------------------------------------- what a run leaves
@dataclass
class Candidate:
    val_acc: float
    test_acc: float
    params: int
    cost: float  # the cost objective in its own units (parameters or ms)
    finished_s: float  # seconds from the run's start to the end of this candidate's evaluation


@dataclass
class Run:
    key: str
    dataset: str
    seed: int
    budget: int
    candidates: list[Candidate]  # completed ones, in evaluation order
    seconds: float
    failed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def method(self) -> str:
        return NAMES[self.key]

    @property
    def front(self) -> list[Candidate]:
        """The Pareto front of (validation accuracy, -cost)."""
        return [self.candidates[i] for i in pareto_front([(c.val_acc, -c.cost) for c in self.candidates])]

    def by(self, seconds: float) -> list[Candidate]:
        return [c for c in self.candidates if c.finished_s <= seconds]


def candidate(m: dict[str, Any], cost: str, finished_s: float) -> Candidate:
    return Candidate(float(m["val_acc"]), float(m["test_acc"]), int(m["params"]), float(m[COST_METRIC[cost]]),
                     finished_s)


def settings_for(dataset: str, epochs: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Configuration sections every method of a dataset shares (space family, training)."""
    family, _ = setup(dataset)
    return {"space": {"family": family}, "train": {"epochs": epochs}, **(extra or {})}


# ---------------------------------------------------------------- nasforge
def run_nasforge(dataset: str, strategy: str, seed: int, budget: int, workdir: str | Path,
                 settings: dict[str, Any]) -> Run:
    """One full ``nasforge.search`` with two objectives, in its own run directory."""
    _, cost = setup(dataset)
    finished: dict[int, float] = {}
    start = time.perf_counter()
    result = nasforge.search(dataset, strategy=strategy, budget=budget, seed=seed, objectives=["accuracy", cost],
                             out=Path(workdir) / f"{dataset}-{strategy}-seed{seed}",
                             callback=lambda record, _: finished.setdefault(record.number, time.perf_counter() - start),
                             **settings)
    seconds = time.perf_counter() - start
    done = sorted((t for t in result.trials if t.state == "complete"), key=lambda t: t.number)
    failed = sum(t.finished and t.state == "failed" for t in result.trials)
    return Run(strategy, dataset, seed, budget, [candidate(t.metrics, cost, finished.get(t.number, seconds))
                                                 for t in done], seconds, failed)


# ---------------------------------------------------------------- Optuna, over the same spaces
def suggest_net(trial: Any, space: NetSpace) -> NetGenome:
    """A fixed-length Optuna encoding of the net space's plain CNNs (what ``random_genome`` draws,
    without skip connections): up to ``max_conv`` conv layers (channels, kernel, batch norm, and a
    downsampling choice: none, stride 2, or a max/avg pool after it, applied while the feature map
    is at least 4 wide), one activation for the net, an optional global pool, up to ``max_dense``
    dense layers each with an optional dropout, the initialiser and the weight decay. All
    ``max_conv`` / ``max_dense`` slots are always sampled, the first n used."""
    n_conv = trial.suggest_int("n_conv", space.min_conv, space.max_conv)
    act = trial.suggest_categorical("activation", list(space.activations))
    size = min(space.input_shape[1:]) if space.image else 0
    layers: list[Any] = []
    for i in range(space.max_conv):
        channels = trial.suggest_categorical(f"channels_{i}", list(space.channels))
        kernel = trial.suggest_categorical(f"kernel_{i}", list(space.kernels))
        bn = trial.suggest_categorical(f"batch_norm_{i}", [False, True])
        down = trial.suggest_categorical(f"down_{i}", ["none", "stride", "max", "avg"])
        if i >= n_conv:
            continue
        stride = 2 if down == "stride" and size >= 4 else 1
        layers.append(ConvLayer(channels=channels, kernel=kernel, stride=stride, activation=act, batch_norm=bn,
                                rule=space.rules[0]))
        size = (size + 1) // 2 if stride == 2 else size
        if down in ("max", "avg") and size >= 4:
            layers.append(PoolLayer(op=down))
            size //= 2
    if trial.suggest_categorical("global_pool", [False, True]) and n_conv:
        layers.append(GlobalPoolLayer())
    n_dense = trial.suggest_int("n_dense", space.min_dense, space.max_dense)
    for j in range(space.max_dense):
        units = trial.suggest_categorical(f"units_{j}", list(space.units))
        rate = trial.suggest_categorical(f"dropout_{j}", [0.0, *space.dropouts])
        if j < n_dense:
            layers.append(DenseLayer(units=units, activation=act, rule=space.rules[0]))
            if rate and j < space.max_dropout_layers:
                layers.append(DropoutLayer(rate=rate))
    return NetGenome(layers=tuple(layers), init=trial.suggest_categorical("init", list(space.inits)),
                     regularization=trial.suggest_categorical("regularization", list(space.regularizations)),
                     output_rule=space.rules[0])


def optuna_sampler(kind: str, seed: int, budget: int) -> Any:
    import optuna

    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=nsga2_population(budget))
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    raise ValueError(f"unknown Optuna sampler {kind!r}")


def run_optuna(dataset: str, kind: str, seed: int, budget: int, settings: dict[str, Any]) -> Run:
    """A two-objective in-memory Optuna study whose objective trains the genome with nasforge's
    evaluator: maximise validation accuracy, minimise the cost."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _, cost = setup(dataset)
    start = time.perf_counter()
    task = load_task(dataset, seed=seed)
    config = build_config({**settings, "data": {"dataset": dataset}, "seed": seed})
    space = make_space(config.space, task)
    evaluator = Evaluator(task, config.train, config.measure)
    candidates: list[Candidate] = []

    def objective(trial: Any) -> tuple[float, float]:
        if isinstance(space, MLPSpace):
            genome = genome_from_params(suggest_params(trial, space, conditional=False))
        else:
            assert isinstance(space, NetSpace), f"no Optuna encoding of the {space.name} space"
            genome = suggest_net(trial, space)
        space.check(genome)
        m = evaluator.evaluate(genome, trial_seed(seed, trial.number)).metrics
        candidates.append(candidate(m, cost, time.perf_counter() - start))
        return candidates[-1].val_acc, candidates[-1].cost

    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna_sampler(kind, seed, budget))
    study.optimize(objective, n_trials=budget, catch=(TrialFailed,))
    seconds = time.perf_counter() - start
    failed = sum(t.state == optuna.trial.TrialState.FAIL for t in study.trials)
    return Run(kind, dataset, seed, budget, candidates, seconds, failed)


def methods(dataset: str, workdir: str | Path, epochs: int, extra: dict[str, Any] | None = None
            ) -> dict[str, Callable[[int, int], Run]]:
    """Every method that can run on ``dataset``: f(seed, budget)."""
    settings = settings_for(dataset, epochs, extra)
    found: dict[str, Callable[[int, int], Run]] = {}
    for key in (*NASFORGE, "random"):
        if key == "bilevel" and setup(dataset)[0] != "mlp":
            continue  # bilevel searches the mlp space only
        found[key] = lambda s, b, key=key: run_nasforge(dataset, key, s, b, workdir, settings)
    for kind in ("nsga2", "tpe"):
        found[kind] = lambda s, b, kind=kind: run_optuna(dataset, kind, s, b, settings)
    return found


# ---------------------------------------------------------------- hypervolumes
def reference_cost(runs: Sequence[Run]) -> float:
    """1.1 x the largest cost any run of the dataset trained."""
    return 1.1 * max(c.cost for r in runs for c in r.candidates)


def hv(candidates: Sequence[Candidate], c_ref: float, test: bool = False) -> float:
    """Hypervolume of the validation front of ``candidates`` above (0, 0) in (accuracy, 1 - cost/C_ref);
    ``test``: the same front members with their test accuracy."""
    front = [candidates[i] for i in pareto_front([(c.val_acc, -c.cost) for c in candidates])]
    return hypervolume([(c.test_acc if test else c.val_acc, 1 - c.cost / c_ref) for c in front], (0.0, 0.0))


@dataclass
class Scores:
    """One run's three hypervolumes."""

    val: float
    test: float
    timed: float  # validation, trials finished by the common wall time


def score(runs: Sequence[Run]) -> dict[tuple[str, str, int], Scores]:
    """Hypervolumes of every run, keyed (dataset, method key, seed)."""
    out = {}
    for dataset in dict.fromkeys(r.dataset for r in runs):
        mine = [r for r in runs if r.dataset == dataset]
        c_ref = reference_cost(mine)
        for r in mine:
            common = min(o.seconds for o in mine if o.seed == r.seed)
            out[dataset, r.key, r.seed] = Scores(hv(r.candidates, c_ref), hv(r.candidates, c_ref, test=True),
                                                 hv(r.by(common), c_ref))
    return out


# ---------------------------------------------------------------- goals
@dataclass
class Verdict:
    dataset: str
    best_nasforge: str | None
    best_peer: str | None
    ratio_val: float
    ratio_test: float
    ratio_timed: float
    hv_met: bool
    small_met: int  # seeds whose nasforge front holds the small, accurate model
    seeds: int
    why_hv: str
    why_small: str
    ceiling: float = math.nan  # the largest validation ratio possible: 1 / the best peer's mean HV

    @property
    def small_ok(self) -> bool:
        return self.seeds > 0 and self.small_met == self.seeds


@functools.cache
def test_rows(dataset: str, seed: int) -> int:
    """Rows in the test split ``nasforge.search`` makes of ``dataset`` with ``seed``."""
    return len(load_task(dataset, seed=seed).y_test)


def chosen(front: Sequence[Candidate]) -> Candidate:
    """A front's most accurate member on validation (ties: fewer parameters)."""
    return max(front, key=lambda c: (c.val_acc, -c.params))


def verdict(dataset: str, runs: Sequence[Run], scores: dict[tuple[str, str, int], Scores],
            rows_of: Callable[[str, int], int] = test_rows) -> Verdict:
    """The goals on ``dataset``; ``rows_of(dataset, seed)``: its test rows, to count a miss in them."""
    mine = [r for r in runs if r.dataset == dataset]
    seeds = sorted({r.seed for r in mine})

    def best(keys: Sequence[str], attr: str = "val") -> tuple[str | None, float]:
        means = {k: mean(getattr(scores[dataset, k, s], attr) for s in seeds)
                 for k in keys if all((dataset, k, s) in scores for s in seeds)}
        if not means:
            return None, math.nan
        k = max(means, key=lambda k: means[k])
        return k, means[k]

    nf, nf_hv = best(NASFORGE)
    peer, peer_hv = best(PEERS)
    if nf is None or peer is None:
        return Verdict(dataset, nf, peer, math.nan, math.nan, math.nan, False, 0, len(seeds),
                       "a side did not run on every seed", "")

    def ratio(attr: str) -> float:
        a = mean(getattr(scores[dataset, nf, s], attr) for s in seeds)
        b = mean(getattr(scores[dataset, peer, s], attr) for s in seeds)
        return a / b if b > 0 else math.nan

    r_val = ratio("val")
    nf_vals, peer_vals = ([scores[dataset, k, s].val for s in seeds] for k in (nf, peer))
    why_hv = f"{NAMES[nf]} {mean_sd(nf_vals, 3)} vs {NAMES[peer]} {mean_sd(peer_vals, 3)}"
    if r_val < HV_GOAL:
        why_hv += f": {r_val:.3f}× < {HV_GOAL}×"
        if len(seeds) > 1 and abs(mean(nf_vals) - mean(peer_vals)) <= max(stdev(nf_vals), stdev(peer_vals)):
            why_hv += ", a difference within one sd over seeds"
        if 1 / peer_hv < HV_GOAL:
            why_hv += f"; unreachable here: the peer's HV allows at most {1 / peer_hv:.3f}×"
        else:  # could the candidates the searches trained, together, have made such a front?
            c_ref = reference_cost(mine)
            pooled = mean(hv([c for r in mine if r.seed == s for c in r.candidates], c_ref) for s in seeds) / peer_hv
            why_hv += (f"; the front of every candidate that any method trained, pooled per seed, reaches "
                       f"{pooled:.3f}×" + (" (within reach of these candidates)" if pooled >= HV_GOAL else ""))
    met, misses, beyond = 0, [], 0
    for s in seeds:
        run_of = {r.key: r for r in mine if r.seed == s}
        target = chosen(run_of[peer].front)
        limit, bar = PARAM_SHARE * target.params, target.test_acc - ACC_POINTS / 100 - 1e-9
        small = [c for c in run_of[nf].front if c.params <= limit]
        best_small = max((c.test_acc for c in small), default=None)
        if best_small is not None and best_small >= bar:
            met += 1
        else:
            rows = rows_of(dataset, s)
            misses.append(f"seed {s}: " + (f"none <= {limit:,.0f} params" if best_small is None
                                           else f"best <= {limit:,.0f} params {100 * best_small:.1f} %"
                                           + f" ({round((target.test_acc - best_small) * rows)} more of {rows} test"
                                           " rows wrong)")
                          + f" (peer {100 * target.test_acc:.1f} % at {target.params:,})")
            # could any search have offered it? every candidate of every method on this seed, by test
            beyond += not any(c.params <= limit and c.test_acc >= bar for r in run_of.values() for c in r.candidates)
    why_small = "; ".join(misses)
    sample = 100 / rows_of(dataset, seeds[0])
    if misses and sample > ACC_POINTS:
        why_small += (f". One test row is {sample:.2f} points here, so the {ACC_POINTS}-point bar asks for no more "
                      "wrong test rows than the peer's model")
    if misses:
        why_small += (f". In {beyond} of these {len(misses)} seeds no candidate that any method trained "
                      "meets the bar, even picked by test accuracy")
    return Verdict(dataset, nf, peer, r_val, ratio("test"), ratio("timed"), r_val >= HV_GOAL, met, len(seeds),
                   why_hv, why_small, 1 / peer_hv if peer_hv > 0 else math.nan)


# ---------------------------------------------------------------- the report
def summary_rows(runs: Sequence[Run], scores: dict[tuple[str, str, int], Scores]) -> list[list[object]]:
    rows = []
    for dataset, key in dict.fromkeys((r.dataset, r.key) for r in runs):
        mine = [r for r in runs if (r.dataset, r.key) == (dataset, key)]
        sc = [scores[dataset, key, r.seed] for r in mine]
        rows.append([dataset, NAMES[key], "nasforge" if key in NASFORGE else "peer", len(mine),
                     mean_sd([s.val for s in sc], 3), mean_sd([s.test for s in sc], 3), mean_sd([s.timed for s in sc], 3),
                     mean_sd([len(r.front) for r in mine], 1), mean_sd([r.seconds for r in mine], 1),
                     sum(r.failed for r in mine)])
    return rows


def verdict_rows(verdicts: Sequence[Verdict]) -> list[list[object]]:
    rows = []
    for v in verdicts:
        small = f"{v.small_met}/{v.seeds} seeds"
        rows.append([
            v.dataset, NAMES.get(v.best_nasforge or "", "-"), NAMES.get(v.best_peer or "", "-"),
            f"{v.ratio_val:.3f}", f"{v.ratio_test:.3f}", f"{v.ratio_timed:.3f}", f"{v.ceiling:.3f}",
            ("met" if v.hv_met else "**NOT met**") + f": {v.why_hv}",
            ("met" if v.small_ok else "**NOT met**") + f" ({small})" + (f": {v.why_small}" if v.why_small else ""),
        ])
    return rows


def report(runs: Sequence[Run], scores: dict[tuple[str, str, int], Scores], verdicts: Sequence[Verdict],
           argv: Sequence[str], total_seconds: float, budget: int, epochs: int, skipped: Sequence[str]) -> str:
    command = ".venv/bin/python benchmarks/pareto.py" + "".join(f" {a}" for a in argv)
    seeds = sorted({r.seed for r in runs})
    refs = []
    for dataset in dict.fromkeys(r.dataset for r in runs):
        family, cost = setup(dataset)
        c_ref = reference_cost([r for r in runs if r.dataset == dataset])
        refs.append(f"{dataset} ({family} space, accuracy and {COST_LABEL[cost]}): C_ref = "
                    + (f"{c_ref:,.0f} parameters" if cost == "params" else f"{c_ref:.3f} ms"))
    lines = [
        "## Pareto search: hypervolume of nasforge vs Optuna NSGA-II, Optuna MO-TPE and random search",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}  ",
        f"Seeds {', '.join(map(str, seeds))}; budget {budget} trained candidates per run; training at most "
        f"{epochs} epochs (early stopping, patience 6), other settings nasforge's defaults; "
        f"whole benchmark {total_seconds / 60:.1f} min.",
        "",
        table(["dataset", "method", "side", "seeds", "val HV", "test HV (same front)", "val HV at common wall time",
               "front size", "wall time s", "failed"], summary_rows(runs, scores)),
        "",
        f"Goals (issue #15): nasforge's best strategy ≥ {HV_GOAL}× the best peer's validation hypervolume; and, in "
        f"every seed, the best nasforge strategy's front holds a model within {ACC_POINTS} points of the test "
        f"accuracy of the best peer's most accurate front member (chosen on validation) with at most "
        f"{PARAM_SHARE:.0%} of its parameters. Ratios are mean HV of the best nasforge strategy / mean HV of the best peer, "
        "both picked by mean validation HV. "
        "*Largest possible ratio* is 1 / the best peer's mean HV: no front can exceed the whole box (HV 1), so "
        f"where it is below {HV_GOAL} the hypervolume goal cannot be met on this dataset whatever nasforge finds.",
        "",
        table(["dataset", "best nasforge", "best peer", "val HV ratio", "test HV ratio", "wall-time HV ratio",
               "largest possible ratio", f"HV ≥ {HV_GOAL}×", f"≤ {PARAM_SHARE:.0%} params within {ACC_POINTS} pt"], verdict_rows(verdicts)),
        "",
        "Mean ± sd over seeds. Each candidate is the point (accuracy, 1 − cost / C_ref), both maximised; the "
        "hypervolume (HV) is the area its run's front dominates above (0, 0), i.e. a share of the box "
        "[0, 1] × [0, C_ref]. C_ref, one per dataset for every method and seed, is 1.1 × the largest cost any "
        f"run trained: {'; '.join(refs)}. *val HV*: the front on validation accuracy, what every search sees. "
        "*test HV*: the same front members with their test accuracy (read only; never used to choose). "
        "*At common wall time*: per dataset and seed, the validation HV of the candidates each run had finished "
        "when the fastest run of that seed had finished all of its own (run start to evaluation end, data "
        "loading and nasforge's store included). *Front size*: candidates on the validation front.",
        "",
        "Methods and fairness:",
        "- nasforge side: `nasforge.search(dataset, strategy=..., objectives=[\"accuracy\", cost], ...)` with "
        "evolution (Pareto rank and crowding in the tournament), bilevel (mlp space only) and expert (LEMONADE's "
        "rule designer, no LLM); their crowding counts the cost on log10 (`Goal.ranking_point`), the axis here "
        "is linear. Peers: nasforge `random` (random search), Optuna `NSGAIISampler` (population "
        "budget/3, as in the peers section; Optuna's default 50 would be random sampling at this budget) and "
        "`TPESampler(multivariate=True)`, both on a two-objective Optuna study (maximise validation accuracy, "
        "minimise the cost), seeded with the run seed.",
        "- Same split and training: every Optuna trial is turned into a nasforge genome and trained and measured "
        "by nasforge's `TrainingEvaluator` with the evaluation seed nasforge gives that evaluation index, on "
        "`nasforge.load_task(dataset, seed=seed)`, the split `nasforge.search` uses. Same budget: every run "
        "trains exactly `budget` candidates (failed ones count).",
        "- Optuna encodings: the mlp space as in the peers section, fixed length (depth 1–4, all four layers' "
        "width and activation always sampled, the first n used; dropout) so NSGA-II's crossover and multivariate "
        "TPE see one search space. The net space as a fixed-length encoding of the plain CNNs nasforge's "
        "`random_genome` draws: 1–6 conv layers (channels 8–128, kernel 1/3/5, batch norm, and none / stride 2 / "
        "max pool / avg pool after it, down-sampling only while the map is ≥ 4 wide), one activation, optional "
        "global pool, 0–2 dense layers (16–256 units) each with an optional dropout, initialiser and weight "
        "decay. It has **no skip connections**, which nasforge's random genomes and mutations may add; every "
        "other gene of the space is reachable.",
        "- Latency (digits-images) is nasforge's single-sample latency measurement on this shared, busy "
        "2-core machine: noisy, and the same noise reaches every method. Torch uses one thread; runs are "
        "sequential, so wall times are noisy too.",
        "- The small-model goal always compares parameters (digits-images included, where the front is on latency).",
        "- The cost axis is linear (1 − cost / C_ref), as the issue sets it: every model far below C_ref sits near 1 on "
        "it, so a front's HV is close to its best accuracy and methods differ by little; the peers section, on "
        "log10 parameters, weighs small models more.",
    ]
    if skipped:
        lines += ["", "Skipped: " + "; ".join(skipped)]
    return "\n".join(lines)


def warm_up() -> None:
    """Pay one-time costs (imports, torch first calls) before any run is timed."""
    import optuna  # noqa: F401

    from nasforge.spaces import MLPGenome
    from nasforge.spaces.mlp import Dense

    task = load_task("iris", seed=0)
    Evaluator(task).evaluate(MLPGenome(layers=(Dense(units=8),)), 0)
    with tempfile.TemporaryDirectory(prefix="nasforge-pareto-warm-") as workdir:  # the store, strategies, report
        nasforge.search("iris", strategy="evolution", budget=2, seed=0, objectives=["accuracy", "params"],
                        out=Path(workdir) / "warm", train={"epochs": 1})


def main(argv: Sequence[str] | None = None, results: Path = RESULTS,
         extra: dict[str, Any] | None = None) -> tuple[list[Run], dict[tuple[str, str, int], Scores], list[Verdict]]:
    """Run the benchmark and write its section; ``extra``: configuration sections over the
    benchmark's (the tests shorten latency timing with them)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=None, help=f"comma-separated (default {DEFAULT_DATASETS})")
    ap.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 5)")
    ap.add_argument("--budget", type=int, default=None, help="candidates trained per run (default 20)")
    ap.add_argument("--epochs", type=int, default=None, help="most training epochs per candidate (default 10)")
    ap.add_argument("--methods", default=None, help=f"comma-separated subset of {','.join((*NASFORGE, *PEERS))}")
    ap.add_argument("--quick", action="store_true", help="iris, 1 seed, budget 6")
    ap.add_argument("--save-runs", default=None, help="also write every run's candidates to this JSON file")
    ap.add_argument("--from-runs", default=None, help="train nothing: report the runs a --save-runs file holds")
    args = ap.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    datasets = (args.datasets or defaults["datasets"]).split(",")
    n_seeds = args.seeds if args.seeds is not None else defaults["seeds"]
    budget = args.budget if args.budget is not None else defaults["budget"]
    epochs = args.epochs if args.epochs is not None else defaults["epochs"]
    wanted = args.methods.split(",") if args.methods else [*NASFORGE, *PEERS]
    unknown = set(wanted) - set(NAMES)
    if unknown:
        ap.error(f"unknown methods {sorted(unknown)}; choose from {', '.join(NAMES)}")
    if args.from_runs:
        saved = json.loads(Path(args.from_runs).read_text())
        runs = [Run(**{**r, "candidates": [Candidate(**c) for c in r["candidates"]]}) for r in saved["runs"]]
        return finish(runs, saved["argv"], saved["seconds"], saved["budget"], saved["epochs"], saved["skipped"],
                      results)
    torch.set_num_threads(1)
    warm_up()
    began = time.perf_counter()
    runs: list[Run] = []
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="nasforge-pareto-") as workdir:
        for dataset in datasets:
            available = methods(dataset, workdir, epochs, extra)
            for seed in range(n_seeds):
                for key in [k for k in wanted if k in available]:
                    try:
                        r = available[key](seed, budget)
                    except Exception as exc:  # a method that cannot run is reported, not fatal
                        skipped.append(f"{key} on {dataset} seed {seed}: {type(exc).__name__}: {exc}")
                        print("SKIPPED", skipped[-1], flush=True)
                        continue
                    if not r.candidates:
                        skipped.append(f"{key} on {dataset} seed {seed}: no candidate completed")
                        continue
                    runs.append(r)
                    top = chosen(r.front)
                    print(f"{dataset:13s} {r.method:24s} seed {seed}: front {len(r.front):2d}, most accurate val "
                          f"{top.val_acc:.4f} test {top.test_acc:.4f} params {top.params:7d} cost {top.cost:.4g}; "
                          f"{r.seconds:6.1f}s", flush=True)
    total = time.perf_counter() - began
    if args.save_runs:
        Path(args.save_runs).write_text(json.dumps({"argv": argv, "seconds": total, "budget": budget, "epochs": epochs,
                                                    "skipped": skipped, "runs": [asdict(r) for r in runs]}))
    return finish(runs, argv, total, budget, epochs, skipped, results)


def shown(argv: Sequence[str]) -> list[str]:
    """The command line without --save-runs and its file (it changes nothing measured)."""
    out, skip = [], False
    for a in argv:
        if skip or a.startswith("--save-runs"):
            skip = a == "--save-runs"
            continue
        out.append(a)
    return out


def finish(runs: list[Run], argv: Sequence[str], total: float, budget: int, epochs: int, skipped: Sequence[str],
           results: Path) -> tuple[list[Run], dict[tuple[str, str, int], Scores], list[Verdict]]:
    """Score the runs, judge the goals, write the section."""
    scores = score(runs)
    verdicts = [verdict(d, runs, scores) for d in dict.fromkeys(r.dataset for r in runs)]
    text = report(runs, scores, verdicts, shown(argv), total, budget,
                  epochs, skipped)
    write_section("pareto", text, path=results)
    print(text.split("\n\nMean ± sd")[0])
    print(f"total {total / 60:.1f} min")
    return runs, scores, verdicts


if __name__ == "__main__":
    main()
