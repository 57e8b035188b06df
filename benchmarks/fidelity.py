"""Multi-fidelity search at equal wall time (issue #16): full fidelity vs ASHA vs Hyperband vs Optuna.

    .venv/bin/python benchmarks/fidelity.py            # digits (mlp), digits-images and mnist-5k (net); 2 seeds (~55 min)
    .venv/bin/python benchmarks/fidelity.py --quick    # digits only, 1 seed, 20 s per method, max 9 epochs (< 3 min)
    .venv/bin/python benchmarks/fidelity.py --datasets digits-images --seeds 1 --seconds 60 --max-epochs 27
    .venv/bin/python benchmarks/fidelity.py --objectives 2 --datasets digits,mnist-5k --seeds 5 --tau-genomes 0 --section fidelity-multi

Every method of a (dataset, seed) gets the same seconds of wall time, one after the other in
one process (same machine load, minutes apart):
- nasforge regularized evolution (P=20, S=5) with ``--scheduler none`` (every candidate trains
  to ``--max-epochs``, early stopping on), ``asha`` and ``hyperband`` (rungs ``max/eta^k`` .. 1);
  each a real ``nasforge.search`` with a huge budget, interrupted by a timer (:func:`deadline`)
  when the time is up, in the middle of a candidate's training if need be (what finished is
  stored, the rest is marked interrupted); read back with ``nasforge.open_run``;
- Optuna TPE with ``HyperbandPruner(min_resource=1, max_resource=max_epochs, reduction_factor=eta)``,
  ``study.optimize`` under the same timer: the objective trains rung by rung with nasforge's
  evaluator (``until=``/``resume=``, the evaluation seed nasforge gives that index), reports
  validation accuracy at each rung's epoch and raises ``TrialPruned`` when told to. MLP space:
  run_peers' conditional encoding (depth, per-layer width and activation, dropout). Net space:
  one Optuna integer seeds ``NetSpace.sample`` (no faithful flat encoding of variable-length
  nets with skips exists), so there TPE is in effect random sampling plus Hyperband pruning;
- with 2 objectives (accuracy, params): evolution at full fidelity vs with ASHA.

Candidates screened = candidates whose first evaluation (first rung) finished within the time:
complete + pruned + failed + cut (between rungs when the time was up).
Best = the fully trained candidate with the best validation accuracy; it is retrained on
train + validation for ``max_epochs`` epochs (``nasforge.final.train_final``; for Optuna's
best, :func:`retrain`, the same code path without a run directory) and tested once.
Kendall tau: random genomes of the space (seeded) trained through every rung without
pruning; ranking by validation accuracy at the first rung vs at the last.
Writes the ``fidelity`` section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from _results import RESULTS, machine, mean_sd, table, write_section  # noqa: E402
from run_peers import genome_from_params, suggest_params  # noqa: E402
from scipy.stats import kendalltau  # noqa: E402

import nasforge  # noqa: E402
from nasforge.config import SearchConfig, build_config  # noqa: E402
from nasforge.data import Task, load_task  # noqa: E402
from nasforge.data.targets import classification_metrics  # noqa: E402
from nasforge.errors import TrialFailed  # noqa: E402
from nasforge.evaluators.training import TrainingEvaluator as Evaluator  # noqa: E402
from nasforge.final import final_settings, train_final  # noqa: E402
from nasforge.halving import rungs  # noqa: E402
from nasforge.loop import trial_seed  # noqa: E402
from nasforge.pareto import hypervolume, pareto_front  # noqa: E402
from nasforge.spaces import Genome, MLPSpace, make_space  # noqa: E402
from nasforge.train.trainer import predict_logits, train  # noqa: E402

FAMILY = {"digits": "mlp", "digits-images": "net", "mnist-5k": "net"}
# mnist-5k: at 75 s only about 5 ASHA candidates fitted, too few for a rung of eta results to form
DEFAULT_SECONDS = {"digits": 20, "digits-images": 40, "mnist-5k": 150}
# 27 epochs on mnist-5k would leave full fidelity one or two candidates in its time (and cost ~20 min more)
DEFAULT_MAX_EPOCHS = {"digits": 27, "digits-images": 27, "mnist-5k": 9}
FULL = {"datasets": "digits,digits-images,mnist-5k", "seeds": 2, "tau_genomes": 16}
QUICK = {"datasets": "digits", "seeds": 1, "seconds": 20, "max_epochs": 9, "tau_genomes": 10}
MEASURE = {"warmup": 1, "repeats": 5}  # latency is no objective here; every method measures alike
POPULATION = {"population_size": 20, "sample_size": 5}
SINGLE = ("full", "asha", "hyperband", "tpe-hb")
MULTI = ("full", "asha", "hyperband", "asha-crowding")
LABEL = {"full": "evolution, full fidelity", "asha": "evolution + ASHA", "hyperband": "evolution + Hyperband",
         "tpe-hb": "Optuna TPE + HyperbandPruner", "asha-crowding": "evolution + ASHA, --promote crowding"}
# a nasforge method: (scheduler, promotion within a rung's front)
SCHEDULE = {"full": ("none", "hypervolume"), "asha": ("asha", "hypervolume"), "hyperband": ("hyperband", "hypervolume"),
            "asha-crowding": ("asha", "crowding")}


class TimeUp(KeyboardInterrupt):
    """Raised when a method's seconds are spent (a search handles it as Ctrl-C)."""


