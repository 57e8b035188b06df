"""Shared by every test: one torch thread, the repository's paths, the CLI as a user runs it.

The tests mirror ``src/nasforge/`` (``tests/strategies/`` for ``nasforge.strategies`` ...);
the contract, golden and legacy-run tests, which cut across the parts, sit at the top.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

# Two torch threads on this 2-core machine make tiny models far slower under load.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def nasforge_cmd() -> list[str]:
    """The installed CLI, run by the same interpreter as the tests."""
    return [sys.executable, "-m", "nasforge.cli"]


def cli(*args, env=None, timeout=300):
    """Run ``nasforge ARGS`` in a fresh process; the CompletedProcess with text output."""
    return subprocess.run([*nasforge_cmd(), *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)


def run_study(out, config):
    """Create (or continue) the run in ``out`` with ``config``, run it to its budget; its trials."""
    from nasforge.study import create_study

    study = create_study(out, config)
    try:
        study.run()
        return study.trials()
    finally:
        study.close()


def kill_after(args, lines: int, pause: float = 0.05, timeout: float = 240) -> list[dict]:
    """Start ``nasforge ARGS`` (with --jsonl), SIGKILL it ``pause`` s after its ``lines``-th
    finished trial; the JSON lines it printed before."""
    proc = subprocess.Popen([*nasforge_cmd(), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[dict] = []
    deadline = time.time() + timeout
    while len(seen) < lines and time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("{"):
            seen.append(json.loads(line))
    time.sleep(pause)  # land somewhere inside the next evaluation
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return seen


@pytest.fixture
def cli_env(tmp_path):
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env
