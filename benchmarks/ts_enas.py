"""TS-ENAS on digits-images: what weight inheritance buys, and TS-ENAS vs regularized evolution.

    .venv/bin/python benchmarks/ts_enas.py            # 20 genomes, 2 search seeds
    .venv/bin/python benchmarks/ts_enas.py --quick    # a smoke run of every part
    .venv/bin/python benchmarks/ts_enas.py --part search --seeds 5 --jobs 2   # (c) only, 5 seeds
    .venv/bin/python benchmarks/ts_enas.py --part search --seeds 5 --jobs 2 --no-inheritance   # TS-ENAS from scratch

(a) Time per evaluation: every genome of a fixed sample is trained three ways by nasforge's
    Evaluator: from scratch to convergence (the reference), briefly from inherited weights
    (TS-ENAS's evaluation), briefly from scratch (the same cost without inheritance). The
    supernet is trained once and not refreshed here, so every genome starts from the same
    store; its one-off cost is reported apart. Both supernet modes are measured.
(b) Kendall tau between the ranking by validation accuracy after the brief inherited training
    and the ranking after full training from scratch, on the same genomes.
(c) TS-ENAS (with inheritance) and regularized evolution search the same cells space with
    the same number of evaluations and the same brief training; each selected genome (best
    validation accuracy) is then retrained from scratch to convergence (``--retrain-seeds``
    times, default 3, averaged) and tested; the paired difference is reported with its
    standard error over seeds and in test rows.
Searches are driven by the same ask/evaluate/tell loop as nasforge's Study (no database).
"""
from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from _results import command_line, machine, mean_sd, starmap, table, write_section  # noqa: E402
from scipy.stats import kendalltau  # noqa: E402

from nasforge.data import load_task  # noqa: E402
from nasforge.evaluators.training import TrainingEvaluator as Evaluator  # noqa: E402
from nasforge.loop import trial_seed  # noqa: E402
from nasforge.measure.settings import MeasureSettings  # noqa: E402
from nasforge.spaces.cells import CellsSpace  # noqa: E402
from nasforge.strategies.evolution import RegularizedEvolution  # noqa: E402
from nasforge.strategies.two_stage import TwoStageEvolution, TwoStageSettings, weight_store_options  # noqa: E402
from nasforge.train.inheritance import CellWeightStore  # noqa: E402
from nasforge.train.settings import TrainSettings  # noqa: E402

MEASURE = MeasureSettings(warmup=1, repeats=3)


def sample_genomes(space: CellsSpace, n: int) -> list:
    """The fixed sample of part (a): the first ``n`` distinct genomes drawn with seed 12345."""
    rng, genomes = np.random.default_rng(12345), []
    while len(genomes) < n:
        g = space.sample(rng)
        genomes += [g] if g not in genomes else []
    return genomes


def timed(evaluator: Evaluator, genome, seed: int) -> tuple[dict, float]:
    """Evaluate as a Study does (evaluate, then let the weight source learn); the time of both."""
    start = time.perf_counter()
    evaluation = evaluator.evaluate(genome, seed)
    evaluator.learn(genome, evaluation)
    return evaluation.metrics, time.perf_counter() - start


def inheritance_part(task, space, genomes, full: TrainSettings, short: TrainSettings, epochs: dict, tmp: Path):
    scratch_full, scratch_short = Evaluator(task, full, MEASURE), Evaluator(task, short, MEASURE)
    runs = {"full": [], "short": []}
    for i, g in enumerate(genomes):
        runs["full"].append(timed(scratch_full, g, i))
        runs["short"].append(timed(scratch_short, g, i))
        print(f"genome {i} {g.summary()}: full val {runs['full'][-1][0]['val_acc']:.3f} "
              f"({runs['full'][-1][1]:.1f}s)", flush=True)
    supernets = {}
    for mode in ("sampled", "stacked"):
        store = CellWeightStore(task, space, short, tmp / f"store-{mode}.pt", supernet_epochs=epochs[mode],
                                refresh_every=10**9, mode=mode)
        inherited = Evaluator(task, short, MEASURE, weights=store)
        runs[mode] = [timed(inherited, g, i) for i, g in enumerate(genomes)]
        supernets[mode] = store.supernet_info
        runs[mode][0] = (runs[mode][0][0], runs[mode][0][1] - store.supernet_info["seconds"])  # one-off cost apart
        print(f"{mode}: supernet {store.supernet_info['seconds']:.1f}s", flush=True)
    return runs, supernets