# code a timer may interrupt: training, predicting and measuring a candidate; never a store or file write
INTERRUPTIBLE = ("/nasforge/train/", "/nasforge/evaluators/", "/nasforge/measure/", "/torch/nn/")
# (nor torch's grad-mode switches: cut between setting a mode and entering its block, the mode would stay set)
UNINTERRUPTIBLE = ("/sqlalchemy/", "/sqlite3/", "/nasforge/storage.py", "/nasforge/files.py", "/torch/serialization.py",
                   "/torch/autograd/grad_mode.py", "/torch/utils/_contextlib.py")


def _interruptible(frame: Any) -> bool:
    files = []
    while frame is not None:
        files.append(frame.f_code.co_filename.replace(os.sep, "/"))
        frame = frame.f_back
    return (any(part in f for f in files for part in INTERRUPTIBLE)
            and not any(part in f for f in files for part in UNINTERRUPTIBLE))


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`TimeUp` in this (main) thread once ``seconds`` have passed, in the middle of
    a candidate's training if need be, so that every method gets exactly the same wall time;
    outside training (a store write, the strategy) it waits until training resumes (a few ms).
    Work cut off there is lost, alike for every method."""
    def ring(signum: int, frame: Any) -> None:
        if _interruptible(frame):
            # Ring again in a second: an exception raised where Python cannot pass it on (a
            # __del__ or a callback that garbage collection runs inside training) is printed
            # and dropped, and without this the search would run on for ever. A TimeUp that
            # arrives ends the search in milliseconds, well before.
            signal.setitimer(signal.ITIMER_REAL, 1.0)
            raise TimeUp
        signal.setitimer(signal.ITIMER_REAL, 0.002)  # not now: try again in 2 ms

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except TimeUp:
        pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    dataset: str
    seed: int
    method: str  # a key of LABEL
    objectives: int  # 1 or 2
    seconds: float  # wall time taken: the seconds given, to within a few ms
    complete: int
    pruned: int
    failed: int
    epochs: float = 0.0  # mean epochs trained per screened candidate
    past_first: float = math.nan  # share of the screened candidates that trained past the first rung
    params: float = math.nan  # median parameters of the screened candidates
    epoch_ms: float = math.nan  # median milliseconds of training per epoch of a screened candidate
    best_val: float | None = None
    best_params: int | None = None
    best_label: str = ""
    test_acc: float | None = None  # the best's retrained test accuracy
    front: list[tuple[float, int]] = field(default_factory=list)  # (val_acc, params) of the complete front
    cut: int = 0  # candidates past their first rung, cut off by the time limit before they concluded

    @property
    def screened(self) -> int:
        return self.complete + self.pruned + self.failed + self.cut

    @property
    def per_hour(self) -> float:
        return self.screened / self.seconds * 3600


def sections(dataset: str, max_epochs: int, eta: int, method: str = "full") -> dict[str, Any]:
    """The configuration sections every nasforge method of this benchmark shares."""
    kind, promote = SCHEDULE[method]
    return {"space": {"family": FAMILY.get(dataset, "mlp")}, "train": {"epochs": max_epochs},
            "measure": dict(MEASURE),
            "scheduler": {"kind": kind, "min_epochs": 1, "max_epochs": max_epochs, "eta": eta, "promote": promote}}


def run_config(dataset: str, seed: int, max_epochs: int, eta: int) -> SearchConfig:
    return build_config({**sections(dataset, max_epochs, eta), "data": {"dataset": dataset}, "seed": seed})


# ---------------------------------------------------------------- nasforge searches
def run_nasforge(dataset: str, method: str, seed: int, seconds: float, workdir: Path, max_epochs: int, eta: int,
                 objectives: int = 1) -> Outcome:
    """Regularized evolution with ``method``'s scheduler (a key of SCHEDULE) for ``seconds``."""
    out = workdir / f"{dataset}-{method}-{objectives}obj-seed{seed}"
    extra: dict[str, Any] = {"objectives": ["accuracy", "params"]} if objectives == 2 else {}
    start = time.perf_counter()
    with deadline(seconds):
        nasforge.search(dataset, strategy="evolution", budget=100_000, seed=seed, out=out,
                        config={"strategy": {"name": "evolution", **POPULATION}}, **sections(dataset, max_epochs, eta, method),
                        **extra)
    elapsed = time.perf_counter() - start
    run = nasforge.open_run(out)
    done = [t.metrics for t in run.trials if t.finished]
    # cut off between rungs or during a later one: screened at its first rung
    cut = [[e for e in t.rungs if not e.get("failed")] for t in run.trials if not t.finished]
    cut = [entries[-1]["metrics"] for entries in cut if entries]
    screened = [m for m in done + cut if m]
    outcome = Outcome(dataset, seed, method, objectives, elapsed,
                      sum(t.state == "complete" for t in run.trials if t.finished),
                      sum(t.state == "pruned" for t in run.trials if t.finished),
                      sum(t.state == "failed" for t in run.trials if t.finished),
                      _mean([float(m.get("epochs", 0)) for m in screened]) or 0.0,
                      _share([m.get("epochs", 0) > rungs(1, max_epochs, eta)[0] for m in screened]),
                      *screened_sizes(screened), cut=len(cut))
    if objectives == 2:
        outcome.front = [(t.metrics["val_acc"], int(t.metrics["params"])) for t in run.front]
    elif run.best is not None:
        best = run.best
        outcome.best_val, outcome.best_params = best.metrics["val_acc"], int(best.metrics["params"])
        outcome.best_label = nasforge.spaces.genome_from_dict(best.genome).summary()
        outcome.test_acc = train_final(out, epochs=max_epochs, seed=seed)["test_acc"]
    return outcome


