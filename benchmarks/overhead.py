"""nasforge's own cost per evaluation, as a ratio to a bare PyTorch training loop.

    .venv/bin/python benchmarks/overhead.py

The same genome, data tensors, optimiser, batch size and number of epochs (early stopping
off) are trained (a) by a minimal hand-written loop and (b) by a full nasforge trial: the
evaluator (training with per-epoch validation, accuracy/F1 on three splits, FLOPs,
latency, size, energy) plus storing the trial in SQLite and saving the weights.
Runs alternate between the two so machine noise hits both alike; medians are compared.

Also the first rung of a multi-fidelity candidate (one epoch) with nasforge's default
measurement, timing the network's speed there (as a run whose objectives, limits or strategy
read latency, FPS or inference energy does) vs leaving it to the last rung (any other run),
on random genomes of the digits MLP space and the digits-images net space, alternating.

And the store's share alone: writing a multi-fidelity candidate that finishes two rungs
and is pruned (create, two rungs with their intermediate values, the result) through
nasforge's ``RunStore`` vs the same writes through Optuna's ``study.ask`` / ``Trial`` /
``study.tell``, on SQLite files side by side, alternating.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from _results import machine, table, write_section  # noqa: E402

from nasforge.config import build_config  # noqa: E402
from nasforge.loop import Pending, SearchLoop  # noqa: E402
from nasforge.spaces import MLPGenome  # noqa: E402
from nasforge.spaces.mlp import Dense  # noqa: E402
from nasforge.storage import RunStore, sqlite_url  # noqa: E402
from nasforge.strategies import Proposal  # noqa: E402
from nasforge.study import create_study  # noqa: E402


def bare_loop(genome, task, epochs: int, batch: int, lr: float, seed: int) -> float:
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = genome.build(task.input_shape, task.n_classes)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    X, y = task.X_train, task.y_train
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(X), generator=gen)
        for i in range(0, len(X), batch):
            idx = order[i : i + batch]
            loss = F.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return time.perf_counter() - start


METRICS = {f"metric{i}": 0.5 for i in range(20)}  # about as many as a trial stores
PROPOSAL = {"genome": {"layers": [{"units": 128}, {"units": 64}]}, "parents": [3], "operator": "mutate", "info": {},
            "ask_index": 0, "asked_after": 0}


def store_nasforge(store: RunStore, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        number = store.start(PROPOSAL)
        rungs = [{"epochs": 1, "metrics": METRICS}]
        store.rung(number, rungs, 0.5)
        store.rung(number, rungs + [{"epochs": 3, "metrics": METRICS}], 0.6)
        store.prune(number, METRICS, i, 3)
    return (time.perf_counter() - start) / n


def store_optuna(study: optuna.Study, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        trial = study.ask()
        trial.set_user_attr("proposal", PROPOSAL)
        rungs = [{"epochs": 1, "metrics": METRICS}]
        trial.report(0.5, 1)
        trial.set_user_attr("rungs", rungs)
        trial.report(0.6, 3)
        trial.set_user_attr("rungs", rungs + [{"epochs": 3, "metrics": METRICS}])
        trial.set_user_attr("result", {"metrics": METRICS, "told_seq": i, "stopped_at": 3})
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    return (time.perf_counter() - start) / n


def store_rows(repeats: int, n: int = 30) -> list[list[str]]:
    """Milliseconds per candidate stored by nasforge and by Optuna's trial API, medians."""
    with tempfile.TemporaryDirectory() as tmp:
        ours = RunStore(sqlite_url(Path(tmp)), "ours", create=True)
        theirs = optuna.create_study(storage=optuna.storages.RDBStorage(f"sqlite:///{tmp}/optuna.db"), study_name="x")
        a, b = [], []
        for r in range(repeats + 1):
            x, y = store_nasforge(ours, n), store_optuna(theirs, n)
            if r:
                a.append(x), b.append(y)
    x, y = statistics.median(a), statistics.median(b)
    return [[f"{x * 1e3:.1f}", f"{y * 1e3:.1f}", f"{x / y:.2f}"]]


