"""Why TS-ENAS's inherited-weight ranking is uncorrelated with full training, cause by cause.

    .venv/bin/python benchmarks/inheritance_rank.py --jobs 2     # 20 genomes (~30 min on 2 cores)
    .venv/bin/python benchmarks/inheritance_rank.py --quick      # a smoke run of every variant

The 20 genomes of benchmarks/ts_enas.py (cells space, digits-images, sampled with seed
12345) are trained from scratch to convergence twice (two seeds): the reference ranking is
by the mean of the two validation accuracies, and the Kendall tau between the two seeds is
the *noise ceiling*: no cheap proxy can be expected to agree with the reference much better
than full training agrees with itself. Every variant below then ranks the same genomes and
is compared with the reference, one suspected cause at a time:

- brief training from scratch (what inheritance must beat);
- the inherited start alone, 0 epochs (one-shot ranking), with and without the batch-norm
  recalibration on training data;
- 1, 3 (TS-ENAS's default) and 6 epochs of training from inherited weights;
- the learning rate on inherited weights (3e-3 default, 1e-3, 3e-4);
- a supernet trained 3x longer (60 epochs instead of 20);
- parameter count (no training at all).

Each variant is ranked by validation accuracy and by validation loss (the validation set has
360 images, so accuracy moves in steps of 0.28 points and ties are common).
"""
from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch.nn.functional as F  # noqa: E402
from _results import command_line, machine, mean_sd, one_thread, starmap, table, write_section  # noqa: E402
from scipy.stats import kendalltau  # noqa: E402
from ts_enas import sample_genomes  # noqa: E402

from nasforge.data import load_task  # noqa: E402
from nasforge.evaluators.training import TrainingEvaluator  # noqa: E402
from nasforge.measure.settings import MeasureSettings  # noqa: E402
from nasforge.spaces.cells import CellsSpace  # noqa: E402
from nasforge.train import inheritance  # noqa: E402
from nasforge.train.inheritance import CellWeightStore  # noqa: E402
from nasforge.train.settings import TrainSettings  # noqa: E402
from nasforge.train.trainer import predict_logits  # noqa: E402

MEASURE = MeasureSettings(warmup=1, repeats=3)
DATASET = "digits-images"


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    epochs: int  # 0: the inherited start itself, not trained
    lr: float = 3e-3
    supernet: int | None = None  # supernet epochs; None: from scratch
    recalibrate: bool = True
    seed_offset: int = 0  # the training seed is the genome's index plus this
    patience: int = 0


def variants(quick: bool) -> list[Variant]:
    full, base = (8, 2) if quick else (30, 20)
    out = [
        Variant("full-a", "scratch, to convergence (seed A)", full, patience=5 if not quick else 3),
        Variant("full-b", "scratch, to convergence (seed B)", full, patience=5 if not quick else 3, seed_offset=1000),
        Variant("scratch-3", "scratch, 3 epochs", 3),
        Variant("inh-0", "inherited, 0 epochs (one-shot)", 0, supernet=base),
        Variant("inh-0-nobn", "inherited, 0 epochs, no batch-norm recalibration", 0, supernet=base, recalibrate=False),
        Variant("inh-1", "inherited, 1 epoch", 1, supernet=base),
        Variant("inh-3", "inherited, 3 epochs (TS-ENAS default)", 3, supernet=base),
        Variant("inh-3-lr1e-3", "inherited, 3 epochs, lr 1e-3", 3, lr=1e-3, supernet=base),
        Variant("inh-3-lr3e-4", "inherited, 3 epochs, lr 3e-4", 3, lr=3e-4, supernet=base),
        Variant("inh-6", "inherited, 6 epochs", 6, supernet=base),
        Variant("long-0", f"inherited from a {3 * base}-epoch supernet, 0 epochs", 0, supernet=3 * base),
        Variant("long-3", f"inherited from a {3 * base}-epoch supernet, 3 epochs", 3, supernet=3 * base),
    ]
    return out


def store_for(task, space, supernet: int, folder: Path) -> CellWeightStore:
    """The weight store of a supernet trained ``supernet`` epochs (file shared by every task)."""
    return CellWeightStore(task, space, TrainSettings(), folder / f"supernet-{supernet}.pt",
                           supernet_epochs=supernet, refresh_every=10**9)


