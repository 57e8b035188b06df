"""Device and precision (issue #17), as far as a CPU-only machine can check them: choosing the
device, the one-line errors, autocast training in bf16/fp16 (real, on the CPU), continuing an
fp16 training bit for bit, a candidate out of GPU memory, GPUs shared by worker processes, a
run resumed on another device, and loading a model where the user asks."""
import json
import math
import time

import numpy as np
import pytest
import torch
from conftest import cli, run_study

import nasforge
from nasforge import device as devices
from nasforge.config import build_config
from nasforge.errors import NasforgeError
from nasforge.evaluators import Evaluation
from nasforge.evaluators.training import TrainingEvaluator
from nasforge.executors import Job, ProcessExecutor, make_executor
from nasforge.measure.energy import PUE, PowerSettings, _with_gpu
from nasforge.spaces import MLPSpace
from nasforge.train.settings import TrainSettings
from nasforge.train.trainer import train

SMALL = ["--max-layers", 1, "--max-units", 16, "--epochs", 3, "--patience", 0]


def config(**kw):
    return build_config({"data": {"dataset": "iris"}, "budget": 3, "seed": 0,
                         "space": {"max_layers": 1, "max_units": 16}, "train": {"epochs": 3, "patience": 0}, **kw})


@pytest.fixture
def two_gpus(monkeypatch):
    """torch told there are two CUDA devices (names only; nothing runs on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU")


def test_auto_is_the_cpu_here_and_cuda_is_refused_in_one_line():
    assert not torch.cuda.is_available()  # this suite runs on CPU-only machines; a GPU one sees the GPU tests
    assert devices.resolve("auto") == torch.device("cpu") == devices.resolve("cpu")
    for name in ("cuda", "cuda:1"):
        with pytest.raises(NasforgeError, match=f"--device {name}: torch sees no CUDA device") as caught:
            devices.resolve(name)
        assert "\n" not in str(caught.value)
    with pytest.raises(NasforgeError, match="unknown device 'tpu'"):
        devices.resolve("tpu")
    assert devices.gpus_for("auto") == 0 and devices.describe(torch.device("cpu")) == "cpu"


def test_workers_share_the_gpus_round_robin(two_gpus):
    assert devices.resolve("auto") == torch.device("cuda", 0)
    assert [devices.resolve("cuda", worker=w).index for w in range(5)] == [0, 1, 0, 1, 0]
    assert devices.resolve("cuda:1", worker=0).index == 1  # a named GPU stays named
    with pytest.raises(NasforgeError, match="has 2 CUDA device"):
        devices.resolve("cuda:2")
    assert devices.gpus_for("cuda") == 2 and devices.gpus_for("cuda:1") == 1 and devices.gpus_for("cpu") == 0


def test_on_ray_the_tasks_gpus_count_not_this_machines():
    from nasforge.device import DeviceSettings

    assert devices.check(DeviceSettings(name="cuda"), ray_gpus=0.25) == "Ray tasks with 0.25 GPU each, fp32"
    assert devices.check(DeviceSettings(), ray_gpus=0) == "Ray tasks on CPUs, fp32"
    with pytest.raises(NasforgeError, match="with Ray needs --gpus-per-task"):
        devices.check(DeviceSettings(name="cuda:0"), ray_gpus=0)
    with pytest.raises(NasforgeError, match="fractional --gpus-per-task"):
        devices.check(DeviceSettings(name="cuda", trials_per_gpu=2), ray_gpus=1)


def test_trials_per_gpu_starts_that_many_workers_per_gpu(two_gpus, tmp_path):
    cfg = config(device={"name": "cuda", "trials_per_gpu": 3})
    assert devices.check(cfg.device) == "2 GPUs (cuda:0 (Fake GPU), ...), 3 candidates at once on each, fp32"
    with pytest.raises(NasforgeError, match="--workers or --trials-per-gpu"):
        devices.check(cfg.device, workers=2)
    evaluator = TrainingEvaluator(nasforge.load_task("iris", seed=0), device=cfg.device)
    executor = make_executor(cfg, evaluator)
    try:
        assert isinstance(executor, ProcessExecutor) and executor.slots == 6  # 3 per GPU, 2 GPUs
    finally:
        executor.close()


@pytest.mark.parametrize("args,needle", [
    (["--device", "cuda"], "--device cuda: torch sees no CUDA device"),
    (["--device", "cuda:0"], "--device cuda:0: torch sees no CUDA device"),
    (["--trials-per-gpu", "2"], "--trials-per-gpu 2 needs a CUDA device"),
    (["--device", "tpu"], "device.name"),
    (["--precision", "fp8"], "invalid choice"),
])
def test_bad_device_settings_are_one_line_and_write_nothing(tmp_path, args, needle):
    out = tmp_path / "r"
    r = cli("search", "--dataset", "iris", "--budget", 1, "--out", out, *args)
    assert r.returncode == 2 and needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 3
    assert not out.exists()


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_search_trains_under_autocast_and_names_its_device(tmp_path, precision):
    out = tmp_path / precision
    r = cli("search", "--dataset", "digits", "--budget", 2, "--seed", 1, *SMALL, "--precision", precision, "--out", out)
    assert r.returncode == 0, r.stderr
    assert f"device: cpu, {precision}" in r.stderr  # the run header
    trials = nasforge.open_run(out).trials
    assert all(t.state == "complete" and t.metrics["device"] == "cpu" and t.metrics["measured_on"] == "cpu"
               for t in trials)
    assert all(t.metrics["val_acc"] > 0.5 for t in trials)  # it learned (10 classes: chance is 0.1)
    fp32 = tmp_path / "fp32"
    assert cli("search", "--dataset", "digits", "--budget", 2, "--seed", 1, *SMALL, "--out", fp32).returncode == 0
    same = [t.genome for t in nasforge.open_run(fp32).trials] == [t.genome for t in trials]
    assert same  # the precision changes how candidates train, not which are proposed first
    assert [t.metrics["val_loss"] for t in nasforge.open_run(fp32).trials] != [t.metrics["val_loss"] for t in trials]


def test_fp16_training_continues_bit_for_bit_with_its_gradient_scaler():
    task = nasforge.load_task("digits", seed=0)
    genome = MLPSpace(64, 10, max_layers=2, max_units=32).sample(np.random.default_rng(3))
    settings = TrainSettings(epochs=4, patience=0)

    def fresh():
        torch.manual_seed(0)
        return genome.build(task.input_shape, task.n_classes)

    def run(model, **kw):
        return train(model, task.X_train, task.y_train, task.X_val, task.y_val, settings,
                     torch.Generator().manual_seed(0), precision="fp16", **kw)

    whole = fresh()
    in_one_go = run(whole, until=4)
    half = fresh()
    first = run(half, until=2)
    assert first.state.scaler is not None and first.state.scaler["scale"] > 0
    continued = fresh()
    second = run(continued, resume=first.state)
    for key, value in whole.state_dict().items():
        assert torch.equal(value, continued.state_dict()[key]), key
    assert second.state.scaler == in_one_go.state.scaler  # the scaler went on counting its good steps


def test_a_candidate_out_of_gpu_memory_is_a_failed_trial_and_the_search_goes_on(tmp_path, monkeypatch):
    real = TrainingEvaluator._train
    calls = []

    def second_runs_out(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(TrainingEvaluator, "_train", second_runs_out)
    trials = run_study(tmp_path / "r", config())
    states = [t.state for t in sorted(trials, key=lambda t: t.number)]
    assert states == ["complete", "failed", "complete"]
    failed = next(t for t in trials if t.state == "failed")
    assert "out of GPU memory on cpu with batch size 64" in failed.error and "--trials-per-gpu" in failed.error


class PlacedEvaluator:
    """Reports which worker evaluated (a stand-in for the GPU each worker takes)."""

    name, needs_task, weights = "placed", False, None

    def __init__(self):
        self.worker = None

    def place(self, worker):
        self.worker = worker

    def evaluate(self, genome, seed):
        time.sleep(0.3)  # long enough for both workers to get a job
        return Evaluation({"worker": self.worker}, {})


def test_each_worker_process_is_placed_with_its_own_number():
    genome = MLPSpace(4, 3).sample(np.random.default_rng(0)).to_dict()
    executor = ProcessExecutor(PlacedEvaluator(), 2, 1)
    try:
        for key in range(4):
            executor.submit(key, Job(genome, 0))
        results = []
        while len(results) < 4:
            results += executor.wait()
    finally:
        executor.close()
    assert {outcome.evaluation.metrics["worker"] for _, outcome in results} == {0, 1}


def test_a_run_resumed_on_another_device_says_so_and_keeps_its_trials(tmp_path):
    out = tmp_path / "r"
    r = cli("search", "--dataset", "iris", "--budget", 2, *SMALL, "--device", "cpu", "--out", out)
    assert r.returncode == 0, r.stderr
    r = cli("resume", out, "--budget", 3, "--device", "auto", "--precision", "bf16")
    assert r.returncode == 0, r.stderr
    assert "note: this run trained on cpu, fp32; it continues on cpu, bf16: later candidates" in r.stderr
    trials = nasforge.open_run(out).trials
    assert len(trials) == 3 and all(t.state == "complete" for t in trials)
    stored = json.loads((out / "run.json").read_text())
    assert stored  # the run's files are intact
    # the next plain resume continues where the last one ran, without another note
    r = cli("resume", out, "--budget", 4)
    assert r.returncode == 0 and "note:" not in r.stderr, r.stderr
    assert nasforge.open_run(out).trials[-1].metrics["device"] == "cpu"
    assert "trained on cpu" in cli("show", out).stdout  # one device: a caption, not a column
    # --device auto and cpu are the same device here: no note
    r = cli("resume", out, "--budget", 5, "--device", "cpu", "--precision", "bf16")
    assert r.returncode == 0 and "note:" not in r.stderr, r.stderr


def test_models_load_on_the_device_asked_for(tmp_path):
    out = tmp_path / "r"
    assert cli("search", "--dataset", "iris", "--budget", 1, *SMALL, "--out", out).returncode == 0
    model = nasforge.load_model(out, device="auto")
    assert next(model.module.parameters()).device.type == "cpu"
    task = nasforge.load_task("iris", seed=0)
    assert model.predict_proba(task.X_test.numpy()).shape == (len(task.y_test), 3)
    with pytest.raises(NasforgeError, match="no CUDA device"):
        nasforge.load_model(out, device="cuda")
    r = cli("train", out, "--epochs", 2, "--device", "cuda")
    assert r.returncode == 2 and "no CUDA device" in r.stderr
    r = cli("train", out, "--epochs", 2, "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "final" / "metrics.json").read_text())["device"] == "cpu"


def test_a_gpu_share_of_energy_is_labelled_measured_or_estimated():
    power = PowerSettings(gpu_watts=300.0)
    kwh, source = _with_gpu(3600.0, power, "cuda:0", None, 0.5, cpu_measured=True)  # NVML unreadable
    assert source == "measured (CPU), estimated (GPU)" and math.isclose(kwh, 0.5 + PUE * 0.3)
    kwh, source = _with_gpu(3600.0, power, "cuda:0", None, 0.5, cpu_measured=False)
    assert source == "estimated"


def test_a_task_moves_to_a_device_once():
    task = nasforge.load_task("iris", seed=0)
    assert task.to(torch.device("cpu")) is task


def test_a_plain_resume_of_a_gpu_run_on_a_machine_without_one_is_one_line(tmp_path):
    from nasforge.study import load_study

    out = tmp_path / "r"
    assert cli("search", "--dataset", "iris", "--budget", 1, *SMALL, "--out", out).returncode == 0
    study = load_study(out)  # as if it had been searched with --device cuda on a GPU machine
    stored = study.store.get("config")
    study.store.set("config", {**stored, "device": {**stored["device"], "name": "cuda"}})
    study.close()
    r = cli("resume", out, "--budget", 2)
    assert r.returncode == 2 and "--device cuda: torch sees no CUDA device" in r.stderr, r.stderr
    assert len(nasforge.open_run(out).trials) == 1  # nothing was tried, nothing recorded as failed
    r = cli("resume", out, "--budget", 2, "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert [t.state for t in nasforge.open_run(out).trials] == ["complete", "complete"]


def test_show_has_a_device_column_when_a_run_trained_on_several(tmp_path, monkeypatch):
    import nasforge.runs

    out = tmp_path / "r"
    assert cli("search", "--dataset", "iris", "--budget", 2, *SMALL, "--out", out).returncode == 0
    real = nasforge.runs.read_trials

    def one_on_a_gpu(run, storage=None):  # as if the run had been resumed on a GPU machine
        records = real(run, storage)
        records[-1].metrics["device"] = "cuda:0 (Fake GPU)"
        return records

    monkeypatch.setattr(nasforge.runs, "read_trials", one_on_a_gpu)
    shown = cli("show", out).stdout
    assert "device" in shown and "cuda:0 (Fake GPU)" in shown and "trained on" not in shown
