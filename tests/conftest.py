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
    """``nasforge ARGS`` as a user runs it; the CompletedProcess with text output.

    It runs through the same ``main(argv)`` the console script calls, in this process, with
    its output captured: starting a fresh interpreter costs ~4 s of imports (torch,
    scikit-learn) per call, most of the suite's CLI time. Given an ``env``, it runs a real
    process, for what only a process shows: exit on a signal, worker processes,
    environment variables, a warning printed by the interpreter.
    """
    argv = [str(a) for a in args]
    if env is not None:
        return subprocess.run([*nasforge_cmd(), *argv], capture_output=True, text=True, env=env, timeout=timeout)
    import contextlib
    import io

    from nasforge.cli import main

    out, err = io.StringIO(), io.StringIO()
    threads = torch.get_num_threads()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's usage errors and --help
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    torch.set_num_threads(threads)  # a search sets the process's threads; the next test starts as this one did
    return subprocess.CompletedProcess(["nasforge", *argv], code, out.getvalue(), err.getvalue())


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
