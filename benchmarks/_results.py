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


def _block(name: str) -> re.Pattern:
    return re.compile(re.escape(f"<!-- BEGIN {name} -->") + ".*?" + re.escape(f"<!-- END {name} -->") + "\n*", re.S)


def anchor(heading: str, seen: dict[str, int]) -> str:
    """The link anchor a Markdown renderer such as GitHub's gives ``heading``: lower case, every
    character but letters, digits, spaces, hyphens and underscores dropped, spaces as hyphens;
    a repeated heading gets -1, -2, ... in order (``seen`` counts them over the file)."""
    slug = "".join(c for c in heading.lower() if c.isalnum() or c in " -_").replace(" ", "-")
    n = seen.get(slug, 0)
    seen[slug] = n + 1
    return slug if n == 0 else f"{slug}-{n}"


def contents(text: str) -> str:
    """A table of every section of ``text``: its title, linked, and the command that wrote it, so
    sections with the same title (one benchmark run with different options) can be told apart."""
    rows, seen, section = [], {}, None
    for line in text.splitlines():
        if m := re.fullmatch(r"<!-- BEGIN (\S+) -->", line):
            section = m.group(1)
        elif line.startswith("#") and (title := line.lstrip("#").strip()):
            link = anchor(title, seen)
            if section is not None and line.startswith("## "):
                body = _block(section).search(text).group(0)
                command = re.search(r"^Command: `([^`]+)`", body, re.M) or re.search(r"`(benchmarks/\w+\.py)`", body)
                rows.append([f"[{title}](#{link})", f"`{command.group(1)}`" if command else "-"])
                section = None
    return "<!-- BEGIN contents -->\n## Contents\n\n" + table(["section", "written by"], rows) + "\n<!-- END contents -->\n\n"


def write_section(name: str, markdown: str, path: Path = RESULTS) -> None:
    """Replace section ``name`` of ``path`` (or append it), then renew the table of contents."""
    text = path.read_text() if path.exists() else HEADER
    block = f"<!-- BEGIN {name} -->\n{markdown.strip()}\n<!-- END {name} -->\n\n"
    pattern = _block(name)
    text = pattern.sub(lambda _: block, text, count=1) if pattern.search(text) else text.rstrip() + "\n\n" + block
    text = _block("contents").sub("", text)
    first = text.find("<!-- BEGIN ")
    text = (text.rstrip() + "\n\n" if first < 0 else text[:first]) + contents(text) + ("" if first < 0 else text[first:])
    path.write_text(text.rstrip() + "\n")
