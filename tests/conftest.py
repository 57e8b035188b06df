import os
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


@pytest.fixture
def cli_env(tmp_path):
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env