def search(name: str, task, space, budget: int, seed: int, short: TrainSettings, tmp: Path,
           seconds: float | None = None, inheritance: bool = True) -> tuple[tuple, float, int, int, float, str]:
    """One search: ``budget`` evaluations, or (with ``seconds``) as many as fit in that wall time.
    Returns ((genome, metrics) of the best by validation accuracy, wall time, its params, evaluations,
    the mean params of every evaluated genome, and how the best was made: the operator, with the
    stage for TS-ENAS)."""
    rng = np.random.default_rng(seed)
    store = None
    if name == "ts-enas":
        settings = TwoStageSettings(inheritance=inheritance)
        strategy = TwoStageEvolution(space, rng, budget, settings)
        store = CellWeightStore(task, space, short, tmp / f"search-{seed}.pt", seed=seed,
                                **weight_store_options(settings, budget))
    else:
        strategy = RegularizedEvolution(space, rng, budget if seconds is None else 10**6)
    evaluator = Evaluator(task, short, MEASURE, weights=store)
    start, best, i, sizes, made = time.perf_counter(), None, 0, [], ""
    while (i < budget) if seconds is None else (i == 0 or time.perf_counter() - start < seconds):
        proposal = strategy.ask()
        proposal.trial = i
        metrics, _ = timed(evaluator, proposal.genome, trial_seed(seed, i))
        strategy.tell(proposal, metrics["val_acc"], metrics)
        if best is None or (metrics["val_acc"], -metrics["params"]) > (best[1]["val_acc"], -best[1]["params"]):
            best = (proposal.genome, metrics)
            made = proposal.operator + (f" ({proposal.info['stage']})" if "stage" in proposal.info else "")
        sizes.append(metrics["params"])
        i += 1
    return best, time.perf_counter() - start, int(best[1]["params"]), i, statistics.mean(sizes), made


def retrained(evaluator: Evaluator, genome, trainings: int) -> dict:
    """``genome`` trained from scratch ``trainings`` times (seeds 99, 100, ...): the last metrics,
    with ``test_acc`` the mean test accuracy and ``test_accs`` each training's."""
    accs = [(m := evaluator.evaluate(genome, 99 + k).metrics)["test_acc"] for k in range(trainings)]
    return {**m, "test_acc": statistics.mean(accs), "test_accs": accs}


def pair(task, space, budget: int, seed: int, short: TrainSettings, full: TrainSettings, tmp: Path,
         inheritance: bool = True, trainings: int = 1) -> list[tuple]:
    """TS-ENAS with ``budget`` evaluations, then evolution for the wall time TS-ENAS took (its
    supernet included); each selected genome retrained from scratch ``trainings`` times and tested."""
    ts = search("ts-enas", task, space, budget, seed, short, tmp, inheritance=inheritance)
    evo = search("evolution", task, space, budget, seed, short, tmp, seconds=ts[1])
    retrain = Evaluator(task, full, MEASURE)
    return [(name, seed, secs, retrained(retrain, best[0], trainings), best, n, sizes, made)
            for name, (best, secs, _, n, sizes, made) in (("ts-enas", ts), ("evolution", evo))]