# ---------------------------------------------------------------- Optuna TPE + Hyperband pruner
def retrain(config: SearchConfig, task: Task, genome: Genome, epochs: int, seed: int) -> float:
    """Test accuracy after training ``genome`` on train + validation as ``train_final`` does."""
    settings = final_settings(config, genome, epochs, None)
    torch.manual_seed(seed)
    model = genome.build(task.input_shape, task.n_classes)
    X, y = torch.cat([task.X_train, task.X_val]), torch.cat([task.y_train, task.y_val])
    train(model, X, y, X, y, settings, torch.Generator().manual_seed(seed))
    return classification_metrics(predict_logits(model, task.X_test), task.y_test)["acc"]


def optuna_genome(trial: Any, space: Any) -> Genome:
    """MLP: run_peers' conditional encoding. Net: a genome of ``space.sample`` under an Optuna integer."""
    if isinstance(space, MLPSpace):
        return genome_from_params(suggest_params(trial, space, conditional=True))
    return space.sample(np.random.default_rng(trial.suggest_int("genome_seed", 0, 2**31 - 2)))


def run_optuna(dataset: str, seed: int, seconds: float, max_epochs: int, eta: int) -> Outcome:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # not the trial the timer cut off: its traceback is expected
    start = time.perf_counter()
    config = run_config(dataset, seed, max_epochs, eta)
    epochs = rungs(1, max_epochs, eta)
    finished: dict[int, tuple[Genome, dict[str, Any]]] = {}
    screened: dict[int, dict[str, Any]] = {}  # each trial's metrics at the last rung it finished, training seconds summed
    failed = [0, 0]  # trials that failed, and those of them that had finished a rung first
    with deadline(seconds):  # loading the data counts, as in a nasforge search
        task = load_task(dataset, seed=seed)
        space = make_space(config.space, task)
        # as in nasforge's runs here, where nothing reads speed: it is timed at a candidate's last rung only
        evaluator = Evaluator(task, config.train, config.measure, speed_at_first_rung=False)

        def objective(trial: Any) -> float:
            genome = optuna_genome(trial, space)
            space.check(genome)
            state, seconds = None, 0.0
            for epoch in epochs:
                try:
                    evaluation = evaluator.evaluate(genome, trial_seed(seed, trial.number), until=epoch, resume=state)
                except TrialFailed:
                    failed[0] += 1
                    failed[1] += trial.number in screened
                    raise
                state, metrics = evaluation.train_state, evaluation.metrics
                seconds += metrics["train_seconds"]
                screened[trial.number] = {**metrics, "train_seconds": seconds}
                trial.report(metrics["val_acc"], epoch)
                if epoch < epochs[-1] and trial.should_prune():
                    raise optuna.TrialPruned()
            finished[trial.number] = (genome, metrics)
            return metrics["val_acc"]

        pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs, reduction_factor=eta)
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner)
        study.optimize(objective, catch=(TrialFailed,))
    elapsed = time.perf_counter() - start
    S = optuna.trial.TrialState
    pruned = sum(t.state == S.PRUNED for t in study.trials)
    outcome = Outcome(dataset, seed, "tpe-hb", 1, elapsed, len(finished), pruned, failed[0],
                      _mean([m["epochs"] for m in screened.values()]) or 0.0,
                      _share([m["epochs"] > epochs[0] for m in screened.values()]),
                      *screened_sizes(list(screened.values())), cut=len(screened) - len(finished) - pruned - failed[1])
    if finished:  # best validation accuracy; ties: fewer parameters, then earlier (as nasforge)
        number = max(finished, key=lambda n: (finished[n][1]["val_acc"], -finished[n][1]["params"], -n))
        genome, metrics = finished[number]
        outcome.best_val, outcome.best_params = metrics["val_acc"], int(metrics["params"])
        outcome.best_label = genome.summary()
        outcome.test_acc = retrain(config, task, genome, max_epochs, seed)
    return outcome


