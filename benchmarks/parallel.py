"""Evaluations per hour with 1 vs 2 workers (local processes and Ray), and Ray's per-task overhead.

    .venv/bin/python benchmarks/parallel.py            # digits MLP and digits-images CNN, budget 24 each
    .venv/bin/python benchmarks/parallel.py --quick    # budget 6, MLP only

Every configuration runs the same random search (same seed, so the same genomes are
trained) and is timed end to end, start-up included (worker processes, or a private local
Ray runtime on loopback); speed-ups are ratios to the one-worker in-process run measured in
the same invocation. Ray's start-up and an empty task's round trip are also timed alone.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # keep the local Ray runtime on loopback

from _results import machine, table, write_section  # noqa: E402

import nasforge  # noqa: E402

SETTINGS = {
    "digits MLP": dict(dataset="digits", space={"max_layers": 3}, train={"epochs": 20, "patience": 0}),
    "digits-images CNN": dict(dataset="digits-images", space={"family": "net"}, train={"epochs": 4, "patience": 0}),
}


def timed_search(name: str, budget: int, executor: dict, tmp: Path) -> tuple[float, float, int]:
    """Wall time end to end, the steady rate (evaluations per second between the first and the
    last stored result, so start-up is left out), and how many evaluations completed."""
    kw = SETTINGS[name]
    stored: list[float] = []
    start = time.perf_counter()
    result = nasforge.search(kw["dataset"], strategy="random", budget=budget, seed=0, out=tmp / f"{name}-{len(os.listdir(tmp))}",
                             space=kw["space"], train=kw["train"], executor=executor,
                             callback=lambda record, study: stored.append(time.perf_counter()))
    wall = time.perf_counter() - start
    steady = (len(stored) - 1) / (stored[-1] - stored[0])
    return wall, steady, sum(t.state == "complete" for t in result.trials)


def ray_overhead_ms(n: int = 50) -> tuple[float, float]:
    """Median round trip of an empty Ray task, and the runtime's start-up in seconds."""
    import ray

    start = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False, num_cpus=2, ignore_reinit_error=True)
    startup = time.perf_counter() - start

    @ray.remote
    def nothing() -> None:
        return None

    ray.get(nothing.remote())
    times = []
    for _ in range(n):
        t = time.perf_counter()
        ray.get(nothing.remote())
        times.append(time.perf_counter() - t)
    ray.shutdown()  # the searches start their own runtime
    return statistics.median(times) * 1e3, startup


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=24)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    budget = 6 if args.quick else args.budget
    names = ["digits MLP"] if args.quick else list(SETTINGS)
    configs = [("in-process, 1 worker", {"workers": 1}), ("processes, 2 workers", {"workers": 2}),
               ("Ray, 2 tasks at once", {"kind": "ray", "cpus_per_task": 1})]
    rows = []
    overhead, startup = ray_overhead_ms()
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            base_wall = base_steady = None
            for label, executor in configs:
                seconds, steady, done = timed_search(name, budget, executor, Path(tmp))
                per_hour, steady_hour = done / seconds * 3600, steady * 3600
                base_wall, base_steady = base_wall or per_hour, base_steady or steady_hour
                rows.append([name, label, done, f"{seconds:.1f}", f"{per_hour:.0f}", f"{per_hour / base_wall:.2f}x",
                             f"{steady_hour:.0f}", f"{steady_hour / base_steady:.2f}x"])
                print(rows[-1], flush=True)
    body = table(["search", "executor", "evaluations", "wall s", "evaluations / hour, end to end", "vs 1 worker",
                  "evaluations / hour, steady", "vs 1 worker"], rows)
    write_section("parallel", f"## Parallel evaluation\n\nCommand: `{' '.join(['.venv/bin/python', 'benchmarks/parallel.py', *sys.argv[1:]])}`  \nMachine: {machine()}\n\n{body}\n\n"
                  f"Ray: an empty task's round trip takes {overhead:.2f} ms (median of 50); starting the local "
                  f"runtime took {startup:.1f} s (once per search process). 'End to end' includes starting the worker "
                  f"processes or the Ray runtime; 'steady' counts the evaluations stored after the first one over the "
                  f"time between the first and the last, i.e. the rate a long search runs at (above 2x is possible: with "
                  f"workers the driver's database writes and weight saving overlap the training). Goal for 2 workers "
                  f"on 2 cores: >= 1.7x (steady).")


if __name__ == "__main__":
    main()
