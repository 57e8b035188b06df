"""nasforge's search strategies against peer tools, on the same splits at an equal budget.

    .venv/bin/python benchmarks/run_peers.py                  # wdbc, digits, wine, colors; 3 seeds; budget 20 (~25 min, busy 2 cores)
    .venv/bin/python benchmarks/run_peers.py --quick          # iris and wine, 1 seed, budget 6 (under 2 minutes)
    .venv/bin/python benchmarks/run_peers.py --datasets wdbc --seeds 2 --budget 10

Methods (the budget is the number of candidate networks trained; failed ones count too):
- nasforge regularized evolution and random search (and "bilevel" when nasforge has it),
  each one full ``nasforge.search`` run;
- Optuna TPE (objective: validation accuracy) and Optuna NSGA-II (objectives: validation
  accuracy up, parameters down) over the same MLP space expressed as Optuna parameters.
  Every Optuna trial becomes an ``MLPGenome`` and is trained and measured by nasforge's own
  ``Evaluator`` with the seed nasforge would give the same evaluation index, so training is
  identical to nasforge's;
- scikit-learn's ``MLPClassifier`` over a fixed grid of hidden_layer_sizes x activation x
  alpha, each fitted on the training split and scored on the validation split (sklearn's own
  training: Adam lr 1e-3, batch 200, L2 alpha, no dropout). Its budget is its grid size.

Every method sees the split ``nasforge.load_task(dataset, seed=seed)`` gives, which is the
split ``nasforge.search(dataset, seed=seed)`` uses. The chosen model of a run is the candidate
with the best validation accuracy (ties: fewer parameters, then earlier); test accuracy is
only read off it. Writes the ``peers`` section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from _results import machine, mean_sd, table, write_section  # noqa: E402

import nasforge  # noqa: E402
from nasforge.config import build_config  # noqa: E402
from nasforge.data import Task, load_task  # noqa: E402
from nasforge.errors import TrialFailed  # noqa: E402
from nasforge.evaluators.training import TrainingEvaluator as Evaluator  # noqa: E402
from nasforge.loop import trial_seed  # noqa: E402
from nasforge.pareto import hypervolume as hypervolume_2d  # noqa: E402
from nasforge.pareto import pareto_front  # noqa: E402
from nasforge.spaces import MLPGenome, MLPSpace, make_space  # noqa: E402
from nasforge.spaces.mlp import Dense  # noqa: E402

DEFAULT_DATASETS = "wdbc,digits,wine,colors"
QUICK = {"datasets": "iris,wine", "seeds": 1, "budget": 6}

# scikit-learn grid: 5 x 2 x 3 = 30 candidates, widths and depths inside the nasforge space.
SKLEARN_GRID: dict[str, list[Any]] = {
    "hidden_layer_sizes": [(32,), (128,), (64, 64), (128, 128), (64, 64, 64)],
    "activation": ["relu", "tanh"],
    "alpha": [1e-4, 1e-3, 1e-2],
}


# ---------------------------------------------------------------- results of one run
@dataclass
class Candidate:
    """One trained candidate as every method reports it."""

    val_acc: float
    test_acc: float
    params: int
    test_f1: float = float("nan")
    label: str = ""


@dataclass
class MethodResult:
    method: str
    dataset: str
    seed: int
    budget: int  # candidates trained (failed ones included)
    candidates: list[Candidate]  # the completed ones, in evaluation order
    seconds: float
    failed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def chosen(self) -> Candidate:
        return select(self.candidates)


def select(candidates: Sequence[Candidate]) -> Candidate:
    """Best validation accuracy; ties go to fewer parameters, then to the earlier candidate."""
    if not candidates:
        raise ValueError("no completed candidate to choose from")
    best = max(range(len(candidates)), key=lambda i: (candidates[i].val_acc, -candidates[i].params, -i))
    return candidates[best]


# ---------------------------------------------------------------- hypervolume
def max_space_params(space: MLPSpace) -> int:
    """Parameters of the largest network of the space: every layer at the widest width."""
    widest = MLPGenome(layers=tuple(Dense(units=space.widths[-1]) for _ in range(space.max_layers)))
    return widest.n_params(space.input_dim, space.n_classes)


def reference_point(max_params: int) -> tuple[float, float]:
    """(val_acc = 0, -log10 params = -(log10(max params of the space) + 1)), both maximised."""
    return 0.0, -(math.log10(max_params) + 1.0)


def front_points(candidates: Sequence[Candidate]) -> list[tuple[float, float]]:
    """(validation accuracy, -log10 parameters) of the Pareto-optimal candidates."""
    points = [(c.val_acc, -math.log10(c.params)) for c in candidates]
    return [points[i] for i in pareto_front(points)]


def hypervolume(candidates: Sequence[Candidate], max_params: int) -> float:
    """Area (accuracy x decades of parameters) the candidates dominate above the reference point."""
    return hypervolume_2d(front_points(candidates), reference_point(max_params))


# ---------------------------------------------------------------- the nasforge space and its Optuna twin
def nasforge_space(task: Task) -> MLPSpace:
    """The MLP space ``nasforge.search`` builds for this task with default settings."""
    config = build_config({"data": {"dataset": task.name}})
    space = make_space(config.space, task)
    assert isinstance(space, MLPSpace)
    return space


def suggest_params(trial: Any, space: MLPSpace, conditional: bool = True) -> dict[str, Any]:
    """Ask an Optuna trial for one MLP of ``space``.

    ``conditional``: layer i's width and activation exist only when depth > i (tree-structured,
    TPE's natural form). Otherwise all ``max_layers`` layers are always sampled and the first
    ``n_layers`` used: a fixed-length encoding that NSGA-II's crossover and mutation act on.
    """
    n_layers = trial.suggest_int("n_layers", space.min_layers, space.max_layers)
    for i in range(n_layers if conditional else space.max_layers):
        trial.suggest_categorical(f"units_{i}", list(space.widths))
        trial.suggest_categorical(f"activation_{i}", list(space.activations))
    trial.suggest_categorical("dropout", list(space.dropouts))
    return dict(trial.params)


def genome_from_params(params: dict[str, Any]) -> MLPGenome:
    """The nasforge genome an Optuna parameter set stands for (layers beyond n_layers ignored)."""
    layers = tuple(Dense(units=int(params[f"units_{i}"]), activation=params[f"activation_{i}"])
                   for i in range(int(params["n_layers"])))
    return MLPGenome(layers=layers, dropout=float(params["dropout"]))


# ---------------------------------------------------------------- the methods
def run_nasforge(dataset: str, strategy: str, seed: int, budget: int, workdir: str | Path,
                 settings: dict[str, Any] | None = None) -> MethodResult:
    """One full nasforge search, in its own run directory.

    ``settings``: configuration sections (e.g. ``{"train": {"epochs": 5}}``) over nasforge's
    defaults; the benchmark uses none, the tests shorten training with them.
    """
    start = time.perf_counter()
    result = nasforge.search(dataset, strategy=strategy, budget=budget, seed=seed,
                             out=Path(workdir) / f"{dataset}-{strategy}-seed{seed}", **(settings or {}))
    seconds = time.perf_counter() - start
    done = sorted((t for t in result.trials if t.state == "complete"), key=lambda t: t.number)
    candidates = [Candidate(t.metrics["val_acc"], t.metrics["test_acc"], int(t.metrics["params"]),
                            t.metrics.get("test_f1", float("nan")), f"trial {t.number}") for t in done]
    failed = sum(t.finished and t.state == "failed" for t in result.trials)
    return MethodResult(f"nasforge {strategy}", dataset, seed, budget, candidates, seconds, failed)


def optuna_sampler(kind: str, seed: int, budget: int) -> Any:
    import optuna

    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=nsga2_population(budget))
    raise ValueError(f"unknown Optuna sampler {kind!r}")


def nsga2_population(budget: int) -> int:
    """NSGA-II's population: budget/3 (at least 2), so a run sees a few generations.

    Optuna's default of 50 would make any budget below 50 pure random sampling.
    """
    return max(2, budget // 3)


def run_optuna(dataset: str, kind: str, seed: int, budget: int, task: Task | None = None,
               settings: dict[str, Any] | None = None) -> MethodResult:
    """An in-memory Optuna study whose objective trains the genome with nasforge's Evaluator.

    ``settings`` as for ``run_nasforge``: the train and measure sections reach the Evaluator.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    task = task or load_task(dataset, seed=seed)
    config = build_config({**(settings or {}), "data": {"dataset": dataset}, "seed": seed})
    space = make_space(config.space, task)
    assert isinstance(space, MLPSpace), "the Optuna twin covers the MLP space only"
    evaluator = Evaluator(task, config.train, config.measure)
    candidates: list[Candidate] = []
    multi = kind == "nsga2"

    def objective(trial: Any) -> Any:
        genome = genome_from_params(suggest_params(trial, space, conditional=not multi))
        space.check(genome)
        m = evaluator.evaluate(genome, trial_seed(seed, trial.number)).metrics
        candidates.append(Candidate(m["val_acc"], m["test_acc"], int(m["params"]), m["test_f1"], genome.summary()))
        return (m["val_acc"], m["params"]) if multi else m["val_acc"]

    directions = ["maximize", "minimize"] if multi else ["maximize"]
    study = optuna.create_study(directions=directions, sampler=optuna_sampler(kind, seed, budget))
    study.optimize(objective, n_trials=budget, catch=(TrialFailed,))
    seconds = time.perf_counter() - start
    failed = sum(t.state == optuna.trial.TrialState.FAIL for t in study.trials)
    name = f"Optuna NSGA-II (P={nsga2_population(budget)})" if multi else "Optuna TPE"
    return MethodResult(name, dataset, seed, budget, candidates, seconds, failed)