def prepare(supernet: int, folder: Path) -> float:
    task = load_task(DATASET, seed=0)
    store = store_for(task, CellsSpace(task.input_shape, task.n_classes), supernet, folder)
    store.prepare()
    return float(store.supernet_info["seconds"])


@contextlib.contextmanager
def batch_norm_recalibration(on: bool):
    original = inheritance.recalibrate_batch_norm
    if not on:
        inheritance.recalibrate_batch_norm = lambda *args, **kwargs: None
    try:
        yield
    finally:
        inheritance.recalibrate_batch_norm = original


def one_shot(evaluator: TrainingEvaluator, genome, seed: int) -> dict:
    """The inherited network itself, evaluated on validation data without training."""
    task = evaluator.task
    model = evaluator.build(genome, seed)
    evaluator.weights.initialise(model, genome)
    logits = predict_logits(model, task.X_val)
    return {"val_acc": float((logits.argmax(1) == task.y_val).float().mean()),
            "val_loss": float(F.cross_entropy(logits, task.y_val)),
            "params": sum(p.numel() for p in model.parameters())}


def run(variant: Variant, index: int, folder: Path) -> dict:
    task = load_task(DATASET, seed=0)
    space = CellsSpace(task.input_shape, task.n_classes)
    genome = sample_genomes(space, index + 1)[index]
    store = store_for(task, space, variant.supernet, folder) if variant.supernet else None
    settings = TrainSettings(epochs=max(1, variant.epochs), lr=variant.lr, patience=variant.patience)
    evaluator = TrainingEvaluator(task, settings, MEASURE, weights=store)
    seed = index + variant.seed_offset
    start = time.perf_counter()
    with batch_norm_recalibration(variant.recalibrate):
        if variant.epochs == 0:
            metrics = one_shot(evaluator, genome, seed)
        else:
            metrics = evaluator.evaluate(genome, seed).metrics
    seconds = time.perf_counter() - start
    fraction = store.last_fraction if store is not None else 0.0
    return {"variant": variant.name, "genome": index, "seconds": seconds, "val_acc": float(metrics["val_acc"]),
            "val_loss": float(metrics["val_loss"]), "params": int(metrics["params"]),
            "epochs": int(metrics.get("epochs", 0)), "fraction": fraction, "summary": genome.summary()}


def tau(a: list[float], b: list[float]) -> str:
    value, p = kendalltau(a, b)
    return f"{value:.2f} (p {p:.2f})"


