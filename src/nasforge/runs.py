"""Reading a run directory without running it: where its trials are, and which is best.

Torch-free, so ``nasforge show`` starts at once; safe while a search writes the run.

A run directory is self-contained: ``run.json`` names the study, and names a storage URL
only when the run was started with ``--storage``; otherwise the database is the directory's
own ``study.db``, wherever the directory now is, so a run can be moved, copied or archived
and opened again, and a copy never writes into the original. (Runs made before this wrote
the absolute path of their own ``study.db``; such a URL is read as "the directory's own".)
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

from . import pareto
from .errors import NasforgeError
from .files import write_text
from .storage import RunStore, TrialRecord, sqlite_url
from .strategies.ga import rank_key


def read_meta(out: Path) -> dict[str, Any]:
    """``run.json`` of a run directory ({} when there is none)."""
    path = out / "run.json"
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NasforgeError(f"{path} is damaged ({exc}); it should hold the run's study name") from None
    if not isinstance(meta, dict):
        raise NasforgeError(f"{path} is damaged: it should hold a JSON object with the run's study name")
    return meta


def own_database(url: str) -> bool:
    """Whether ``url`` is what older runs stored for their own database (an absolute sqlite path to a study.db)."""
    return url.startswith("sqlite:///") and Path(url.removeprefix("sqlite:///")).name == "study.db"


def run_meta(out: Path, storage: str | None = None) -> tuple[str, str]:
    """The storage URL and study name of the run in ``out``: ``storage`` if given, else the
    one run.json names, else the directory's own study.db (see the module's docstring)."""
    meta = read_meta(out)
    stored = meta.get("storage")
    if storage is None and stored and own_database(stored) and (out / "study.db").is_file():
        stored = None  # an older run's own database, perhaps since moved or copied
    return storage or stored or sqlite_url(out), meta.get("study") or out.resolve().name


def write_meta(out: Path, url: str, name: str) -> None:
    """run.json: the study's name, and the storage URL only when it is not the directory's own."""
    meta = {"study": name} | ({} if url == sqlite_url(out) else {"storage": url})
    write_text(out / "run.json", json.dumps(meta, indent=1))


def read_trials(out: str | Path, storage: str | None = None) -> list[TrialRecord]:
    """A run's trials, read without taking the run's lock (safe while it is running)."""
    out = Path(out)
    if storage is None and not (out / "run.json").is_file():
        raise NasforgeError(f"{out} holds no nasforge run")
    return RunStore(*run_meta(out, storage), create=False, read_only=True).records()


def read_stored_config(out: str | Path, storage: str | None = None) -> dict[str, Any]:
    """The configuration a run stored (as JSON data), read without taking the run's lock."""
    out = Path(out)
    if storage is None and not (out / "run.json").is_file():
        raise NasforgeError(f"{out} holds no nasforge run")
    return RunStore(*run_meta(out, storage), create=False, read_only=True).get("config") or {}


def read_task_info(out: str | Path) -> dict[str, Any]:
    """What a run saved for prediction (``task.pkl``): classes, input shape, preprocessor, the
    task's kind and a regression target's scale; ``n_outputs`` is the network's output width."""
    path = Path(out) / "task.pkl"
    if not path.is_file():
        if not (Path(out) / "run.json").is_file():
            raise NasforgeError(f"{out} holds no nasforge run (no run.json, no task.pkl)")
        raise NasforgeError(f"{path} is missing; 'nasforge resume {out}' writes it again from the run's data")
    try:
        info = pickle.loads(path.read_bytes())  # written by nasforge itself for this run
        if not isinstance(info, dict) or not {"classes", "input_shape"} <= info.keys():
            raise ValueError("not what nasforge writes")
    except Exception as exc:  # a damaged file: any unpickling error
        raise NasforgeError(f"{path} is damaged ({type(exc).__name__}: {str(exc)[:100]}); "
                            f"'nasforge resume {out}' writes it again from the run's data") from None
    info.setdefault("kind", "classification")  # runs from before regression
    info["n_outputs"] = len(info["classes"]) if info["kind"] == "classification" else 1
    return info


def best_trial(records: list[TrialRecord]) -> TrialRecord | None:
    """The run's answer. One objective: the highest fitness; ties go to fewer parameters, then
    to the earlier trial. Several: the knee of the Pareto front (:func:`pareto.knee`). Either
    way a trial within the run's limits beats every trial over one; with none within them,
    the one nearest to them."""
    done = [r for r in records if r.state == "complete" and r.point is not None]
    if not done:
        return None
    feasible = [r for r in done if r.violation <= 0]
    if not feasible:
        return min(done, key=lambda r: (r.violation, r.number))
    if len(feasible[0].point) > 1:
        return feasible[pareto.knee([r.point for r in feasible])]
    return max(feasible, key=lambda r: rank_key(r.point[0], r.metrics.get("params", 0), r.number))


def pareto_trials(records: list[TrialRecord]) -> list[TrialRecord]:
    """The complete trials on the Pareto front (within the run's limits when any trial is),
    in trial order. One objective: the best trial alone."""
    done = [r for r in records if r.state == "complete" and r.point is not None]
    feasible = [r for r in done if r.violation <= 0] or done
    if not feasible or len(feasible[0].point) == 1:
        best = best_trial(records)
        return [best] if best else []
    return [feasible[i] for i in pareto.pareto_front([r.point for r in feasible])]
