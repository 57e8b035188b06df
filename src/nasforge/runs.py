"""Reading a run directory without running it: where its trials are, and which is best.

Torch-free, so ``nasforge show`` starts at once; safe while a search writes the run.
"""
from __future__ import annotations

import json
from pathlib import Path

from .errors import NasforgeError
from .storage import RunStore, TrialRecord, sqlite_url
from .strategies.ga import rank_key


def run_meta(out: Path) -> tuple[str, str]:
    """The storage URL and study name a run directory points to (run.json)."""
    meta = out / "run.json"
    data = json.loads(meta.read_text()) if meta.is_file() else {}
    return data.get("storage") or sqlite_url(out), data.get("study") or out.resolve().name


def read_trials(out: str | Path, storage: str | None = None) -> list[TrialRecord]:
    """A run's trials, read without taking the run's lock (safe while it is running)."""
    out = Path(out)
    if storage is None and not (out / "run.json").is_file():
        raise NasforgeError(f"{out} holds no nasforge run")
    url, name = run_meta(out)
    return RunStore(storage or url, name, create=False).records()


def best_trial(records: list[TrialRecord]) -> TrialRecord | None:
    """Highest fitness; ties go to fewer parameters, then to the earlier trial."""
    done = [r for r in records if r.state == "complete" and r.fitness is not None]
    return max(done, key=lambda r: rank_key(r.fitness, r.metrics.get("params", 0), r.number), default=None)