def difference_line(finals: list[tuple], test_rows: int, trainings: int) -> str:
    """The paired difference TS-ENAS - evolution in retrained test accuracy, with its standard
    error over search seeds, in points and in test rows, and the spread of one genome's
    retrainings (what a single retraining per genome would add to the comparison)."""
    diffs = [100 * (t[3]["test_acc"] - e[3]["test_acc"]) for t, e in zip(finals[0::2], finals[1::2])]
    se = (f" ± {statistics.stdev(diffs) / len(diffs) ** 0.5:.2f} points (mean ± standard error over {len(diffs)} seeds)"
          if len(diffs) > 1 else " points")
    row = 100 / test_rows
    line = (f"Paired by seed, TS-ENAS - evolution: {statistics.mean(diffs):+.2f}{se}, "
            f"{statistics.mean(diffs) / row:+.1f} of the {test_rows} test rows (one row is {row:.2f} points).")
    if trainings > 1:
        spread = statistics.mean(100 * statistics.stdev(f[3]["test_accs"]) for f in finals)
        line += (f" Retraining one selected genome with another seed moves its test accuracy by {spread:.2f} points "
                 f"(sd, mean over the {len(finals)} genomes); the table's accuracy is the mean of {trainings} "
                 f"trainings per genome.")
    return line




