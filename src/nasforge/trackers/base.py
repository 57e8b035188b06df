"""What every tracker shares: what a trial is in a tracker's terms, which trials are already
logged, and never letting a tracker fail a search.

Rules (README "Experiment trackers"):
- Every finished trial is logged once: its genome summary, operator and parents as
  parameters (the genome's JSON as a tag or text), every numeric metric, the fitness or each
  objective's value, its state, and with multi-fidelity the rung it reached. At the end, the
  best (or chosen) trial's model file and genome are logged as artifacts.
- Which trials a tracker has logged is kept in the run's study (``tracked:<name>``), so a
  resumed run logs only the trials it has not, and trials a tracker missed while it was down
  are logged on the next resume.
- A tracker whose package is not installed is a one-line error before anything runs. A
  tracker that fails while logging (a server gone, a full disk) prints one line on stderr and
  stops logging; the search itself goes on.
"""
from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NasforgeError
from ..registry import Registry

if TYPE_CHECKING:
    from ..storage import RunStore, TrialRecord

TRACKERS: Registry[type[Tracker]] = Registry("tracker", "nasforge.trackers")


def require(module: str, extra: str, tracker: str) -> Any:
    """Import ``module`` or say in one line how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise NasforgeError(f"--log {tracker} needs the {module} package: pip install 'nasforge[{extra}]'") from None


def trial_params(record: TrialRecord) -> dict[str, str]:
    """A trial's description as tracker parameters (short strings)."""
    from ..report.drawing import summary

    return {"trial": str(record.number), "genome": summary(record), "operator": record.operator or "-",
            "parents": ",".join(map(str, record.parents)) or "-", "state": record.state}


def trial_metrics(record: TrialRecord, objectives: list[str]) -> dict[str, float]:
    """Every finite number a trial recorded, its fitness or objective values, and its rung."""
    metrics = {k: float(v) for k, v in record.metrics.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}
    if record.fitness is not None and math.isfinite(record.fitness):
        metrics["fitness"] = float(record.fitness)
    for name, value in zip(objectives, record.values or []):
        if value is not None and math.isfinite(value):
            metrics[f"objective_{name}"] = float(value)
    reached = [r for r in record.rungs if not r.get("failed")]
    if reached:
        metrics["rung"], metrics["rung_epochs"] = float(reached[-1]["rung"]), float(reached[-1]["epochs"])
    return metrics


class Tracker:
    """One tracker of one run. Subclasses set ``name`` and implement ``log_trial``, ``log_best``
    and (if they hold resources) ``close``; ``open`` may keep state in the run's store."""

    name = ""

    def __init__(self, out: Path, config: Any, store: RunStore):
        self.out, self.config, self.store = out, config, store

    def log_trial(self, record: TrialRecord, params: dict[str, str], metrics: dict[str, float],
                  genome: str) -> None:
        raise NotImplementedError

    def log_best(self, record: TrialRecord, files: list[Path]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class Trackers:
    """The run's trackers, each guarded: a failure disables that tracker with one line on stderr."""

    def __init__(self, trackers: list[Tracker], store: RunStore, objectives: list[str]):
        self.trackers, self.store, self.objectives = trackers, store, objectives

    def _guarded(self, tracker: Tracker, what: str, call: Any) -> None:
        try:
            call()
        except NasforgeError:
            raise
        except Exception as exc:  # whatever the tracker's client raises: the search must go on
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            print(f"nasforge: {tracker.name} tracking stopped ({what}: {reason}); the search goes on, and the "
                  f"trials it missed are logged when the run is resumed", file=sys.stderr, flush=True)
            self.trackers.remove(tracker)
            tracker.close()

    def _logged(self, tracker: Tracker) -> set[int]:
        return set(self.store.get(f"tracked:{tracker.name}", []))

    def trials(self, records: Iterable[TrialRecord]) -> None:
        """Log the finished trials a tracker has not logged yet."""
        records = [r for r in records if r.finished]
        for tracker in list(self.trackers):
            logged = self._logged(tracker)
            new = [r for r in records if r.number not in logged]
            for record in new:
                self._guarded(tracker, f"trial {record.number}", lambda t=tracker, r=record: t.log_trial(
                    r, trial_params(r), trial_metrics(r, self.objectives), json.dumps(r.genome, sort_keys=True)))
                if tracker not in self.trackers:
                    break
                logged.add(record.number)
            if new:
                self.store.set(f"tracked:{tracker.name}", sorted(logged))

    def best(self, record: TrialRecord | None, out: Path) -> None:
        if record is None:
            return
        files = [f for f in (out / "best" / "model.pt", out / "best" / "genome.json") if f.is_file()]
        for tracker in list(self.trackers):
            self._guarded(tracker, "the best model", lambda t=tracker: t.log_best(record, files))

    def close(self) -> None:
        for tracker in self.trackers:
            tracker.close()


def open_trackers(config: Any, out: Path, store: RunStore) -> Trackers:
    """The trackers ``config.log`` names, started (one line if a package is missing)."""
    trackers: list[Tracker] = []
    objectives = list(config.objectives or [])
    result = Trackers(trackers, store, objectives)
    for name in config.log:
        cls = TRACKERS.get(name)
        try:
            trackers.append(cls(out, config, store))
        except NasforgeError:
            raise
        except Exception as exc:
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            print(f"nasforge: {name} tracking could not start ({reason}); the search goes on without it",
                  file=sys.stderr, flush=True)
    return result
