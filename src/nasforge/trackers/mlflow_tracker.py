"""MLflow: one MLflow run per nasforge run, one nested run per trial.

The default tracking URI is a SQLite database in the run directory (``RUN/mlflow.db``, its
artifacts in ``RUN/mlartifacts``: ``mlflow ui --backend-store-uri sqlite:///RUN/mlflow.db``
shows it; MLflow 3 keeps its file store in maintenance mode); ``--mlflow-uri`` points at any
other (a server, a database). The experiment is named after the run directory. The parent run's id is kept in
the run's study, so a resumed search logs into the same MLflow run. Requests to a server
are not retried (``MLFLOW_HTTP_REQUEST_MAX_RETRIES=0`` unless set), so a server that is down
costs one failed request, not minutes of back-off.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import TRACKERS, Tracker, require

if TYPE_CHECKING:
    from ..storage import RunStore, TrialRecord

RUN_ID = "mlflow_run_id"


def default_uri(out: Path) -> str:
    """The run's own MLflow database."""
    return f"sqlite:///{out.resolve() / 'mlflow.db'}"


@TRACKERS.register
class MLflowTracker(Tracker):
    name = "mlflow"

    def __init__(self, out: Path, config: Any, store: RunStore):
        super().__init__(out, config, store)
        require("mlflow", "mlflow", self.name)
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        from mlflow.tracking import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # not its database set-up notes on the user's terminal
        logging.getLogger("alembic").setLevel(logging.WARNING)
        self.uri = config.mlflow_uri or default_uri(out)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.parent = store.get(RUN_ID)
        if self.parent is None:
            name = out.resolve().name
            found = self.client.get_experiment_by_name(name)
            artifacts = None if config.mlflow_uri else (out.resolve() / "mlartifacts").as_uri()
            experiment = (found.experiment_id if found is not None
                          else self.client.create_experiment(name, artifact_location=artifacts))
            run = self.client.create_run(experiment, run_name=name, tags={"nasforge.run": str(out.resolve())})
            self.parent = run.info.run_id
            store.set(RUN_ID, self.parent)
            self.client.log_dict(self.parent, config.model_dump(mode="json"), "config.json")
        self.experiment = self.client.get_run(self.parent).info.experiment_id

    def log_trial(self, record: TrialRecord, params: dict[str, str], metrics: dict[str, float], genome: str) -> None:
        from mlflow.entities import Metric, Param, RunTag

        run = self.client.create_run(self.experiment, run_name=f"trial-{record.number:05d}",
                                     tags={"mlflow.parentRunId": self.parent, "nasforge.trial": str(record.number)})
        run_id = run.info.run_id
        self.client.log_batch(run_id, metrics=[Metric(k, v, 0, record.number) for k, v in metrics.items()],
                              params=[Param(k, v[:6000]) for k, v in params.items()],
                              tags=[RunTag("nasforge.genome", genome[:5000])])
        status = {"complete": "FINISHED", "failed": "FAILED"}.get(record.state, "KILLED")
        self.client.set_terminated(run_id, status)
        if "fitness" in metrics:  # the parent's curve: each trial's fitness, stepped by trial number
            self.client.log_metric(self.parent, "trial_fitness", metrics["fitness"], step=record.number)

    def log_best(self, record: TrialRecord, files: list[Path]) -> None:
        self.client.set_tag(self.parent, "nasforge.best_trial", str(record.number))
        for path in files:
            self.client.log_artifact(self.parent, str(path), "best")