def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few genomes and tiny searches: checks that it runs")
    ap.add_argument("--part", choices=("all", "inheritance", "search"), default="all",
                    help="all (default; section ts-enas), inheritance: (a) and (b) only, search: (c) only "
                         "(section ts-enas-search)")
    ap.add_argument("--seeds", type=int, default=2, help="search seeds in (c) (default 2)")
    ap.add_argument("--no-inheritance", action="store_true",
                    help="(c): TS-ENAS trains every individual from scratch (section ts-enas-search-scratch)")
    ap.add_argument("--retrain-seeds", type=int, default=3,
                    help="(c): trainings from scratch of each selected genome, averaged (default 3)")
    ap.add_argument("--jobs", type=int, default=1, help="(c): seeds searched at once, one process of one thread "
                                                        "each (default 1: one process, one thread)")
    args = ap.parse_args()
    if args.retrain_seeds < 1:
        ap.error("--retrain-seeds must be at least 1")
    torch.set_num_threads(1)
    if args.quick:
        n_genomes, seeds, budget, short_epochs, full = 4, [0], 6, 2, TrainSettings(epochs=8, patience=3)
        epochs = {"sampled": 3, "stacked": 1}
    else:
        n_genomes, seeds, budget, short_epochs, full = 20, list(range(args.seeds)), 24, 3, TrainSettings(epochs=30, patience=5)
        epochs = {"sampled": 20, "stacked": 5}
    trainings = 1 if args.quick else args.retrain_seeds
    short = TrainSettings(epochs=short_epochs, patience=0)
    task = load_task("digits-images", seed=0)
    space = CellsSpace(task.input_shape, task.n_classes)
    genomes = sample_genomes(space, n_genomes)
    tmp = Path(tempfile.mkdtemp(prefix="nasforge-ts-enas-bench-"))
    runs, supernets, finals = {}, {}, []
    try:
        if args.part != "search":
            runs, supernets = inheritance_part(task, space, genomes, full, short, epochs, tmp)
        if args.part != "inheritance":
            tasks = [(task, space, budget, seed, short, full, tmp, not args.no_inheritance, trainings)
                     for seed in seeds]
            finals = [f for done in starmap(pair, tasks, args.jobs) for f in done]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def col(kind: str, key: str) -> list[float]:
        return [m[key] for m, _ in runs[kind]]

    wall = time.perf_counter() - START
    body = (
        f"## TS-ENAS: weight inheritance and search (digits-images)\n\nCommand: {command_line()}  \nMachine: {machine()}  \n"
        f"Wall time {wall / 60:.1f} min; 1-minute load average at the end {os.getloadavg()[0]:.1f} on 2 cores "
        f"(above 1: other jobs shared the machine, so absolute times are indicative; ratios within a part are "
        f"measured under the same load). "
        f"Space: cells, N {space.min_cells}..{space.max_cells}, C={space.channels}; data split seed 0.\n\n"
    )
    if runs:
        secs = {k: [s for _, s in v] for k, v in runs.items()}
        rows_a = [["scratch, to convergence", f"≤{full.epochs} (patience {full.patience}), mean {statistics.mean(col('full', 'epochs')):.1f}",
                   mean_sd(secs["full"], 1), mean_sd(col("full", "val_acc"), 2, 100), "-"],
                  ["scratch, brief", short_epochs, mean_sd(secs["short"], 1), mean_sd(col("short", "val_acc"), 2, 100), "-"]]
        for mode in ("sampled", "stacked"):
            rows_a.append([f"inherited ({mode} supernet), brief", short_epochs, mean_sd(secs[mode], 1),
                           mean_sd(col(mode, "val_acc"), 2, 100), mean_sd(col(mode, "inherited_fraction"), 2)])
        ratio = statistics.mean(secs["full"]) / statistics.mean(secs["sampled"])
        sup = "; ".join(f"{m}: {supernets[m]['seconds']:.0f} s ({epochs[m]} epochs)" for m in supernets)
        reference = col("full", "val_acc")
        rows_b = []
        for kind, label in (("sampled", "inherited (sampled), brief"), ("stacked", "inherited (stacked), brief"),
                            ("short", "scratch, brief")):
            tau, p = kendalltau(col(kind, "val_acc"), reference)
            rows_b.append([label, f"{tau:.3f}", f"{p:.3f}"])
        body += (
            f"**(a) Evaluation of {n_genomes} genomes** (sampled with seed 12345; time = nasforge's whole evaluation, "
            f"training and measuring; Adam lr 3e-3):\n\n"
            + table(["training", "epochs", "time per evaluation s", "val acc %", "fraction inherited"], rows_a)
            + f"\n\nScratch-to-convergence over inherited-brief time: **{ratio:.1f}x** (paper: about 10x, 100 vs 10 epochs). "
            f"One-off supernet cost: {sup}.\n\n"
            f"**(b) Ranking fidelity**: Kendall tau against the ranking by validation accuracy after full training from scratch "
            f"(same {n_genomes} genomes):\n\n" + table(["proxy", "tau", "p"], rows_b) + "\n\n"
        )
    if finals:
        rows_c = []
        for name in ("ts-enas", "evolution"):
            mine = [f for f in finals if f[0] == name]
            rows_c.append([name + (" (no inheritance)" if name == "ts-enas" and args.no_inheritance else ""), len(mine), mean_sd([f[5] for f in mine], 1), mean_sd([f[2] for f in mine], 0),
                           mean_sd([f[4][1]["val_acc"] for f in mine], 2, 100), mean_sd([f[3]["test_acc"] for f in mine], 2, 100),
                           mean_sd([f[3]["params"] for f in mine], 0), mean_sd([f[6] for f in mine], 0),
                           ", ".join(f"{k} {v}" for k, v in Counter(f[7] for f in mine).most_common()),
                           " / ".join(f[4][0].summary() for f in mine)])
        wins = sum(t[3]["test_acc"] >= e[3]["test_acc"] for t, e in zip(finals[0::2], finals[1::2]))
        body += (
            f"**(c) Search at the same wall time**: TS-ENAS runs {budget} evaluations (its supernet time included "
            f"in its wall time); regularized evolution then gets the same wall time and evaluates as many candidates "
            f"as fit; all trained {short_epochs} epochs (TS-ENAS from {'scratch' if args.no_inheritance else 'inherited weights'}), seeds {seeds[0]}..{seeds[-1]}"
            f"{f', {args.jobs} seeds at once (one thread each)' if args.jobs > 1 else ''}; the "
            f"selected genome (best validation accuracy) is then retrained from scratch (≤{full.epochs} epochs"
            f"{f', {trainings} times, seeds 99..{98 + trainings}' if trainings > 1 else ''}) and tested:\n\n"
            + table(["strategy", "runs", "evaluations", "search wall time s", "selected val acc % (brief)",
                     "retrained test acc %", "params", "params of every evaluated genome", "selected genome made by",
                     "selected genomes"], rows_c)
            + f"\n\nTS-ENAS's retrained test accuracy >= evolution's in {wins} of {len(seeds)} seeds. "
            + difference_line(finals, len(task.y_test), trainings) + "\n\n"
        )
    body += "Mean ± sd. Selection uses validation data only."
    print(body)
    if not args.quick:
        section = "ts-enas-search" + ("-scratch" if args.no_inheritance else "") if args.part == "search" else "ts-enas"
        write_section(section, body)


if __name__ == "__main__":
    main()
