"""The killed-process promise, soaked: searches killed with SIGKILL at random moments, resumed,
and compared trial by trial with an uninterrupted run of the same seed; then `report`,
`export` and `train` killed mid-write.

    .venv/bin/python benchmarks/kill.py [--kills 20] [--writes 15]

Searches, in turn: MLPs on wdbc in the search process; on digits in two worker processes; on
a local Ray cluster (two workers); with ASHA (multi-fidelity: a kill may land between rungs);
and a two-objective Pareto search. Each is killed at a random moment (one in five 0.5-6 s
after its start, the others 0-6 s after its run directory appeared), resumed with
`nasforge resume`, and counted: trials lost (an ask the killed
run had finished when it was killed that is missing or changed after the resume), repeated
(an ask finished twice), different (an ask whose genome or fitness differs from the
uninterrupted run of the same seed, or that only one of them finished; single process only,
since with several workers the order results arrive in is not deterministic) and left
running. Goal (#21): all 0. A search killed while it was still loading its data has no run
yet (`resume` says so); it is started again with the same `search` command, as the README
says, and counted apart.

The writers: `report`, `export --format onnx` and `train` on a finished run, each killed
after a random share of the time an uninterrupted one takes. Counted: files a reader would
take for good (every file at its final name loads: the report is a whole page, the ONNX
file runs in onnxruntime, the final model loads) that are not; goal 0.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine, table, write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NASFORGE = [sys.executable, "-m", "nasforge.cli"]
KINDS = {
    "wdbc, 1 worker": ["--dataset", "wdbc", "--budget", "12", "--epochs", "30", "--patience", "0"],
    "digits, 2 worker processes": ["--dataset", "digits", "--budget", "12", "--epochs", "20", "--patience", "0",
                                   "--workers", "2"],
    "digits, Ray (2 workers)": ["--dataset", "digits", "--budget", "10", "--epochs", "20", "--patience", "0",
                                "--executor", "ray", "--workers", "2"],
    "wdbc, ASHA": ["--dataset", "wdbc", "--budget", "16", "--scheduler", "asha", "--min-epochs", "3",
                   "--max-epochs", "27", "--eta", "3"],
    "wdbc, Pareto (accuracy, params)": ["--dataset", "wdbc", "--budget", "12", "--epochs", "30", "--patience", "0",
                                        "--objectives", "accuracy,params"],
}
EARLY = 0.2  # the share of kills timed from the process's start rather than from the run's creation


def in_one_process(kind: str) -> bool:
    """Whether the search runs in one process: the same asks in the same order as the reference."""
    return "--workers" not in KINDS[kind]


def trials(out: Path) -> list[dict]:
    r = subprocess.run([*NASFORGE, "show", str(out), "--json"], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def finished(records: list[dict]) -> list[dict]:
    return [t for t in records if t["state"] in ("complete", "failed", "pruned") and not t["interrupted"]]


def compare(before: list[dict], resumed: list[dict], reference: list[dict], ordered: bool) -> Counter:
    """``before``: the killed run's trials right after the kill; ``resumed``: after the resume."""
    done = finished(resumed)
    by_ask = Counter(t["ask_index"] for t in done)
    got = {t["ask_index"]: (t["genome"], t["fitness"]) for t in done}
    kept = {t["ask_index"]: (t["genome"], t["fitness"]) for t in finished(before)}
    counts = Counter(lost=sum(got.get(a) != v for a, v in kept.items()), repeated=sum(n - 1 for n in by_ask.values()),
                     running=sum(t["state"] == "running" for t in resumed))
    if ordered:  # one process: every ask as the uninterrupted run made it
        ref = {t["ask_index"]: (t["genome"], t["fitness"]) for t in finished(reference)}
        counts["different"] = sum(got.get(a) != v for a, v in ref.items()) + sum(a not in ref for a in got)
    return counts