# ---------------------------------------------------------------- ranking fidelity
@dataclass
class Fidelity:
    dataset: str
    epochs: list[int]
    accs: list[list[float]]  # per genome: validation accuracy at each rung
    failed: int
    seconds: float

    def tau(self, rung: int) -> tuple[float, float]:
        """Kendall tau (and p) between the ranking at ``rung`` and at the last rung."""
        a = [g[rung] for g in self.accs]
        b = [g[-1] for g in self.accs]
        result = kendalltau(a, b)
        return float(result.statistic), float(result.pvalue)


def rank_fidelity(dataset: str, n: int, max_epochs: int, eta: int, seed: int = 0) -> Fidelity:
    """``n`` random genomes (seeded) trained through every rung, continuing each rung's state."""
    start = time.perf_counter()
    task = load_task(dataset, seed=seed)
    config = build_config({**sections(dataset, max_epochs, eta), "measure": {"warmup": 0, "repeats": 1},
                           "data": {"dataset": dataset}, "seed": seed})
    space = make_space(config.space, task)
    evaluator = Evaluator(task, config.train, config.measure)
    epochs = rungs(1, max_epochs, eta)
    rng = np.random.default_rng([seed, 20_16])
    accs: list[list[float]] = []
    failed = 0
    for i in range(n):
        genome = space.sample(rng)
        state, row = None, []
        try:
            for epoch in epochs:
                evaluation = evaluator.evaluate(genome, trial_seed(seed, i), until=epoch, resume=state)
                state = evaluation.train_state
                row.append(evaluation.metrics["val_acc"])
        except TrialFailed:
            failed += 1
            continue
        accs.append(row)
    return Fidelity(dataset, epochs, accs, failed, time.perf_counter() - start)


# ---------------------------------------------------------------- the report
def screened_sizes(metrics: Sequence[dict[str, Any]]) -> tuple[float, float]:
    """Median parameters of the screened candidates, and their median training milliseconds per
    epoch (what an epoch costs depends on the network, so a search that favours larger ones
    screens fewer per hour at the same epochs)."""
    params = [float(m["params"]) for m in metrics if "params" in m]
    per_epoch = [1e3 * m["train_seconds"] / m["epochs"] for m in metrics if m.get("epochs") and "train_seconds" in m]
    return (statistics.median(params) if params else math.nan, statistics.median(per_epoch) if per_epoch else math.nan)


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else math.nan


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.mean(vals) if vals else None


def reference(outcomes: Sequence[Outcome]) -> tuple[float, float]:
    """One reference point per dataset: validation accuracy 0, -(log10 of the most parameters of
    any front member of any run on it, + 1)."""
    most = max((p for o in outcomes for _, p in o.front), default=10)
    return 0.0, -(math.log10(most) + 1.0)


def front_hv(outcome: Outcome, ref: tuple[float, float]) -> float:
    points = [(acc, -math.log10(params)) for acc, params in outcome.front]
    return hypervolume([points[i] for i in pareto_front(points)], ref) if points else 0.0


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def ratio_text(values: Sequence[float]) -> str:
    vals = [v for v in values if math.isfinite(v)]
    return mean_sd(vals, 2) + "x" if vals else "n/a"


def paired(outcomes: Sequence[Outcome], dataset: str, objectives: int, method: str, key: Any) -> list[float]:
    """Per seed: ``key`` of ``method`` over ``key`` of full fidelity (same dataset and seed)."""
    out = []
    for o in outcomes:
        if (o.dataset, o.objectives, o.method) != (dataset, objectives, method):
            continue
        base = next(b for b in outcomes if (b.dataset, b.seed, b.objectives, b.method) == (dataset, o.seed, objectives, "full"))
        num, den = key(o), key(base)
        out.append(num / den if den else math.inf if num else math.nan)
    return out


