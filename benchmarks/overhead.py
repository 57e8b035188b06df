"""nasforge's own cost per evaluation, as a ratio to a bare PyTorch training loop.

    .venv/bin/python benchmarks/overhead.py

The same genome, data tensors, optimiser, batch size and number of epochs (early stopping
off) are trained (a) by a minimal hand-written loop and (b) by a full nasforge trial: the
evaluator (training with per-epoch validation, accuracy/F1 on three splits, FLOPs,
latency, size, energy) plus storing the trial in SQLite and saving the weights.
Runs alternate between the two so machine noise hits both alike; medians are compared.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from _results import machine, table, write_section  # noqa: E402

from nasforge.config import build_config  # noqa: E402
from nasforge.loop import Pending, SearchLoop  # noqa: E402
from nasforge.spaces import MLPGenome  # noqa: E402
from nasforge.spaces.mlp import Dense  # noqa: E402
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
    write_section("overhead", f"## Framework overhead per evaluation\n\nCommand: `.venv/bin/python benchmarks/overhead.py "
                  f"{' '.join(sys.argv[1:])}`  \nMachine: {machine()}\n\n{body}\n\n"
                  f"Medians of {args.repeats} alternating runs. 'nasforge training' is the training loop alone "
                  "(with per-epoch validation loss); 'trial' adds every measurement, the SQLite write and the "
                  "weights file. Goal: ratio <= 1.05.")


if __name__ == "__main__":
    main()
