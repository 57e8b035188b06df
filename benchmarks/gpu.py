"""GPU against the 2-thread CPU (issue #17): one short script for a machine with an NVIDIA GPU.

    .venv/bin/python benchmarks/gpu.py                 # mnist-5k and digits-images, ~5 min on one GPU
    .venv/bin/python benchmarks/gpu.py --quick         # digits-images only, smaller budgets (~1 min)
    .venv/bin/python benchmarks/gpu.py --device cpu --quick --results /tmp/R.md   # a dry run of the script on a CPU

In one run, per dataset (net space, the same seed and settings on both sides, training at
most ``--epochs`` epochs):
- a search of ``--budget`` candidates on the GPU and one of ``--cpu-budget`` on the CPU with 2
  torch threads (as on the machines nasforge is developed on; the CPU's rate is measured on
  fewer candidates to keep the script short): evaluations per hour on each, and their ratio;
  the first ``--cpu-budget`` candidates of both searches are the same genomes (evolution's
  random first population), so their training seconds are compared pair by pair too;
- the GPU search's best genome trained again on each device with the same seed: validation
  and test accuracy (goal: within 1 point) and single-sample latency on each;
- digits-images: the GPU search again with ``--trials-per-gpu 4`` (four worker processes
  share the GPU) against one at a time;
- how the GPU's energy was obtained (NVML measured, or estimated).
Goal: >= 5x evaluations per hour over the 2-thread CPU for the net space at budget 20.

Nothing is downloaded. Without a CUDA device it measures nothing and says so; the ``gpu``
section of RESULTS.md is then written only if it holds no GPU measurement yet, stating that
the GPU figures are not measured. ``--device cpu`` runs every step with the CPU in the GPU's
place (a check of the script, labelled as such, never written over a measurement).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from _results import RESULTS, command_line, machine, table, write_section  # noqa: E402

import nasforge  # noqa: E402
from nasforge import device as devices  # noqa: E402
from nasforge.device import DeviceSettings  # noqa: E402
from nasforge.evaluators.training import TrainingEvaluator  # noqa: E402
from nasforge.spaces import genome_from_dict  # noqa: E402
from nasforge.train.settings import TrainSettings  # noqa: E402

SECTION = "gpu"
MEASURED = "Device compared:"  # in a section that holds a GPU measurement
DATASETS = ("mnist-5k", "digits-images")
CPU_THREADS = 2


@dataclass
class Search:
    dataset: str
    device: str  # as given: cuda, cpu
    label: str  # the device as its trials name it
    trials_per_gpu: int
    budget: int
    seconds: float
    trials: list[Any]

    @property
    def per_hour(self) -> float:
        return len([t for t in self.trials if t.finished]) / self.seconds * 3600


def search(dataset: str, device: str, budget: int, epochs: int, seed: int, workdir: Path, trials_per_gpu: int = 1,
           role: str = "device") -> Search:
    out = workdir / f"{dataset}-{role}-x{trials_per_gpu}"
    start = time.perf_counter()
    nasforge.search(dataset, strategy="evolution", budget=budget, seed=seed, out=out, progress="quiet",
                    space={"family": "net"}, train={"epochs": epochs}, threads=CPU_THREADS,
                    device={"name": device, "trials_per_gpu": trials_per_gpu})
    seconds = time.perf_counter() - start
    trials = nasforge.open_run(out).trials
    labels = Counter(t.metrics.get("device", "?") for t in trials if t.metrics)
    return Search(dataset, device, labels.most_common(1)[0][0] if labels else "?", trials_per_gpu, budget, seconds,
                  trials)


def paired_training(accel: Search, cpu: Search) -> float | None:
    """CPU training seconds / accelerator training seconds over the candidates both trained (same genomes)."""
    a = {t.number: t for t in accel.trials if t.state == "complete"}
    pairs = [(a[t.number], t) for t in cpu.trials if t.state == "complete" and t.number in a
             and a[t.number].genome == t.genome]
    if not pairs:
        return None
    return sum(c.metrics["train_seconds"] for _, c in pairs) / max(1e-9, sum(g.metrics["train_seconds"] for g, _ in pairs))


def same_genome(dataset: str, accel: Search, epochs: int, seed: int) -> list[dict[str, Any]]:
    """The accelerator search's best genome trained again on it and on the CPU, same seed."""
    best = max((t for t in accel.trials if t.state == "complete"), key=lambda t: t.metrics["val_acc"])
    genome = genome_from_dict(best.genome)
    task = nasforge.load_task(dataset, seed=seed)
    rows = []
    for device in (accel.device, "cpu"):
        torch.set_num_threads(CPU_THREADS)
        evaluator = TrainingEvaluator(task, TrainSettings(epochs=epochs), device=DeviceSettings(name=device))
        m = evaluator.evaluate(genome, seed).metrics
        rows.append({"device": m["device"], "val_acc": m["val_acc"], "test_acc": m["test_acc"],
                     "latency_ms": m["latency_ms"], "genome": genome.summary(), "train_seconds": m["train_seconds"]})
    return rows