def report(outcomes: list[Outcome], fidelity: list[Fidelity], args: argparse.Namespace, argv: Sequence[str],
           seconds_of: dict[str, float], epochs_of: dict[str, int], total: float) -> str:
    datasets = list(dict.fromkeys(o.dataset for o in outcomes))
    seeds = sorted({o.seed for o in outcomes})
    single_rows, multi_rows, goals = [], [], []
    refs = {d: reference([o for o in outcomes if o.dataset == d and o.objectives == 2]) for d in datasets}
    for d in datasets:
        for method in SINGLE:
            runs = [o for o in outcomes if (o.dataset, o.objectives, o.method) == (d, 1, method)]
            if not runs:
                continue
            ratios = paired(outcomes, d, 1, method, lambda o: o.per_hour) if method != "full" else []
            single_rows.append([
                d, LABEL[method], len(runs), f"{seconds_of[d]:g}", mean_sd([o.seconds for o in runs], 0),
                mean_sd([o.screened for o in runs], 1),
                f"{statistics.mean(o.complete for o in runs):.1f} / {statistics.mean(o.pruned for o in runs):.1f} / "
                f"{statistics.mean(o.failed for o in runs):.1f} / {statistics.mean(o.cut for o in runs):.1f}", mean_sd([o.epochs for o in runs], 1),
                mean_sd([o.params for o in runs if math.isfinite(o.params)], 0),
                mean_sd([o.epoch_ms for o in runs if math.isfinite(o.epoch_ms)], 1),
                mean_sd([o.per_hour for o in runs], 0), ratio_text(ratios) if ratios else "1 (reference)",
                mean_sd([o.best_val for o in runs if o.best_val is not None], 2, 100),
                mean_sd([o.test_acc for o in runs if o.test_acc is not None], 2, 100),
                mean_sd([o.best_params for o in runs if o.best_params is not None], 0),
                " / ".join(f"`{o.best_label}`" if o.best_label else "none complete" for o in runs),
            ])
        for method in MULTI:
            runs = [o for o in outcomes if (o.dataset, o.objectives, o.method) == (d, 2, method)]
            if not runs:
                continue
            ratios = paired(outcomes, d, 2, method, lambda o: front_hv(o, refs[d])) if method != "full" else []
            multi_rows.append([
                d, LABEL[method], len(runs), mean_sd([o.seconds for o in runs], 0), mean_sd([o.screened for o in runs], 1),
                mean_sd([o.complete for o in runs], 1), mean_sd([len(o.front) for o in runs], 1),
                mean_sd([front_hv(o, refs[d]) for o in runs], 3), ratio_text(ratios) if ratios else "1 (reference)",
            ])
        goals.append(goal_lines(d, outcomes, refs[d], epochs_of[d], args.eta))
    tau_rows = []
    for f in fidelity:
        taus = [f.tau(r) for r in range(len(f.epochs) - 1)]
        tau_rows.append([f.dataset, len(f.accs), f.failed, ", ".join(map(str, f.epochs)),
                         f"{taus[0][0]:.3f} (p {taus[0][1]:.3f})" if taus else "n/a",
                         ", ".join(f"{e} ep: {t:.2f}" for e, (t, _) in zip(f.epochs, taus)),
                         f"{f.seconds:.0f}"])
    command = ".venv/bin/python benchmarks/fidelity.py" + "".join(f" {a}" for a in argv)
    seconds_text = ", ".join(f"{d} {seconds_of[d]:g} s" for d in datasets)
    rungs_text = "; ".join(f"{d} {', '.join(map(str, rungs(1, epochs_of[d], args.eta)))}" for d in datasets)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "## Multi-fidelity search at equal wall time (issue #16)",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}  ",
        f"Whole benchmark {total / 60:.1f} min; 1-minute load average {getattr(args, 'load_at_start', math.nan):.1f} at "
        f"the start, {load:.1f} at the end, on {os.cpu_count()} cores (above 1: other jobs shared the machine). "
        f"Seeds {', '.join(map(str, seeds))}. Seconds per method and (dataset, seed): {seconds_text}. "
        f"Rungs (min 1 epoch, eta {args.eta}): {rungs_text}; full fidelity trains every candidate up to the last "
        "rung's epochs (early stopping, patience 6, for every method). Spaces: digits mlp, digits-images and "
        "mnist-5k net. Regularized evolution "
        f"P={POPULATION['population_size']}, S={POPULATION['sample_size']}; measurement warm-up "
        f"{MEASURE['warmup']}, {MEASURE['repeats']} repeats (every method, once per candidate: later rungs reuse the "
        "size counted at the first rung; speed and energy are timed at the last rung, which pruned candidates "
        "never reach); one torch thread.",
        "",
        *([
            "**One objective (validation accuracy)**:",
            "",
            table(["dataset", "method", "seeds", "seconds given", "wall s", "screened", "complete / pruned / failed / cut",
                   "epochs per candidate", "median params screened", "training ms per epoch", "candidates per hour", "per hour vs full", "best val acc %", "retrained test acc %", "its params",
                   "best genome per seed"], single_rows),
            "",
        ] if single_rows else []),
        *([
            "**Two objectives (accuracy, params)**, hypervolume of the front of fully trained candidates in "
            "(validation accuracy, -log10 params), both maximised, above one reference point per dataset "
            f"({'; '.join(f'{d}: (0, {r[1]:.2f})' for d, r in refs.items())}: -(log10 of the largest front member of "
            "any run on the dataset + 1)):",
            "",
            table(["dataset", "method", "seeds", "wall s", "screened", "fully trained", "front size", "hypervolume",
                   "HV vs full"], multi_rows),
            "",
        ] if multi_rows else []),
        *([
            "**Ranking fidelity**: random genomes of the space (seed 0), each trained through every rung without "
            "pruning (each rung continues the previous one's training state); Kendall tau between the ranking by "
            "validation accuracy at a rung and at the last rung:",
            "",
            table(["dataset", "genomes", "failed", "rungs", "tau first vs last rung", "tau per rung vs last", "s"], tau_rows),
            "",
        ] if tau_rows else []),
        "Goals (per dataset, means over seeds; >= 3x candidates per hour and retrained test accuracy at least "
        "the full-fidelity search's, both for evolution + ASHA; two-objective hypervolume at least full fidelity's, "
        "for ASHA and for Hyperband):",
        "",
        *goals,
        "",
        "Notes:",
        "- Mean ± sd over seeds. Every method gets exactly its seconds: a timer interrupts the search (or "
        "Optuna's `optimize`) when they are spent, in the middle of a candidate's training if need be (never in a "
        "store write: there it waits for training to resume, a few ms), and the work in progress is lost alike "
        "for every method. *Screened* = candidates whose first evaluation finished in that time: complete + "
        "pruned + failed + *cut* (a multi-fidelity candidate that finished a rung and was training a later one "
        "when the time was up); candidates the cheap-objectives screen skipped before training do not count. "
        "Rates use the wall time, and ratios are per seed against the full-fidelity run of the same dataset and "
        "seed. Only candidates fully trained in the time can be the best or make the front.",
        "- *Best* = the fully trained candidate with the best validation accuracy (nasforge: `open_run(out).best`; "
        "Optuna: best COMPLETE trial, ties to fewer params); it is retrained from scratch on train + validation "
        "for the dataset's max epochs with the run seed and tested once (`train_final`; for Optuna the same steps "
        "without a run directory). Test accuracy plays no part in selection.",
        "- Optuna's objective trains with nasforge's evaluator and seeds, so training is identical; it reports at "
        "the rung epochs only. Digits: TPE over run_peers' MLP encoding. Net space: TPE suggests one integer that "
        "seeds `NetSpace.sample`, so it searches no structure (random sampling + Hyperband pruning). Optuna keeps "
        "its study in memory, nasforge writes SQLite and weight files for every rung.",
        "- A rung below the last measures validation accuracy only (evolution reads nothing else there); the last "
        "rung, which full fidelity's candidates reach at once, measures every split. Size is counted at a "
        "candidate's first rung, latency and energy are timed at its last (nothing here reads them before), and "
        "both are carried on (they do not depend on the weights). ASHA's first eta - 1 results at a rung wait "
        "(training state saved) until the eta-th arrives; then the best of them goes on.",
        "- With two objectives a rung ranks its results by Pareto rank, then within a front by what each adds to "
        "the front's hypervolume (`--promote hypervolume`, nasforge's default, the row *evolution + ASHA*) or by "
        "NSGA-II's crowding distance (`--promote crowding`, as Syne Tune's MOASHA), which puts both ends of a "
        "front first whatever they are. The goal line reads the default. Hyperband (the row *evolution + "
        "Hyperband*) promotes the same way within each bracket; its brackets start in turn at the first, second, "
        "... rung, the last of them at full training, a hedge for candidates whose early ranking misleads.",
        "- Times are of a shared 2-core machine; compare ratios, which were measured minutes apart under the same load.",
    ]
    return "\n".join(lines)