def rung_rows(repeats: int, genomes: int = 6) -> list[list[str]]:
    """Milliseconds of one 1-epoch rung with the speed timed and without, medians over genomes x repeats."""
    import numpy as np

    from nasforge import load_task
    from nasforge.evaluators.training import TrainingEvaluator
    from nasforge.spaces import make_space
    from nasforge.train.settings import TrainSettings

    rows = []
    for dataset, family in (("digits", "mlp"), ("digits-images", "net")):
        config = build_config({"data": {"dataset": dataset}, "space": {"family": family}})
        task = load_task(dataset, seed=0)
        space = make_space(config.space, task)
        sample = [space.sample(np.random.default_rng(k)) for k in range(genomes)]
        settings = TrainSettings(epochs=27, patience=0)
        timed, deferred = (TrainingEvaluator(task, settings, speed_at_first_rung=early) for early in (True, False))
        a, b = [], []
        for r in range(repeats + 1):
            for genome in sample:
                for evaluator, into in ((timed, a), (deferred, b)):
                    start = time.perf_counter()
                    evaluator.evaluate(genome, seed=r, until=1)
                    if r:  # the first round warms up both
                        into.append(time.perf_counter() - start)
        x, y = statistics.median(a), statistics.median(b)
        rows.append([dataset, family, str(genomes), f"{x * 1e3:.0f}", f"{y * 1e3:.0f}", f"{y / x:.2f}"])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(1)
    genome = MLPGenome(layers=(Dense(units=128), Dense(units=64)))
    config = build_config({"data": {"dataset": args.dataset}, "budget": 10_000,
                           "train": {"epochs": args.epochs, "patience": 0}})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        study = create_study(Path(tmp) / "run", config)
        loop = SearchLoop(study)
        s = config.train
        bare, full = [], []
        for r in range(args.repeats + 1):
            b = bare_loop(genome, study.task, s.epochs, s.batch_size, s.lr, seed=r)
            start = time.perf_counter()
            loop.evaluate(Pending(r, r, Proposal(genome)), told_seq=r)
            f = time.perf_counter() - start
            if r:  # the first pair warms up both paths
                bare.append(b), full.append(f)
        study.close()
        trials = study.trials()
    train_share = statistics.median(t.metrics["train_seconds"] for t in trials[1:])
    b, f = statistics.median(bare), statistics.median(full)
    rows.append([args.dataset, genome.summary(), args.epochs, f"{b * 1e3:.0f}", f"{train_share * 1e3:.0f}",
                 f"{f * 1e3:.0f}", f"{f / b:.3f}"])
    print(table(["dataset", "genome", "epochs", "bare loop ms", "nasforge training ms", "nasforge trial ms",
                 "ratio trial/bare"], rows))
    body = table(["dataset", "genome", "epochs", "bare loop ms", "nasforge training ms", "nasforge trial ms",
                  "ratio trial/bare"], rows)
    store = table(["nasforge store ms", "Optuna trial API ms", "ratio"], store_rows(args.repeats))
    print(store)
    rung = table(["dataset", "space", "genomes", "rung ms, speed timed", "rung ms, speed left to the last rung", "ratio"],
                 rung_rows(args.repeats))
    print(rung)
    write_section("overhead", f"## Framework overhead per evaluation\n\nCommand: `.venv/bin/python benchmarks/overhead.py "
                  f"{' '.join(sys.argv[1:])}`  \nMachine: {machine()}\n\n{body}\n\n"
                  f"Medians of {args.repeats} alternating runs. 'nasforge training' is the training loop alone "
                  "(with per-epoch validation loss); 'trial' adds every measurement, the SQLite write and the "
                  "weights file. Goal: ratio <= 1.05.\n\n"
                  "**Storing one multi-fidelity candidate** (two rungs, then pruned; 30 per run, medians of "
                  f"{args.repeats} alternating runs): the same SQLite writes through nasforge's store (the storage's "
                  "public API) and through Optuna's `study.ask` / `Trial` / `study.tell`, whose sampler and "
                  "validation steps add reads to every call:\n\n" + store + "\n\n"
                  "**The first rung of a multi-fidelity candidate** (1 epoch, then every split's metrics; "
                  "default measurement: 5 warm-up runs, 30 timed, single sample and a batch of 64), medians over "
                  f"random genomes x {args.repeats} alternating rounds: speed (latency, FPS, inference energy) "
                  "timed at this rung, as in a run whose objectives, limits or strategy read it, vs left to the "
                  "last rung, which a candidate stopped here never reaches:\n\n" + rung)


if __name__ == "__main__":
    main()
