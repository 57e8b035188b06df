"""Regularized evolution, random search and the predictor strategy on the NAS-Bench-201 table (no training).

    .venv/bin/python benchmarks/nb201.py                                  # 30 seeds, budgets 25..300, all datasets
    .venv/bin/python benchmarks/nb201.py --seeds 5 --budgets 100 --dataset cifar10   # quick look

Each run drives nasforge's own ask/tell strategies with the TabularEvaluator, keeps the cell
with the best VALIDATION accuracy seen and reports that cell's test accuracy and its regret
to the best test accuracy in the table. Configurations: random search, REA with the
NAS-Bench-201 paper's P=10/S=3, REA with P/S tuned on separate seeds (1000+) by the
mean best validation accuracy found, so neither the evaluation seeds nor the test column
influence the tuning, the tuned REA without repeats (a cell seen before is told its stored
result and costs no query, as ``nasforge search`` does by default) and the predictor
strategy with its default settings, and the predictor whose 10 initial cells are the best
of 100 samples by synflow on the real network, the predictor with a Gaussian process surrogate,
UCB acquisition (beta 2) and 20 initial cells, and the synflow-picked predictor whose ensemble
also reads each candidate's synflow score (``--proxy-feature``) (``--methods`` picks some).
Per method it also reports the distinct cells among the queries and the strategy's seconds
per ask. synflow scores that ``benchmarks/proxies.py --cells all`` kept in
``benchmarks/.cache`` are loaded instead of scored again (the same scorer made them), so the
seconds per ask of the synflow methods then leave out the 43-61 ms each cell's synflow
costs to compute (section proxies); without the cache every cell is scored when first
needed. Writes its section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import time

START = time.perf_counter()  # the wall time reported includes imports and loading the table

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from _results import command_line, machine, mean_sd, starmap, table, write_section  # noqa: E402
from proxies import cache_file  # noqa: E402

from nasforge.errors import TrialFailed  # noqa: E402
from nasforge.evaluators.table import N_CLASSES, NB201Table, TabularEvaluator  # noqa: E402
from nasforge.proxies import ProxyScorer, make_scorer  # noqa: E402
from nasforge.spaces.nb201 import NB201Space  # noqa: E402
from nasforge.strategies import Strategy  # noqa: E402
from nasforge.strategies.evolution import EvolutionSettings, RegularizedEvolution  # noqa: E402
from nasforge.strategies.ga import rank_key  # noqa: E402
from nasforge.strategies.predictor import PredictorSearch, PredictorSettings  # noqa: E402
from nasforge.strategies.random import RandomSearch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FILE = REPO.parent / "shared" / "data" / "nb201_12epoch.csv"
PLOT = Path(__file__).with_name("nb201_best_so_far.png")
PAPER = (10, 3)  # NAS-Bench-201's REA setting (AutoDL reference code)
GRID = [(p, s) for p in (10, 20, 50) for s in (3, 5, 10)]
TUNE_SEED0 = 1000
# Published 200-epoch means (SPEC §1): (REA, random) -- only their gap is comparable here.
PUBLISHED = {"cifar10": (93.92, 93.70), "cifar100": (71.84, 71.04), "imagenet": (45.54, 44.57)}


GP_SETTINGS = {"surrogate": "gp", "acquisition": "ucb", "beta": 2.0, "initial": 20}
MAX_REPEATS = 100  # repeats in a row that end a run without repeats (the study's rule)


@dataclass
class Method:
    """One configuration: ``config`` (P, S) for REA; for the predictor, ``settings`` (fields of
    PredictorSettings, as the CLI flags set them) and ``proxy`` (the run's ``--proxy``, or None)."""

    label: str
    kind: str = "rea"  # rea | random | predictor | predictor-synflow | predictor-gp | ...
    config: tuple[int, int] | None = None
    no_repeats: bool = False
    settings: dict = field(default_factory=dict)
    proxy: str | None = None
    proxy_pool: int = 100  # the run's --proxy-pool: untrained samples the proxy picks each first cell from


@dataclass
class Run:
    """One search: after each query, the (val, test) % of the best cell by validation so far,
    the distinct cells queried and the strategy's seconds spent in ask so far."""

    curve: list[tuple[float, float]] = field(default_factory=list)
    distinct: list[int] = field(default_factory=list)
    ask_seconds: list[float] = field(default_factory=list)


SCORERS: dict[str, ProxyScorer] = {}  # synflow per dataset, kept across seeds (a cell's score is the same)


def scorer(dataset: str) -> ProxyScorer:
    """synflow on the real NAS-Bench-201 network, as ``--proxy synflow`` scores a table's cells;
    the scores ``benchmarks/proxies.py --cells all`` kept are loaded rather than computed again."""
    if dataset not in SCORERS:
        SCORERS[dataset] = make_scorer("synflow", NB201Space(), None, seed=0, table_dataset=dataset)
        kept = cache_file("synflow", dataset)
        if kept.exists():  # by cell id, so a kept file from another table gives only the cells they share
            with np.load(kept) as data:
                SCORERS[dataset].scores.update(zip(data["ids"].tolist(), data["scores"].tolist()))
    return SCORERS[dataset]


def make(method: Method, seed: int, budget: int, dataset: str = "cifar10") -> Strategy:
    rng = np.random.default_rng(seed)
    if method.kind == "random":
        return RandomSearch(NB201Space(), rng, budget)
    if method.kind.startswith("predictor"):  # as `nasforge search --strategy predictor [flags] [--proxy synflow]`
        strategy = PredictorSearch(NB201Space(), rng, budget, PredictorSettings(**method.settings))
        if method.proxy:
            strategy.proxy, strategy.proxy_pool = scorer(dataset), method.proxy_pool
        return strategy
    p, s = method.config or PAPER
    return RegularizedEvolution(NB201Space(), rng, budget, EvolutionSettings(population_size=p, sample_size=s))


def run(evaluator: TabularEvaluator, config: tuple[int, int] | None, seed: int,
        budgets: list[int]) -> dict[int, tuple[float, float]]:
    """For each budget, the (val, test) % of the cell with the best validation accuracy among the
    first ``budget`` queries of one search of max(budgets) queries. With P and S fixed the
    strategies do not depend on the budget, so a budget-b run is exactly this run's prefix."""
    method = Method("", "rea", config) if config else Method("", "random")
    curve = best_so_far(evaluator, method, seed, max(budgets)).curve
    return {b: curve[b - 1] for b in budgets}


def best_so_far(evaluator: TabularEvaluator, method: Method, seed: int, queries: int) -> Run:
    """One search of ``queries`` queries (see Run). Without repeats a cell queried before is
    told its stored result and costs no query; a run that meets only repeats stops early and
    its last state stands for the remaining budgets."""
    strategy = make(method, seed, queries, evaluator.dataset)
    best, best_test, out = (-1.0, 0.0, 0), float("nan"), Run()
    seen: dict[str, dict] = {}
    ask_s, in_a_row, number = 0.0, 0, 0
    while len(out.curve) < queries and in_a_row < MAX_REPEATS:
        started = time.perf_counter()
        proposal = strategy.ask()
        ask_s += time.perf_counter() - started
        proposal.trial = number
        number += 1
        known = seen.get(proposal.genome.id) if method.no_repeats else None
        if known is not None:
            strategy.tell(proposal, known["val_acc"] if known["val_acc"] >= 0 else None, known)
            in_a_row += 1
            continue
        in_a_row = 0
        try:
            metrics = evaluator.evaluate(proposal.genome, seed).metrics
        except TrialFailed:  # a cell missing from a user's partial table: a failed trial
            strategy.tell(proposal, None)
            metrics = {"val_acc": -1.0}
        else:
            strategy.tell(proposal, metrics["val_acc"], metrics)
        seen[proposal.genome.id] = metrics
        key = rank_key(metrics["val_acc"], metrics.get("params", 0), len(out.curve))
        if key > best:  # selection reads validation only; ties as a run's best: fewer parameters, then earlier
            best, best_test = key, metrics["test_acc"]
        out.curve.append((100 * best[0], 100 * best_test) if best[0] >= 0 else (float("nan"),) * 2)
        out.distinct.append(len(seen))
        out.ask_seconds.append(ask_s)
    for series in (out.curve, out.distinct, out.ask_seconds):
        series += series[-1:] * (queries - len(series))
    return out


def plot(curves: dict[str, dict[str, list[list[tuple[float, float]]]]], path: Path) -> None:
    """Mean selected test accuracy against queries, ± sd over seeds, one panel per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 4), squeeze=False)
    for ax, (dataset, by_method) in zip(axes[0], curves.items()):
        for name, runs in by_method.items():
            tests = np.array([[t for _, t in run] for run in runs])
            mean, sd = np.nanmean(tests, axis=0), np.nanstd(tests, axis=0)
            x = np.arange(1, tests.shape[1] + 1)
            ax.plot(x, mean, label=name)
            ax.fill_between(x, mean - sd, mean + sd, alpha=0.2)
        ax.set(title=dataset, xlabel="queries", ylabel="selected cell's test accuracy % (12 epochs)")
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tune(evaluator: TabularEvaluator, budgets: list[int], seeds: int) -> tuple[tuple[int, int], list[list[object]]]:
    """Pick (P, S) by mean best validation accuracy over all budgets on tuning seeds."""
    scores = {}
    for config in GRID:
        vals = [v for seed in range(TUNE_SEED0, TUNE_SEED0 + seeds)
                for v, _ in run(evaluator, config, seed, budgets).values()]
        scores[config] = statistics.mean(vals)
    winner = max(GRID, key=lambda c: (scores[c], -c[0], -c[1]))
    rows = [[f"P={p}, S={s}", f"{scores[(p, s)]:.3f}", "**won**" if (p, s) == winner else ""] for p, s in GRID]
    return winner, rows


def searches(evaluator: TabularEvaluator, wanted: list[Method], seeds: int, queries: int,
             jobs: int) -> list[tuple[Method, list[Run]]]:
    """Every method's runs over seeds 0..seeds-1, in ``jobs`` processes (forked, so each has
    the table already; a proxy scorer is then made once per process)."""
    tasks = [(evaluator, method, seed, queries) for method in wanted for seed in range(seeds)]
    done = starmap(best_so_far, tasks, jobs)
    return [(method, done[k * seeds:(k + 1) * seeds]) for k, method in enumerate(wanted)]


def validation_floor(bench: NB201Table, dataset: str) -> float:
    """The test regret (points) of the cell a search that had queried every cell would select:
    the best validation accuracy, ties to fewer parameters. No method selecting on validation
    can expect a lower regret."""
    val, test = bench.values[(dataset, "val")], bench.values[(dataset, "test")]
    tied = np.flatnonzero(val == val.max())
    pick = min(tied, key=lambda row: (bench.archs[row].n_params(3, N_CLASSES[dataset]), row))
    return float(test.max() - test[pick])


def goal_lines(dataset: str, results: dict[str, list[Run]], oracle: float, floor: float,
               budgets: list[int]) -> str:
    """The issue's two goals for one dataset, said as met or not, with the numbers."""
    def regret(name: str, budget: int) -> float:
        return statistics.mean(oracle - r.curve[budget - 1][1] for r in results[name])

    lines = []
    if 100 in budgets:
        name = min(results, key=lambda n: regret(n, 100))
        value = regret(name, 100)
        lines.append(f"- **{dataset}**, 100 queries: best mean regret {value:.2f} ({name}): "
                     + ("met" if value <= 0.25 else f"**NOT met** (validation floor {floor:.2f})"))
    rea = [n for n in results if "(tuned)" in n and "no repeats" not in n] or [n for n in results if "REA" in n]
    if {50, 150} <= set(budgets) and rea:
        ours = [n for n in results if "predictor" in n] or list(results)
        name = min(ours, key=lambda n: regret(n, 50))
        mine, theirs = regret(name, 50), regret(rea[0], 150)
        lines.append(f"- **{dataset}**, 50 vs 150 queries: {name} at 50 {mine:.2f} vs {rea[0]} at 150 "
                     f"{theirs:.2f}: " + ("met" if mine < theirs else "**NOT met**"))
    return "\n".join(lines)