def goal_lines(d: str, outcomes: list[Outcome], ref: tuple[float, float], max_epochs: int, eta: int) -> str:
    """Each goal for dataset ``d``: met / NOT met, and why, from the measured numbers."""
    def pick(objectives: int, method: str) -> list[Outcome]:
        return [o for o in outcomes if (o.dataset, o.objectives, o.method) == (d, objectives, method)]

    parts = []
    full, asha = pick(1, "full"), pick(1, "asha")
    if full and asha:
        ratios = [r for r in paired(outcomes, d, 1, "asha", lambda o: o.per_hour) if math.isfinite(r)]
        ratio = statistics.mean(ratios) if ratios else math.nan
        fewer = statistics.mean(o.epochs for o in full) / max(1e-9, statistics.mean(o.epochs for o in asha))
        n_asha = statistics.mean(o.screened for o in asha)
        if ratio >= 3:
            why = "met"
        elif n_asha < eta**2:
            why = (f"NOT met: only {n_asha:.1f} candidates fit in the time; ASHA lets the best of a rung's first "
                   f"{eta} go on and then the best floor(n/{eta}) of n, so with so few many candidates still train to "
                   "the last rung")
        elif fewer >= 3:
            costlier = _ratio(asha, full, "epoch_ms")
            larger = _ratio(asha, full, "params")
            why = f"NOT met: epochs per candidate fell {fewer:.1f}x, but "
            if costlier >= 1.2:
                why += (f"an epoch of ASHA's candidates took {costlier:.1f}x as long (median parameters {larger:.1f}x: "
                        "ranked after one epoch, the networks that learn fastest, larger ones, go on and breed), and ")
            why += ("each candidate and rung has a fixed cost (building the network, measuring validation, storing "
                    "weights and training state)")
        else:
            early = statistics.mean(o.epochs for o in full) < 0.8 * max_epochs
            past = _mean([o.past_first for o in asha if math.isfinite(o.past_first)])
            why = (f"NOT met: epochs per candidate fell only {fewer:.1f}x"
                   + (" (early stopping already cuts full training short)" if early else "")
                   + (f"; {100 * past:.0f} % of ASHA's {n_asha:.1f} candidates trained past the first rung (1 in "
                      f"{eta} in a long run): the best of a rung's first {eta}, then the best floor(n/{eta}) of the n "
                      "so far go on, a large share while few have reported or while the strategy keeps improving" if past is not None else ""))
        parts.append(f"candidates per hour x{ratio:.2f}: {why}")
        ft, at = _mean([o.test_acc for o in full]), _mean([o.test_acc for o in asha])
        if ft is None or at is None:
            parts.append("test accuracy: NOT met (a search finished no fully trained candidate in its time)")
        else:
            verdict = "met" if at >= ft else "NOT met"
            n_full = statistics.mean(o.complete for o in full)
            same = [o.best_label for o in sorted(asha, key=lambda o: o.seed)] == [
                o.best_label for o in sorted(full, key=lambda o: o.seed)]
            why = (" (the same genomes were chosen)" if same else "") if at >= ft else (
                f": the ASHA pick (from {statistics.mean(o.complete for o in asha):.1f} fully trained candidates vs "
                f"{n_full:.1f}) tested lower")
            parts.append(f"retrained test accuracy {100 * at:.2f} vs {100 * ft:.2f} % ({100 * (at - ft):+.2f} points): "
                         f"{verdict}{why}")
    mfull = pick(2, "full")
    for method in ("asha", "hyperband"):  # each scheduler against full fidelity
        mine = pick(2, method)
        if not (mfull and mine):
            continue
        hf = statistics.mean(front_hv(o, ref) for o in mfull)
        hm = statistics.mean(front_hv(o, ref) for o in mine)
        sd = max(statistics.stdev(front_hv(o, ref) for o in runs) if len(runs) > 1 else 0.0 for runs in (mfull, mine))
        if hm >= hf:
            verdict = "met" + (f", by {hm - hf:.3f}, within the seed-to-seed sd ({sd:.3f})" if hm - hf <= sd else "")
        elif hf - hm <= sd:
            verdict = f"NOT met, by {hf - hm:.3f}, within the seed-to-seed sd ({sd:.3f})"
        else:
            verdict = (f"NOT met: {LABEL[method].split(' + ')[1]} fully trained "
                       f"{statistics.mean(o.complete for o in mine):.1f} candidates vs "
                       f"{statistics.mean(o.complete for o in mfull):.1f}, and only fully trained ones make the front")
        name = "" if method == "asha" else "Hyperband's "
        parts.append(f"{name}hypervolume {hm:.3f} vs {hf:.3f}: {verdict}")
    return f"- **{d}**: " + "; ".join(parts) + "."


