"""How fast the CLI starts, as a ratio to importing torch, measured in one run.

    .venv/bin/python benchmarks/cli_startup.py [--repeats 15]

Each command is a fresh process (what a user waits for). The commands and the
``python -c "import torch"`` baseline alternate, so machine noise hits them alike; medians
are compared. The goal (#14): ``nasforge --help`` under 0.3x the torch import.
``show`` reads a small NAS-Bench-201 table-mode run made first (table mode trains nothing).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine, table, write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO.parent / "shared" / "data" / "nb201_12epoch.csv"
NASFORGE = [sys.executable, "-m", "nasforge.cli"]


def seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        subprocess.run([*NASFORGE, "search", "--benchmark", "nb201", "--bench-file", str(TABLE), "--budget", "20",
                        "--out", str(run), "--quiet"], check=True, stdout=subprocess.DEVNULL)
        commands = {
            'python -c "import torch"': [sys.executable, "-c", "import torch"],
            "nasforge --help": [*NASFORGE, "--help"],
            "nasforge search --help": [*NASFORGE, "search", "--help"],
            "nasforge datasets": [*NASFORGE, "datasets"],
            "nasforge show RUN (20 trials)": [*NASFORGE, "show", str(run)],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for r in range(args.repeats + 1):
            for name, command in commands.items():
                t = seconds(command)
                if r:  # the first round warms the file cache for all of them
                    times[name].append(t)
    base = statistics.median(times['python -c "import torch"'])
    rows = [[name, f"{statistics.median(ts) * 1e3:.0f}", f"{min(ts) * 1e3:.0f}", f"{statistics.median(ts) / base:.2f}"]
            for name, ts in times.items()]
    text = table(["command", "median ms", "min ms", "ratio to import torch"], rows)
    print(text)
    write_section("cli-startup", f"""## CLI start-up (`benchmarks/cli_startup.py`)

{machine()}; {args.repeats} fresh processes per command, interleaved with the baseline; medians.
Goal: `nasforge --help` under 0.3x `python -c "import torch"`. The CLI imports neither torch nor
scikit-learn for these commands (asserted in `tests/test_cli.py`); `show` also reads the run's SQLite
file through Optuna.

{text}

Command: `.venv/bin/python benchmarks/cli_startup.py --repeats {args.repeats}`
""")


if __name__ == "__main__":
    main()