def sklearn_params(model: Any) -> int:
    return int(sum(w.size for w in model.coefs_) + sum(b.size for b in model.intercepts_))


def run_sklearn_grid(dataset: str, seed: int, task: Task | None = None,
                     grid: dict[str, list[Any]] | None = None) -> MethodResult:
    """MLPClassifier over a grid, each point fitted on train and scored on validation."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import f1_score
    from sklearn.model_selection import ParameterGrid
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    task = task or load_task(dataset, seed=seed)
    X_train, y_train = task.X_train.flatten(1).numpy(), task.y_train.numpy()
    X_val, y_val = task.X_val.flatten(1).numpy(), task.y_val.numpy()
    X_test, y_test = task.X_test.flatten(1).numpy(), task.y_test.numpy()
    candidates: list[Candidate] = []
    points = list(ParameterGrid(grid or SKLEARN_GRID))
    for point in points:
        model = MLPClassifier(max_iter=300, random_state=seed, **point)
        # one BLAS thread, like torch everywhere here: several made fits up to 10x slower on a busy 2-core machine
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train, y_train)
        pred_test = model.predict(X_test)
        label = f"{'-'.join(map(str, point['hidden_layer_sizes']))} {point['activation']} a={point['alpha']:g}"
        candidates.append(Candidate(float(model.score(X_val, y_val)), float(np.mean(pred_test == y_test)),
                                    sklearn_params(model),
                                    float(f1_score(y_test, pred_test, average="macro", zero_division=0)), label))
    seconds = time.perf_counter() - start
    return MethodResult("sklearn MLP grid", dataset, seed, len(points), candidates, seconds)


def methods(workdir: str | Path, settings: dict[str, Any] | None = None
            ) -> dict[str, Callable[[str, int, int], MethodResult]]:
    """Every method, by the key used on the command line: f(dataset, seed, budget).

    ``settings`` (configuration sections) reach the nasforge and Optuna methods alike.
    """
    from nasforge.strategies import STRATEGIES

    found: dict[str, Callable[[str, int, int], MethodResult]] = {
        "evolution": lambda d, s, b: run_nasforge(d, "evolution", s, b, workdir, settings),
        "random": lambda d, s, b: run_nasforge(d, "random", s, b, workdir, settings),
    }
    if "bilevel" in STRATEGIES:
        found["bilevel"] = lambda d, s, b: run_nasforge(d, "bilevel", s, b, workdir, settings)
    found["tpe"] = lambda d, s, b: run_optuna(d, "tpe", s, b, settings=settings)
    found["nsga2"] = lambda d, s, b: run_optuna(d, "nsga2", s, b, settings=settings)
    found["sklearn"] = lambda d, s, b: run_sklearn_grid(d, s)
    return found


# ---------------------------------------------------------------- the report
def summary_rows(results: Sequence[MethodResult], max_params: dict[str, int]) -> list[list[object]]:
    rows = []
    keys = list(dict.fromkeys((r.dataset, r.method) for r in results))
    for dataset, method in keys:
        runs = [r for r in results if (r.dataset, r.method) == (dataset, method)]
        chosen = [r.chosen for r in runs]
        rows.append([
            dataset, method, runs[0].budget, len(runs),
            mean_sd([c.val_acc for c in chosen], 2, 100), mean_sd([c.test_acc for c in chosen], 2, 100),
            mean_sd([c.params for c in chosen], 0),
            mean_sd([hypervolume(r.candidates, max_params[dataset]) for r in runs], 3),
            mean_sd([r.seconds for r in runs], 1), sum(r.failed for r in runs),
        ])
    return rows


def report(results: Sequence[MethodResult], max_params: dict[str, int], argv: Sequence[str], total_seconds: float,
           skipped: Sequence[str]) -> str:
    command = ".venv/bin/python benchmarks/run_peers.py" + "".join(f" {a}" for a in argv)
    body = table(["dataset", "method", "budget", "seeds", "chosen val acc %", "its test acc %", "its params",
                  "hypervolume", "wall time s", "failed"], summary_rows(results, max_params))
    refs = ", ".join(f"{d} {n:,} (ref. {reference_point(n)[1]:.2f})" for d, n in max_params.items())
    seeds = sorted({r.seed for r in results})
    lines = [
        "## Peer comparison: nasforge vs Optuna (TPE, NSGA-II) vs scikit-learn MLP grid",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}  ",
        f"Seeds {', '.join(map(str, seeds))}; whole benchmark {total_seconds / 60:.1f} min.",
        "",
        body,
        "",
        "Mean ± sd over seeds. *Budget* = candidate networks trained per run (failed ones count). "
        "*Chosen* = the run's candidate with the best validation accuracy (ties: fewer parameters); "
        "its test accuracy is only read, never used. *Hypervolume* is the area the run's Pareto front "
        "of (validation accuracy, −log10 parameters) dominates, both maximised, above the reference point "
        "(validation accuracy 0, −(log10 P_max + 1)), with P_max the largest network of the nasforge space "
        f"(4 × 256 units) for the dataset: {refs}. Units: accuracy × decades of parameters; compare within a "
        "dataset only. *Wall time* covers the whole run: data loading, training, nasforge's measurements "
        "(latency, FLOPs, energy) and, for nasforge, its SQLite store and weight files.",
        "",
        "Fairness:",
        "- Same split: every method of a seed uses `nasforge.load_task(dataset, seed=seed)`, the split "
        "`nasforge.search(..., seed=seed)` uses (stratified 60/20/20).",
        "- Same training: the Optuna methods search the same space (1-4 hidden layers, widths 8..256 in powers "
        "of two, six activations, one dropout rate from {0, .1, .2, .3, .5}) as Optuna parameters, turn each "
        "trial into an `MLPGenome` and train it with nasforge's `Evaluator` (Adam lr 3e-3, batch 64, ≤ 40 "
        "epochs, early stopping with patience 6 on validation loss), with the evaluation seed nasforge gives "
        "the same evaluation index. TPE maximises validation accuracy with the layers as conditional "
        "parameters; NSGA-II maximises validation accuracy and minimises parameters, with a fixed-length "
        "encoding (all four layers always sampled, the first n used) and population budget/3 (Optuna's "
        "default 50 would be random sampling at these budgets). All samplers are seeded with the run seed.",
        "- Same budget: every search method trains exactly `budget` candidates. The scikit-learn grid is a "
        f"fixed {len(_grid_points())}-point grid (hidden layers "
        f"{', '.join('-'.join(map(str, h)) for h in SKLEARN_GRID['hidden_layer_sizes'])} × "
        f"activation {'/'.join(SKLEARN_GRID['activation'])} × alpha "
        f"{'/'.join(f'{a:g}' for a in SKLEARN_GRID['alpha'])}) whatever the budget, selected on the same "
        "validation split; it trains with scikit-learn's own loop (Adam lr 1e-3, batch 200, ≤ 300 epochs, "
        "L2 penalty alpha, no dropout; it stops when the training loss stalls for 10 epochs, not on validation loss), so it differs in training, not in data.",
        "- Torch and NumPy's BLAS (scikit-learn) use one thread everywhere; runs are sequential on a shared machine, so wall times are noisy.",
    ]
    if skipped:
        lines += ["", "Skipped: " + "; ".join(skipped)]
    return "\n".join(lines)


def _grid_points() -> list[dict[str, Any]]:
    from sklearn.model_selection import ParameterGrid

    return list(ParameterGrid(SKLEARN_GRID))


def warm_up() -> None:
    """Pay one-time costs (imports, torch and sklearn first calls) before any run is timed."""
    import optuna  # noqa: F401

    task = load_task("iris", seed=0)
    Evaluator(task).evaluate(MLPGenome(layers=(Dense(units=8),)), 0)
    run_sklearn_grid("iris", 0, task, grid={"hidden_layer_sizes": [(8,)], "activation": ["relu"], "alpha": [1e-4]})


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=None, help=f"comma-separated (default {DEFAULT_DATASETS})")
    ap.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 3)")
    ap.add_argument("--budget", type=int, default=None, help="candidates trained per search (default 20)")
    ap.add_argument("--methods", default=None, help="comma-separated subset of evolution,random,bilevel,tpe,nsga2,sklearn")
    ap.add_argument("--quick", action="store_true", help="iris and wine, 1 seed, budget 6")
    args = ap.parse_args(argv)
    defaults = QUICK if args.quick else {"datasets": DEFAULT_DATASETS, "seeds": 3, "budget": 20}
    datasets = (args.datasets or defaults["datasets"]).split(",")
    n_seeds = args.seeds if args.seeds is not None else defaults["seeds"]
    budget = args.budget if args.budget is not None else defaults["budget"]
    torch.set_num_threads(1)
    warm_up()
    began = time.perf_counter()
    results: list[MethodResult] = []
    max_params: dict[str, int] = {}
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="nasforge-peers-") as workdir:
        available = methods(workdir)
        chosen = args.methods.split(",") if args.methods else list(available)
        unknown = [m for m in chosen if m not in available]
        if unknown:
            ap.error(f"unknown or unavailable methods {unknown}; available: {', '.join(available)}")
        for dataset in datasets:
            max_params[dataset] = max_space_params(nasforge_space(load_task(dataset, seed=0)))
            for key in chosen:
                for seed in range(n_seeds):
                    try:
                        r = available[key](dataset, seed, budget)
                    except Exception as exc:  # a method that cannot run is reported, not fatal
                        skipped.append(f"{key} on {dataset} seed {seed}: {type(exc).__name__}: {exc}")
                        print("SKIPPED", skipped[-1], flush=True)
                        continue
                    results.append(r)
                    c = r.chosen
                    print(f"{dataset:7s} {r.method:24s} seed {seed}: val {c.val_acc:.4f} test {c.test_acc:.4f} "
                          f"params {c.params:7d} hv {hypervolume(r.candidates, max_params[dataset]):.3f} "
                          f"{r.seconds:6.1f}s  [{c.label}]", flush=True)
    total = time.perf_counter() - began
    text = report(results, max_params, argv, total, skipped)
    write_section("peers", text)
    print(text.split("\n\nMean")[0])
    print(f"total {total / 60:.1f} min")


if __name__ == "__main__":
    main()