def report(args: argparse.Namespace, results: list[dict[str, Any]], extra: list[tuple[Search, Search]],
           total: float) -> str:
    accel_label = results[0]["accel"].label if results else args.device
    dry = args.device == "cpu"
    rate_rows, genome_rows, goals = [], [], []
    for r in results:
        accel, cpu = r["accel"], r["cpu"]
        ratio = accel.per_hour / cpu.per_hour if cpu.per_hour else float("nan")
        paired = paired_training(accel, cpu)
        rate_rows.append([r["dataset"], accel.label, f"{accel.budget} in {accel.seconds:.0f} s", f"{accel.per_hour:.0f}",
                          f"{cpu.budget} in {cpu.seconds:.0f} s", f"{cpu.per_hour:.0f}", f"{ratio:.2f}x",
                          f"{paired:.2f}x" if paired else "n/a", r["energy"]])
        g, c = r["same"]
        genome_rows.append([r["dataset"], f"`{g['genome']}`", f"{100 * g['val_acc']:.2f} / {100 * g['test_acc']:.2f}",
                            f"{100 * c['val_acc']:.2f} / {100 * c['test_acc']:.2f}",
                            f"{100 * abs(g['test_acc'] - c['test_acc']):.2f}", f"{g['latency_ms']:.3f}",
                            f"{c['latency_ms']:.3f}"])
        goals.append(f"- **{r['dataset']}**: evaluations per hour x{ratio:.2f} over the {CPU_THREADS}-thread CPU: "
                     f"{'met' if ratio >= 5 else 'NOT met'}; same genome's test accuracy "
                     f"{100 * abs(g['test_acc'] - c['test_acc']):.2f} points apart: "
                     f"{'met' if abs(g['test_acc'] - c['test_acc']) <= 0.01 else 'NOT met'} (within 1 point).")
    share_rows = [[one.dataset, f"{one.per_hour:.0f}", f"{four.per_hour:.0f}", f"{four.per_hour / one.per_hour:.2f}x"]
                  for one, four in extra]
    lines = [
        "## GPU against the 2-thread CPU (issue #17)" + (" — dry run on the CPU, not a GPU measurement" if dry else ""),
        "",
        f"Command: {command_line()}  ",
        f"Machine: {machine()}  ",
        f"{MEASURED if not dry else 'Device in the GPU place:'} {accel_label}; CPU side: {CPU_THREADS} torch threads. "
        f"Net space, regularized evolution, seed {args.seed}, at most {args.epochs} epochs per candidate, "
        f"fp32; whole script {total / 60:.1f} min.",
        "",
        table(["dataset", "device", "searched", "evaluations per hour", "CPU searched", "CPU per hour",
               "per hour vs CPU", "same candidates' training, CPU s / device s", "energy"], rate_rows),
        "",
        "The search's best genome trained again with the same seed on each side (validation / test accuracy %, "
        "single-sample latency after warm-up; on a GPU timed by CUDA events):",
        "",
        table(["dataset", "genome", "device val / test %", "CPU val / test %", "test points apart",
               "device latency ms", "CPU latency ms"], genome_rows),
    ]
    if share_rows:
        lines += ["", "Several candidates at once on one GPU (`--trials-per-gpu 4`: four worker processes):", "",
                  table(["dataset", "per hour, 1 at a time", "per hour, 4 at a time", "ratio"], share_rows)]
    lines += ["", "Goals:", "", *goals]
    return "\n".join(lines)