def ceilings(tau_ab: float) -> tuple[float, float]:
    """What the seed-to-seed agreement ``tau_ab`` of full training allows against the mean of
    two full trainings: (tau of a perfect ranking, tau of one evaluation as noisy as one full
    training). Model: every measurement is the genome's true quality plus independent noise,
    jointly normal, so Pearson r = sin(pi tau / 2) (Greiner's relation) and the mean of two
    has reliability 2r / (1 + r) (Spearman-Brown)."""
    r = max(0.0, math.sin(math.pi * tau_ab / 2))
    mean_of_two = math.sqrt(2 * r / (1 + r))
    return tuple(2 / math.pi * math.asin(c) for c in (mean_of_two, math.sqrt(r) * mean_of_two))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genomes", type=int, default=20, help="genomes ranked (default 20, as benchmarks/ts_enas.py)")
    ap.add_argument("--jobs", type=int, default=1, help="processes at once, one thread each (default 1)")
    ap.add_argument("--quick", action="store_true", help="4 genomes, tiny supernets: checks that it runs")
    args = ap.parse_args()
    n = 4 if args.quick else args.genomes
    wanted = variants(args.quick)
    folder = Path(tempfile.mkdtemp(prefix="nasforge-inheritance-rank-"))
    if args.jobs == 1:
        one_thread()
    try:
        supernets = sorted({v.supernet for v in wanted if v.supernet})
        supernet_seconds = dict(zip(supernets, starmap(prepare, [(s, folder) for s in supernets], args.jobs)))
        # the longest first, so that the pool's processes finish together
        tasks = sorted([(v, i, folder) for v in wanted for i in range(n)], key=lambda t: -(t[0].epochs + 50 * (t[0].patience > 0)))
        done = starmap(run, tasks, args.jobs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    by = {v.name: sorted((r for r in done if r["variant"] == v.name), key=lambda r: r["genome"]) for v in wanted}

    def col(name: str, key: str) -> list[float]:
        return [r[key] for r in by[name]]

    ref_acc = [(a + b) / 2 for a, b in zip(col("full-a", "val_acc"), col("full-b", "val_acc"))]
    ref_loss = [(a + b) / 2 for a, b in zip(col("full-a", "val_loss"), col("full-b", "val_loss"))]
    full_seconds = statistics.mean(col("full-a", "seconds") + col("full-b", "seconds"))
    full = wanted[0]
    rows = [["full training, seed A vs seed B (noise ceiling)", f"≤{full.epochs} (patience {full.patience})",
             mean_sd(col("full-a", "seconds") + col("full-b", "seconds"), 1), "1.0",
             mean_sd(col("full-a", "val_acc") + col("full-b", "val_acc"), 2, 100),
             tau(col("full-a", "val_acc"), col("full-b", "val_acc")),
             tau(col("full-a", "val_loss"), col("full-b", "val_loss"))]]
    for v in wanted[2:]:
        secs = col(v.name, "seconds")
        rows.append([v.label, v.epochs, mean_sd(secs, 2), f"{full_seconds / statistics.mean(secs):.1f}",
                     mean_sd(col(v.name, "val_acc"), 2, 100), tau(col(v.name, "val_acc"), ref_acc),
                     tau(col(v.name, "val_loss"), ref_loss)])
    params = col("full-a", "params")
    rows.append(["parameter count (more ranks higher)", "-", "-", "-", "-", tau(params, ref_acc),
                 tau([-p for p in params], ref_loss)])
    limits = {key: ceilings(kendalltau(col("full-a", key), col("full-b", key))[0]) for key in ("val_acc", "val_loss")}
    fractions = col("inh-3", "fraction")
    sup = "; ".join(f"{s} epochs: {t:.0f} s" for s, t in supernet_seconds.items())
    wall = time.perf_counter() - START
    body = (
        f"## Weight inheritance: why the inherited ranking is uncorrelated (cells space, {DATASET})\n\n"
        f"Command: {command_line()}  \nMachine: {machine()}  \n"
        f"Wall time {wall / 60:.1f} min with {args.jobs} process(es) of one thread; 1-minute load average at the end "
        f"{os.getloadavg()[0]:.1f} on 2 cores. {n} genomes (those of the TS-ENAS section); supernet (sampled, one-off): "
        f"{sup}; share of a network's parameters inherited {mean_sd(fractions, 2)}.\n\n"
        "Reference: the mean of two trainings from scratch to convergence (seeds A and B). *Speed-up*: the mean time "
        "of a full training over the variant's (nasforge's whole evaluation, training and measuring; the supernet "
        "apart). *tau (acc)*: Kendall tau between the variant's validation accuracies and the reference's; "
        "*tau (loss)*: the same with validation losses.\n\n"
        + table(["ranking by", "epochs", "seconds per genome", "speed-up", "val acc %", "tau (acc)", "tau (loss)"], rows)
        + "\n\n**What the noise allows.** If every measurement is the genome's true quality plus independent noise "
        "(jointly normal), the seed-to-seed tau above bounds what any ranking can reach against this reference: "
        f"a perfect ranking (the true qualities) would reach tau {limits['val_acc'][0]:.2f} by accuracy and "
        f"{limits['val_loss'][0]:.2f} by loss, and a single evaluation as noisy as one full training "
        f"{limits['val_acc'][1]:.2f} and {limits['val_loss'][1]:.2f} (Greiner's relation r = sin(pi tau / 2), "
        "Spearman-Brown for the mean of two seeds). A variant at about the second figure ranks as well as full "
        "training does on these genomes.\n"
    )
    print(body)
    if not args.quick:
        write_section("inheritance-rank", body)


if __name__ == "__main__":
    main()
