"""The killed-process promise, soaked: searches killed with SIGKILL at random moments, resumed,
and compared trial by trial with an uninterrupted run of the same seed.

    .venv/bin/python benchmarks/kill.py [--kills 20]

Half the searches train MLPs on wdbc in the search process, half on digits in two worker
processes. Each is killed after a random 0.5-6 s, resumed with `nasforge resume`, and counted: trials lost (an ask the reference
finished that the resumed run did not), repeated (an ask finished twice), different (another
genome or fitness than the reference at the same ask; single worker only, since with several
workers the order results arrive in is not deterministic) and left running. Goal (#21): all 0.
A search killed while it was still loading its data has no run yet (`resume` says so); it is
started again with the same `search` command, as the README says, and counted apart.
"""
from __future__ import annotations

import argparse
import json
import random
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
}


def trials(out: Path) -> list[dict]:
    r = subprocess.run([*NASFORGE, "show", str(out), "--json"], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def compare(resumed: list[dict], reference: list[dict], ordered: bool) -> Counter:
    finished = [t for t in resumed if t["state"] in ("complete", "failed") and not t["interrupted"]]
    by_ask = Counter(t["ask_index"] for t in finished)
    ref = {t["ask_index"]: (t["genome"], t["fitness"]) for t in reference if not t["interrupted"]}
    got = {t["ask_index"]: (t["genome"], t["fitness"]) for t in finished}
    counts = Counter(lost=sum(a not in got for a in ref), repeated=sum(n - 1 for n in by_ask.values()),
                     running=sum(t["state"] == "running" for t in resumed))
    counts["different"] = sum(got.get(a) != v for a, v in ref.items() if a in got) if ordered else 0
    return counts


def soak(kind: str, seed: int, work: Path, rng: random.Random) -> tuple[Counter, float]:
    args = [*KINDS[kind], "--seed", str(seed), "--quiet"]
    reference, killed = work / f"ref-{seed}", work / f"killed-{seed}"
    subprocess.run([*NASFORGE, "search", *args, "--out", str(reference)], check=True, capture_output=True)
    proc = subprocess.Popen([*NASFORGE, "search", *args, "--out", str(killed)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    after = rng.uniform(0.5, 6.0)
    time.sleep(after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)  # the killed run's workers watch it and end
    resumed = subprocess.run([*NASFORGE, "resume", str(killed), "--quiet"], capture_output=True, text=True)
    early = "holds no nasforge run" in resumed.stderr
    if early:  # killed while loading data, before the run existed: the README's other way, the same command again
        resumed = subprocess.run([*NASFORGE, "search", *args, "--out", str(killed)], capture_output=True, text=True)
    if resumed.returncode != 0:
        raise SystemExit(f"resuming {killed} failed: {resumed.stderr.strip()}")
    counts = compare(trials(killed), trials(reference), ordered="1 worker" in kind)
    counts["before the run existed"] += early
    return counts, after


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=20)
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
    rows = [[kind, kills[kind], totals[kind]["before the run existed"], totals[kind]["lost"], totals[kind]["repeated"],
             totals[kind]["different"] if "1 worker" in kind else "n/a (async order)", totals[kind]["running"]]
            for kind in KINDS]
    text = table(["searches", "kills", "of them before the run existed", "trials lost", "repeated", "different from reference", "left running"], rows)
    print(text)
    write_section("kill", f"""## Killed searches resumed (`benchmarks/kill.py`)

{machine()}. Each search killed with SIGKILL after a random 0.5-6 s, resumed, and compared ask by ask
with an uninterrupted run of the same seed. Goal (#21): all 0.

{text}

Command: `.venv/bin/python benchmarks/kill.py --kills {args.kills}`
""")


if __name__ == "__main__":
    main()
