"""--log mlflow / tensorboard: every trial lands in the tracker once, read back with the
tracker's own reader; a resumed run adds only its new trials; a tracker that is missing or
down never costs the search."""
import importlib.util
import json
import socket
import sys

import pytest
from conftest import cli

needs_mlflow = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="mlflow is not installed")
needs_tb = pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard is not installed")
FAST = ["--dataset", "iris", "--strategy", "random", "--epochs", "5"]


def _mlflow_trials(out):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out.resolve() / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(out.resolve().name)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


@needs_mlflow
def test_mlflow_records_every_trial_once_and_the_best_model(tmp_path):
    out = tmp_path / "ml"
    r = cli("search", *FAST, "--budget", "3", "--log", "mlflow", "--out", out)
    assert r.returncode == 0, r.stderr
    client, parents, children = _mlflow_trials(out)
    assert len(parents) == 1 and len(children) == 3
    trials = {t["number"]: t for t in json.loads(cli("show", out, "--json").stdout)}
    for child in children:
        number = int(child.data.tags["nasforge.trial"])
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert child.data.metrics["val_acc"] == pytest.approx(trials[number]["metrics"]["val_acc"])
        assert child.data.metrics["fitness"] == pytest.approx(trials[number]["fitness"])
        assert child.data.params["state"] == "complete" and child.data.params["genome"]
        assert json.loads(child.data.tags["nasforge.genome"]) == trials[number]["genome"]
    parent = parents[0]
    best = int(parent.data.tags["nasforge.best_trial"])
    assert best == max(trials.values(), key=lambda t: (t["fitness"], -t["metrics"]["params"]))["number"]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "best")}
    assert artifacts == {"best/model.pt", "best/genome.json"}
    # resumed with a larger budget: only the new trials are logged, into the same MLflow run
    r = cli("resume", out, "--budget", "5")
    assert r.returncode == 0, r.stderr
    _, parents, children = _mlflow_trials(out)
    assert len(parents) == 1 and len(children) == 5
    assert sorted(int(c.data.tags["nasforge.trial"]) for c in children) == sorted(trials | {3: 0, 4: 0})


@needs_tb
def test_tensorboard_event_file_holds_every_trial(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb"
    r = cli("search", *FAST, "--budget", "3", "--objectives", "accuracy,params", "--log", "tensorboard", "--out", out)
    assert r.returncode == 0, r.stderr
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    steps = [e.step for e in events.Scalars("trial/val_acc")]
    assert sorted(steps) == [0, 1, 2]
    assert len(events.Scalars("trial/objective_params")) == 3
    trials = {t["number"]: t for t in json.loads(cli("show", out, "--json").stdout)}
    for e in events.Scalars("trial/params"):
        assert e.value == trials[e.step]["metrics"]["params"]
    assert len(events.Tensors("trial/genome/text_summary")) == 3


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_mlflow
def test_an_unreachable_tracker_costs_one_line_not_the_search(tmp_path):
    out = tmp_path / "down"
    r = cli("search", *FAST, "--budget", "2", "--log", "mlflow", "--mlflow-uri", f"http://127.0.0.1:{_closed_port()}",
            "--out", out)
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if "mlflow tracking" in line]
    assert len(lines) == 1 and "the search goes on" in lines[0]
    assert len(json.loads(cli("show", out, "--json").stdout)) == 2
    assert "Traceback" not in r.stderr


def test_unknown_or_missing_tracker_is_one_line(tmp_path, monkeypatch):
    r = cli("search", *FAST, "--budget", "1", "--log", "wandb", "--out", tmp_path / "u")
    assert r.returncode == 2 and "unknown tracker 'wandb'" in r.stderr and r.stderr.count("\n") == 1
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed: importing it fails
    r = cli("search", *FAST, "--budget", "1", "--log", "tensorboard", "--out", tmp_path / "m")
    assert r.returncode == 2 and "pip install 'nasforge[tensorboard]'" in r.stderr
    assert not (tmp_path / "m" / "models").exists()  # nothing was trained


@needs_tb
def test_python_api_takes_trackers(tmp_path):
    import nasforge

    out = tmp_path / "api"
    nasforge.search("iris", strategy="random", budget=2, out=out, train={"epochs": 5}, log=["tensorboard"])
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))


@needs_tb
def test_tracked_trials_say_which_rung_they_reached(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "rungs"
    r = cli("search", *FAST, "--budget", "4", "--scheduler", "asha", "--min-epochs", "1", "--max-epochs", "4",
            "--eta", "2", "--log", "tensorboard", "--out", out)
    assert r.returncode == 0, r.stderr
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    trials = {t["number"]: t for t in json.loads(cli("show", out, "--json").stdout)}
    logged = {e.step: e.value for e in events.Scalars("trial/rung_epochs")}
    assert logged and set(logged) <= set(trials)
    for number, epochs in logged.items():
        reached = [g for g in trials[number]["rungs"] if not g.get("failed")]
        assert epochs == reached[-1]["epochs"]