def not_measured(reason: str, path: Path) -> None:
    """No GPU here: say so, and record it where RESULTS.md holds no GPU measurement yet."""
    print(f"benchmarks/gpu.py: {reason}; nothing measured", file=sys.stderr)
    text = path.read_text() if path.exists() else ""
    begin = text.find(f"<!-- BEGIN {SECTION} -->")
    if begin >= 0 and MEASURED in text[begin:text.find(f"<!-- END {SECTION} -->", begin)]:
        return  # a measurement from a GPU machine stays
    write_section(SECTION, "## GPU against the 2-thread CPU (issue #17)\n\n"
                  "**Not measured yet**: no machine with an NVIDIA GPU has run `benchmarks/gpu.py` "
                  f"(last tried: {machine()}; {reason}). Everything device-independent (choosing the device, "
                  "autocast in bf16/fp16, the one-line errors, out-of-memory trials, worker placement, resuming "
                  "on another device) is tested on the CPU in `tests/test_device.py`; the GPU paths (CUDA events, "
                  "NVML energy, several trials per GPU) are not exercised until this script runs on a GPU.", path)


def main(argv: Sequence[str] | None = None, results: Path = RESULTS) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="the device compared with the CPU (default cuda; cpu: a dry run)")
    ap.add_argument("--quick", action="store_true", help="digits-images only, budget 6 and CPU budget 3")
    ap.add_argument("--budget", type=int, default=None, help="candidates of each device search (default 20)")
    ap.add_argument("--cpu-budget", type=int, default=None, help="candidates of each CPU search (default 6)")
    ap.add_argument("--epochs", type=int, default=5, help="at most this many epochs per candidate (default 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--results", type=Path, default=results, help="the file the section is written to")
    args = ap.parse_args(argv)
    budget = args.budget or (6 if args.quick else 20)
    cpu_budget = args.cpu_budget or (3 if args.quick else 6)
    if args.device != "cpu" and devices.cuda_count() == 0:
        not_measured(f"torch {torch.__version__} sees no CUDA device", args.results)
        return []
    start = time.perf_counter()
    found, extra = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for device in (args.device, "cpu"):  # one-time costs (imports, CUDA's start) before anything is timed
            search("iris", device, 2, 1, args.seed, Path(tmp), role=f"warm-up-{device}")
        for dataset in (("digits-images",) if args.quick else DATASETS):
            accel = search(dataset, args.device, budget, args.epochs, args.seed, Path(tmp))
            cpu = search(dataset, "cpu", cpu_budget, args.epochs, args.seed, Path(tmp), role="cpu")
            sources = Counter(t.metrics.get("energy_source", "?") for t in accel.trials if t.metrics)
            found.append({"dataset": dataset, "accel": accel, "cpu": cpu, "same": same_genome(dataset, accel, args.epochs, args.seed),
                          "energy": ", ".join(sorted(sources))})
            print(f"{dataset}: {accel.label} {accel.per_hour:.0f}/h, cpu {cpu.per_hour:.0f}/h", flush=True)
            if dataset == "digits-images" and args.device != "cpu":
                extra.append((accel, search(dataset, args.device, budget, args.epochs, args.seed, Path(tmp), 4)))
    text = report(args, found, extra, time.perf_counter() - start)
    print(text)
    if args.device == "cpu" and args.results == RESULTS:
        print("(a dry run on the CPU: RESULTS.md is left as it is)", file=sys.stderr)
    else:
        write_section(SECTION, text, args.results)
    return found


if __name__ == "__main__":
    main()