def _ratio(a: Sequence[Outcome], b: Sequence[Outcome], key: str) -> float:
    """Mean over ``a`` of ``key`` divided by its mean over ``b`` (NaN where either has none)."""
    x = [getattr(o, key) for o in a if math.isfinite(getattr(o, key))]
    y = [getattr(o, key) for o in b if math.isfinite(getattr(o, key))]
    return statistics.mean(x) / statistics.mean(y) if x and y and statistics.mean(y) > 0 else math.nan


def warm_up() -> None:
    """One-time costs (imports, first torch calls, Optuna import) before anything is timed."""
    import optuna  # noqa: F401

    with tempfile.TemporaryDirectory() as tmp:
        nasforge.search("iris", strategy="evolution", budget=2, seed=0, out=Path(tmp) / "w", train={"epochs": 1},
                        measure=dict(MEASURE), config={"strategy": {"name": "evolution", "population_size": 2}})


def main(argv: Sequence[str] | None = None, results: Path = RESULTS) -> list[Outcome]:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="digits only, 1 seed, 20 s per method, max 9 epochs")
    ap.add_argument("--datasets", default=None, help=f"comma-separated (default {FULL['datasets']})")
    ap.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 2)")
    ap.add_argument("--seconds", type=float, default=None,
                    help="seconds per method, dataset and seed (default " +
                         ", ".join(f"{d} {s}" for d, s in DEFAULT_SECONDS.items()) + ")")
    ap.add_argument("--max-epochs", type=int, default=None, help="epochs of a fully trained candidate (default " +
                    ", ".join(f"{d} {e}" for d, e in DEFAULT_MAX_EPOCHS.items()) + "; --quick 9)")
    ap.add_argument("--eta", type=int, default=3, help="reduction factor (default 3)")
    ap.add_argument("--tau-genomes", type=int, default=None, help="random genomes for Kendall tau (default 16; 0: none)")
    ap.add_argument("--objectives", choices=("1", "2", "1,2"), default="1,2",
                    help="the searches to run: one objective, two, or both (default)")
    ap.add_argument("--section", default="fidelity", help="the RESULTS.md section to write (default fidelity)")
    args = ap.parse_args(argv)
    counts = {int(c) for c in args.objectives.split(",")}
    defaults = QUICK if args.quick else FULL
    datasets = (args.datasets or defaults["datasets"]).split(",")
    n_seeds = args.seeds if args.seeds is not None else defaults["seeds"]
    max_epochs = args.max_epochs or defaults.get("max_epochs")
    epochs_of = {d: max_epochs or DEFAULT_MAX_EPOCHS.get(d, 27) for d in datasets}
    tau_genomes = args.tau_genomes if args.tau_genomes is not None else defaults["tau_genomes"]
    given = args.seconds if args.seconds is not None else defaults.get("seconds")
    seconds_of = {d: given if given is not None else DEFAULT_SECONDS.get(d, 60) for d in datasets}
    torch.set_num_threads(1)
    warm_up()
    args.load_at_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    began = time.perf_counter()
    outcomes: list[Outcome] = []
    fidelity: list[Fidelity] = []
    with tempfile.TemporaryDirectory(prefix="nasforge-fidelity-") as tmp:
        workdir = Path(tmp)
        for d in datasets:
            for seed in range(n_seeds):
                s, max_epochs = seconds_of[d], epochs_of[d]
                for method in SINGLE if 1 in counts else ():
                    if method == "tpe-hb":
                        o = run_optuna(d, seed, s, max_epochs, args.eta)
                    else:
                        o = run_nasforge(d, method, seed, s, workdir, max_epochs, args.eta)
                    outcomes.append(o)
                    print(f"{d:13s} seed {seed} {LABEL[o.method]:30s} {o.seconds:6.1f}s screened {o.screened:4d} "
                          f"(c {o.complete} p {o.pruned} f {o.failed} cut {o.cut}) best val {pct(o.best_val)} "
                          f"test {pct(o.test_acc)} [{o.best_label}]", flush=True)
                for method in MULTI if 2 in counts else ():
                    o = run_nasforge(d, method, seed, s, workdir, max_epochs, args.eta, objectives=2)
                    outcomes.append(o)
                    print(f"{d:13s} seed {seed} {LABEL[o.method] + ' (2 obj)':30s} {o.seconds:6.1f}s screened "
                          f"{o.screened:4d} (c {o.complete} p {o.pruned} cut {o.cut}) front {len(o.front)}", flush=True)
            if tau_genomes > 1:
                f = rank_fidelity(d, tau_genomes, epochs_of[d], args.eta)
                fidelity.append(f)
                print(f"{d:13s} tau first vs last rung {f.tau(0)[0] if len(f.epochs) > 1 else float('nan'):.3f} "
                      f"({len(f.accs)} genomes, {f.seconds:.0f}s)", flush=True)
            if d != datasets[-1]:  # what is done so far, in case the run is stopped
                text = report(outcomes, fidelity, args, argv, seconds_of, epochs_of, time.perf_counter() - began)
                write_section(args.section, f"{text}\n\n**Partial**: the run was still going after {d}.", results)
    total = time.perf_counter() - began
    text = report(outcomes, fidelity, args, argv, seconds_of, epochs_of, total)
    write_section(args.section, text, results)
    print(text)
    print(f"total {total / 60:.1f} min")
    return outcomes


if __name__ == "__main__":
    main()
