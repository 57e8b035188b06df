"""Shared by every test: one torch thread, the repository's paths, the CLI as a user runs it.

The tests mirror ``src/nasforge/`` (``tests/strategies/`` for ``nasforge.strategies`` ...);
the contract, golden and legacy-run tests, which cut across the parts, sit at the top.
"""
import os
import subprocess
import sys
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


@pytest.fixture
def cli_env(tmp_path):
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env