def methods(tuned: tuple[int, int], wanted: list[str]) -> list[Method]:
    """The configurations to run: every one, or those whose kind (random, rea, rea-no-repeats,
    predictor) is in ``wanted``; random search always runs (the gaps are measured to it)."""
    found = [Method("random search", "random"), Method(f"REA P={PAPER[0]}, S={PAPER[1]} (paper)", "rea", PAPER)]
    if tuned != PAPER:
        found.append(Method(f"REA P={tuned[0]}, S={tuned[1]} (tuned)", "rea", tuned))
    found += [Method(f"REA P={tuned[0]}, S={tuned[1]} (tuned), no repeats", "rea", tuned, no_repeats=True),
              Method("predictor (defaults)", "predictor"),
              Method("predictor + synflow (first 10 picked from 100)", "predictor-synflow", proxy="synflow"),
              Method("predictor, GP surrogate, UCB β=2, 20 initial", "predictor-gp", settings=GP_SETTINGS),
              Method("predictor + synflow (first 10 picked from 100, and an input of the ensemble)",
                     "predictor-synflow-feature", settings={"proxy_feature": True}, proxy="synflow"),
              Method("predictor + synflow (picks and input), learning ranks", "predictor-synflow-ranks",
                     settings={"proxy_feature": True, "targets": "ranks"}, proxy="synflow"),
              Method("predictor + synflow (picks from 1000 and input), learning ranks", "predictor-synflow-pool",
                     settings={"proxy_feature": True, "targets": "ranks"}, proxy="synflow", proxy_pool=1000)]
    kind = {m.label: ("rea-no-repeats" if m.no_repeats else m.kind) for m in found}
    return [m for m in found if m.kind == "random" or not wanted or kind[m.label] in wanted]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--budgets", default="25,50,100,150,300")
    ap.add_argument("--methods", default="", help="comma-separated kinds to run besides random search: "
                    "rea, rea-no-repeats, predictor, predictor-synflow, predictor-gp, predictor-synflow-feature, "
                    "predictor-synflow-ranks, predictor-synflow-pool (default: all)")
    ap.add_argument("--dataset", default=None, help="one or more, comma-separated (default: all in the table)")
    ap.add_argument("--bench-file", type=Path, default=DEFAULT_FILE)
    ap.add_argument("--tune-seeds", type=int, default=30)
    ap.add_argument("--section", default="nb201", help="RESULTS.md section to write (default: nb201)")
    ap.add_argument("--jobs", type=int, default=1, help="processes running searches at once (default 1; "
                    "more share the machine, so the seconds per ask rise)")
    args = ap.parse_args()
    start = START
    budgets = sorted({int(b) for b in args.budgets.split(",")})
    bench = NB201Table(args.bench_file)
    sections, gaps, tuning, floors, goals = [], [], [], [], []
    curves: dict[str, dict[str, list[list[tuple[float, float]]]]] = {}
    wanted_methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    wanted = args.dataset.split(",") if args.dataset else bench.datasets
    for dataset in [d.strip() for d in wanted if d.strip()]:
        evaluator = TabularEvaluator(bench, dataset)
        dataset = evaluator.dataset
        oracle = bench.best(dataset, "test")[1]
        if any(m.startswith("rea") for m in wanted_methods) or not wanted_methods:
            tuned, tune_rows = tune(evaluator, budgets, args.tune_seeds)
            tuning.append(f"**{dataset}**: tuned setting P={tuned[0]}, S={tuned[1]}\n\n"
                          + table(["setting", "mean best val % (tuning seeds)", "winner"], tune_rows))
        else:  # no REA in this run: nothing to tune
            tuned = PAPER
        results, curves[dataset] = {}, {}
        for method, runs in searches(evaluator, methods(tuned, wanted_methods), args.seeds, budgets[-1], args.jobs):
            curves[dataset][method.label] = [r.curve for r in runs]
            results[method.label] = runs
        floor = validation_floor(bench, dataset)
        floors.append(f"{dataset} {floor:.2f}")
        rows = []
        for budget in budgets:
            for name, runs in results.items():
                vals = [r.curve[budget - 1][0] for r in runs]
                tests = [r.curve[budget - 1][1] for r in runs]
                rows.append([dataset, budget, name, mean_sd(vals), mean_sd(tests), mean_sd([oracle - t for t in tests]),
                             mean_sd([r.distinct[budget - 1] for r in runs], 1),
                             f"{statistics.mean(r.ask_seconds[budget - 1] / budget for r in runs):.4f}"])
            rand = [r.curve[budget - 1][1] for r in results["random search"]]
            for name in list(results)[1:]:
                other = [r.curve[budget - 1][1] for r in results[name]]
                se = ((statistics.variance(other) / len(other) + statistics.variance(rand) / len(rand)) ** 0.5
                      if len(other) > 1 else 0.0)
                gaps.append([dataset, budget, name, f"{statistics.mean(other) - statistics.mean(rand):+.2f} ± {se:.2f}"])
        goals.append(goal_lines(dataset, results, oracle, floor, budgets))
        published = PUBLISHED[dataset]
        sections.append(f"### {dataset} (best test accuracy in the table: {oracle:.2f} %)\n\n"
                        + table(["dataset", "budget", "method", "best val acc %", "selected test acc %",
                                 "regret %", "distinct cells", "s per ask"], rows)
                        + f"\n\nPublished 200-epoch gap REA − random on {dataset}: "
                          f"{published[0]:.2f} − {published[1]:.2f} = {published[0] - published[1]:+.2f} points.")
        print(f"{dataset} done at {time.perf_counter() - start:.1f}s", flush=True)
    picture = PLOT if args.section == "nb201" else PLOT.with_name(f"{args.section}_best_so_far.png")
    plot(curves, picture)
    wall = time.perf_counter() - start
    body = "\n\n".join(sections)
    write_section(args.section, f"## NAS-Bench-201 (tabular): regularized evolution, predictor and random search\n\n"
                  f"Command: {command_line()}  \nMachine: {machine()}  \nTable: `{args.bench_file.name}`, "
                  f"{len(bench)} cells. Seeds 0..{args.seeds - 1} per method and budget; wall time of the whole "
                  f"benchmark (tuning included): {wall:.1f} s.\n\n"
                  "Budget = number of table queries (evaluations). Each method keeps the cell with the best "
                  "validation accuracy it has seen; the table shows mean ± sd over seeds of that best validation "
                  "accuracy, the selected cell's test accuracy and its regret to the best test accuracy in the "
                  "table. The test column is never used for selection or tuning. Budgets are prefixes of one "
                  "run per seed (with P and S fixed, no strategy depends on the budget). *Distinct cells*: "
                  "different cells among the queries (a run without repeats pays only for new ones); "
                  "*s per ask*: the strategy's own time per query (for the predictor: fitting the ensemble "
                  "and scoring candidates), on this machine.\n\n"
                  "**These are 12-epoch accuracies** (mini NAS-Bench-201), not the 200-epoch figures papers "
                  "report, so they are not comparable to the published REA 93.92 / random 93.70 on CIFAR-10; "
                  "compare the REA − random gap instead.\n\n"
                  f"![best so far against queries]({picture.name}) — `{picture.name}`: mean ± sd over seeds of the "
                  "selected cell's test accuracy after each query (log scale).\n\n"
                  + body
                  + "\n\n### Goals (issue #20)\n\n"
                  "At 100 queries, mean test regret <= 0.25 points on every dataset; at 50 queries, a "
                  "method better (lower mean regret) than tuned REA at 150. *Validation floor*: the regret "
                  "of the cell a method would select had it queried all 15,625 (best validation accuracy, "
                  "ties to fewer parameters, as a nasforge run picks its best): "
                  + ", ".join(floors) + " points; no method that selects on validation can expect less.\n\n"
                  + "\n".join(goals)
                  + "\n\n### Gap to random search (selected test accuracy, points; ± standard error)\n\n"
                  + table(["dataset", "budget", "method", "gap"], gaps)
                  + (f"\n\n### Tuning of P and S (seeds {TUNE_SEED0}..{TUNE_SEED0 + args.tune_seeds - 1}, "
                     f"score = mean best validation accuracy over budgets {args.budgets})\n\n"
                     + "\n\n".join(tuning) if tuning else ""))
    print(f"wall time {wall:.1f}s")


if __name__ == "__main__":
    main()
