"""Shared by the benchmark scripts: each owns one marked section of RESULTS.md.

A script rewrites only its own section, so scripts can be rerun in any order and their
tables stay side by side with the command that made them.
"""
from __future__ import annotations

import multiprocessing
import platform
import re
import statistics
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = "# Benchmark results\n\nEach section is written by the script named in it; rerun that command to refresh it.\n"


def machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, {date.today().isoformat()}"


def command_line() -> str:
    """How this script was run, as a Markdown code span for its section."""
    return f"`.venv/bin/python benchmarks/{Path(sys.argv[0]).name}" + "".join(f" {a}" for a in sys.argv[1:]) + "`"


def one_thread() -> None:
    """A worker process computes on one thread (numpy's BLAS and torch's), so ``jobs``
    processes share the cores instead of oversubscribing them."""
    import torch
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    torch.set_num_threads(1)


def starmap(function, tasks: Sequence[tuple], jobs: int) -> list:
    """``function(*task)`` for every task, in order: in ``jobs`` forked one-thread processes
    (so they share what the parent loaded), or here when ``jobs`` is 1."""
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(jobs, initializer=one_thread) as pool:
            return pool.starmap(function, tasks, chunksize=1)
    return [function(*task) for task in tasks]


def mean_sd(values: Sequence[float], digits: int = 2, scale: float = 1.0) -> str:
    vals = [v * scale for v in values]
    if not vals:
        return "n/a"
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.mean(vals):.{digits}f} ± {sd:.{digits}f}"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, markdown: str, path: Path = RESULTS) -> None:
    text = path.read_text() if path.exists() else HEADER
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
