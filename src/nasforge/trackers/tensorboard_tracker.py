"""TensorBoard: scalars and text in ``RUN/tensorboard`` (``tensorboard --logdir RUN/tensorboard``).

Each trial is one step (its trial number) of scalars ``trial/<metric>`` (every numeric
metric, ``fitness`` or ``objective_<name>``, ``rung``) and a text ``trial/genome`` with
its summary, operator, parents and state; the best trial's number is a text ``best``. A
resumed search appends a new event file to the same folder.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import TRACKERS, Tracker, require

if TYPE_CHECKING:
    from ..storage import RunStore, TrialRecord


@TRACKERS.register
class TensorBoardTracker(Tracker):
    name = "tensorboard"

    def __init__(self, out: Path, config: Any, store: RunStore):
        super().__init__(out, config, store)
        require("tensorboard", "tensorboard", self.name)
        from torch.utils.tensorboard import SummaryWriter

        self.folder = out / "tensorboard"
        self.writer = SummaryWriter(log_dir=str(self.folder))

    def log_trial(self, record: TrialRecord, params: dict[str, str], metrics: dict[str, float], genome: str) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(f"trial/{key}", value, record.number)
        self.writer.add_text("trial/genome", " · ".join(f"{k}: {v}" for k, v in params.items()), record.number)
        self.writer.flush()

    def log_best(self, record: TrialRecord, files: list[Path]) -> None:
        self.writer.add_text("best", f"trial {record.number}: {files[0] if files else 'no model file'}", record.number)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
