"""Regularized evolution vs random search at an equal budget of evaluations.

    .venv/bin/python benchmarks/search_methods.py            # digits and wdbc, 5 seeds, budget 40
    .venv/bin/python benchmarks/search_methods.py --datasets iris --seeds 2 --budget 10   # quick look

For each dataset, strategy and seed, one full nasforge search (same split per seed, same
space, same training settings); the selected model is the best by validation accuracy
and its test accuracy is reported beside it. Writes its section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402

import nasforge  # noqa: E402
from _results import machine, mean_sd, table, write_section  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="digits,wdbc")
    ap.add_argument("--strategies", default="evolution,random")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=40)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in args.datasets.split(","):
            for strategy in args.strategies.split(","):
                val, test, params, secs = [], [], [], []
                for seed in range(args.seeds):
                    start = time.perf_counter()
                    result = nasforge.search(dataset, strategy=strategy, budget=args.budget, seed=seed,
                                             out=Path(tmp) / f"{dataset}-{strategy}-{seed}")
                    secs.append(time.perf_counter() - start)
                    m = result.best.metrics
                    val.append(m["val_acc"]), test.append(m["test_acc"]), params.append(m["params"])
                    print(f"{dataset} {strategy} seed {seed}: val {m['val_acc']:.4f} test {m['test_acc']:.4f} "
                          f"params {m['params']} {secs[-1]:.1f}s", flush=True)
                rows.append([dataset, strategy, args.budget, args.seeds, mean_sd(val, 2, 100), mean_sd(test, 2, 100),
                             mean_sd(params, 0), mean_sd(secs, 1)])
    command = "`.venv/bin/python benchmarks/search_methods.py " + " ".join(sys.argv[1:]) + "`"
    body = table(["dataset", "strategy", "budget", "seeds", "best val acc %", "its test acc %", "its params",
                  "wall time s"], rows)
    write_section("search-methods", f"## Regularized evolution vs random search (MLP space)\n\n"
                  f"Command: {command.replace(' `', '`')}  \nMachine: {machine()}\n\n{body}\n\n"
                  "Mean ± sd over seeds; each seed has its own data split. Selection is by validation "
                  "accuracy only; test accuracy is of the selected model.")


if __name__ == "__main__":
    main()