def soak(kind: str, seed: int, work: Path, rng: random.Random) -> tuple[Counter, float]:
    args = [*KINDS[kind], "--seed", str(seed), "--quiet"]
    reference, killed = work / f"ref-{seed}", work / f"killed-{seed}"
    subprocess.run([*NASFORGE, "search", *args, "--out", str(reference)], check=True, capture_output=True)
    proc = subprocess.Popen([*NASFORGE, "search", *args, "--out", str(killed)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    if rng.random() < EARLY:  # anywhere from the start, data loading included
        after = rng.uniform(0.5, 6.0)
    else:  # once the run exists: inside the search
        while not (killed / "run.json").is_file() and proc.poll() is None:
            time.sleep(0.05)
        after = rng.uniform(0.0, 6.0)
    time.sleep(after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)  # the killed run's workers watch it and end
    before = trials(killed) if (killed / "run.json").is_file() else []
    resumed = subprocess.run([*NASFORGE, "resume", str(killed), "--quiet"], capture_output=True, text=True)
    early = "holds no nasforge run" in resumed.stderr
    if early:  # killed while loading data, before the run existed: the README's other way, the same command again
        resumed = subprocess.run([*NASFORGE, "search", *args, "--out", str(killed)], capture_output=True, text=True)
    if resumed.returncode != 0:
        raise SystemExit(f"resuming {killed} failed: {resumed.stderr.strip()}")
    counts = compare(before, trials(killed), trials(reference), ordered=in_one_process(kind))
    counts["before the run existed"] += early
    return counts, after


WRITERS = {
    "report": lambda run, target: ["report", str(run), "--output", str(target / "report.html")],
    "export": lambda run, target: ["export", str(run), "--format", "onnx", "--output", str(target)],
    "train": lambda run, target: ["train", str(run), "--epochs", "40"],
}


def good_files(name: str, run: Path, target: Path) -> tuple[int, int]:
    """Files at their final names after a killed writer: (how many, how many do not load)."""
    if name == "report":
        pages = [p for p in target.glob("*.html")]
        return len(pages), sum(not p.read_text(errors="replace").rstrip().endswith("</html>") for p in pages)
    if name == "export":
        import onnxruntime

        models, bad = list(target.glob("*.onnx")), 0
        for model in models:
            try:
                onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
            except Exception:
                bad += 1
        return len(models), bad
    import torch

    from nasforge.final import load_final

    present = [p for p in (run / "final").glob("*") if not p.name.startswith(".")]
    if not present:
        return 0, 0
    try:
        torch.set_num_threads(1)
        load_final(run)
    except Exception:
        return len(present), 1  # some of the final model's files, and they do not load together
    return len(present), 0


def soak_writer(name: str, finished: Path, work: Path, i: int, rng: random.Random, full: float) -> Counter:
    run, target = work / f"{name}-{i}", work / f"{name}-{i}-out"
    shutil.copytree(finished, run)
    proc = subprocess.Popen([*NASFORGE, *WRITERS[name](run, target)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(rng.uniform(0.1, 1.0) * full)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    present, bad = good_files(name, run, target)
    return Counter(kills=1, written=present > 0, bad=bad)


def soak_writers(count: int, work: Path, rng: random.Random) -> dict[str, Counter]:
    finished = work / "finished"
    subprocess.run([*NASFORGE, "search", *KINDS["wdbc, 1 worker"], "--seed", "0", "--quiet", "--out", str(finished)],
                   check=True, capture_output=True)
    totals = {}
    for name in WRITERS:
        start = time.perf_counter()
        subprocess.run([*NASFORGE, *WRITERS[name](finished, work / f"{name}-full")], check=True, capture_output=True)
        full = time.perf_counter() - start
        totals[name] = Counter()
        for i in range(count):
            counts = soak_writer(name, finished, work, i, rng, full)
            totals[name].update(counts)
            print(f"{name} killed ({i + 1}/{count}): {dict(counts)}", flush=True)
    return totals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=20, help="searches killed (spread over the kinds)")
    ap.add_argument("--writes", type=int, default=15, help="kills of each of report, export and train")
    args = ap.parse_args()
    rng = random.Random(0)
    totals = {kind: Counter() for kind in KINDS}
    kills = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.kills):
            kind = list(KINDS)[i % len(KINDS)]
            counts, after = soak(kind, i, Path(tmp), rng)
            totals[kind].update(counts)
            kills[kind] += 1
            print(f"kill {i + 1}: {kind}, seed {i}, after {after:.1f} s: {dict(counts)}", flush=True)
        writers = soak_writers(args.writes, Path(tmp), rng)
    rows = [[kind, kills[kind], totals[kind]["before the run existed"], totals[kind]["lost"], totals[kind]["repeated"],
             totals[kind]["different"] if in_one_process(kind) else "n/a (async order)",
             totals[kind]["running"]]
            for kind in KINDS]
    text = table(["searches", "kills", "of them before the run existed", "trials lost", "repeated", "different from reference", "left running"], rows)
    written = table(["command", "kills", "left a file at its final name", "of them not loadable"],
                    [[name, c["kills"], c["written"], c["bad"]] for name, c in writers.items()])
    print(text)
    print(written)
    write_section("kill", f"""## Killed searches and writers (`benchmarks/kill.py`)

{machine()}. Each search killed with SIGKILL at a random moment (one in five 0.5-6 s after its start, the
others 0-6 s after its run directory appeared), resumed, and checked: every trial finished before the kill
is still there, unchanged (lost), no ask finished twice (repeated), nothing left running, and, for a search
in one process, every ask as the uninterrupted run of the same seed made it (different). Goal (#21): all 0.

{text}

`report`, `export --format onnx` and `train` on a finished run, each killed with SIGKILL after a random
10-100 % of the time an uninterrupted one took; every file left at its final name is loaded as a user
would (the page is whole, the ONNX file opens in onnxruntime, `final/` loads). Goal: 0 not loadable.

{written}

Command: `.venv/bin/python benchmarks/kill.py --kills {args.kills} --writes {args.writes}`
""")


if __name__ == "__main__":
    main()
