"""Energy figures: RAPL counters where readable ("measured"), LEMONADE Eq. 4 otherwise ("estimated").

RAPL is simulated with a fake powercap tree: ``energy.RAPL_GLOB`` is pointed at a tmp dir
holding ``intel-rapl:N/energy_uj`` files, and the counters are advanced inside the metered
block, as the kernel would while the block runs.
"""
from __future__ import annotations

import glob
from pathlib import Path

import pytest
import torch

from nasforge.data import load_task
from nasforge.evaluators.training import TrainingEvaluator as Evaluator
from nasforge.measure import energy
from nasforge.measure.energy import PowerSettings, energy_meter, estimate_kwh, rapl_readable
from nasforge.spaces import MLPGenome
from nasforge.train.settings import TrainSettings

torch.set_num_threads(1)
UJ_PER_KWH = 3.6e12


def fake_rapl(root: Path, counters: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Zone directories with counters; RAPL_GLOB points at them. Returns {zone: energy_uj file}."""
    files = {}
    for zone, value in counters.items():
        folder = root / zone
        folder.mkdir(parents=True)
        (folder / "energy_uj").write_text(f"{value}\n")
        files[zone] = folder / "energy_uj"
    monkeypatch.setattr(energy, "RAPL_GLOB", str(Path(glob.escape(str(root))) / "intel-rapl:*" / "energy_uj"))
    return files


def advance(path: Path, delta: int) -> None:
    path.write_text(f"{int(path.read_text()) + delta}\n")


def test_estimate_is_lemonade_eq4():
    power = PowerSettings(cpu_watts=10, ram_watts=5, gpu_watts=100, gpus=1)
    assert estimate_kwh(3600, power) == pytest.approx(1.58 * 1 * 115 / 1000, rel=1e-12)
    assert estimate_kwh(1800, PowerSettings(cpu_watts=15, ram_watts=3)) == pytest.approx(1.58 * 0.5 * 18 / 1000)
    assert estimate_kwh(0, power) == 0.0
    # GPU watts count only per GPU present
    assert estimate_kwh(3600, PowerSettings(cpu_watts=10, ram_watts=5, gpu_watts=100, gpus=0)) == pytest.approx(1.58 * 15 / 1000)


def test_label_is_estimated_without_rapl(tmp_path, monkeypatch):
    monkeypatch.setattr(energy, "RAPL_GLOB", str(Path(glob.escape(str(tmp_path))) / "intel-rapl:*" / "energy_uj"))
    power = PowerSettings(cpu_watts=10, ram_watts=5)
    assert not rapl_readable()
    with energy_meter(power) as reading:
        sum(range(10000))
    assert reading.source == "estimated"
    assert reading.seconds > 0
    assert reading.kwh == pytest.approx(estimate_kwh(reading.seconds, power))


def test_measures_package_counters_and_ignores_subzones(tmp_path, monkeypatch):
    files = fake_rapl(tmp_path, {"intel-rapl:0": 1_000, "intel-rapl:1": 5_000_000, "intel-rapl:0:0": 7}, monkeypatch)
    assert rapl_readable()
    with energy_meter(PowerSettings()) as reading:
        advance(files["intel-rapl:0"], 3_600_000)   # 1e-6 kWh
        advance(files["intel-rapl:1"], 1_800_000)   # 0.5e-6 kWh
        advance(files["intel-rapl:0:0"], 10**12)    # a sub-zone: already inside package 0's count
    assert reading.source == "measured"
    assert reading.kwh == pytest.approx(5_400_000 / UJ_PER_KWH)


def test_counter_wrap_falls_back_to_estimate(tmp_path, monkeypatch):
    files = fake_rapl(tmp_path, {"intel-rapl:0": 10**9}, monkeypatch)
    power = PowerSettings(cpu_watts=20, ram_watts=0)
    with energy_meter(power) as reading:
        files["intel-rapl:0"].write_text("12\n")  # wrapped around past its maximum
    assert reading.source == "estimated"
    assert reading.kwh == pytest.approx(estimate_kwh(reading.seconds, power))


def test_unreadable_counter_means_estimated(tmp_path, monkeypatch):
    files = fake_rapl(tmp_path, {"intel-rapl:0": 100}, monkeypatch)
    files["intel-rapl:0"].write_text("permission denied\n")  # what a non-integer read amounts to
    assert not rapl_readable()
    with energy_meter(PowerSettings()) as reading:
        pass
    assert reading.source == "estimated"


def test_use_rapl_false_estimates_even_when_readable(tmp_path, monkeypatch):
    files = fake_rapl(tmp_path, {"intel-rapl:0": 0}, monkeypatch)
    with energy_meter(PowerSettings(), use_rapl=False) as reading:
        advance(files["intel-rapl:0"], 3_600_000)
    assert reading.source == "estimated"


def test_evaluator_labels_energy(tmp_path, monkeypatch):
    """A trial's metrics carry the label: estimated without RAPL, measured with it."""
    task = load_task("iris", seed=0)
    evaluator = Evaluator(task, TrainSettings(epochs=2))
    genome = MLPGenome.model_validate({"layers": [{"units": 8}]})
    monkeypatch.setattr(energy, "RAPL_GLOB", str(Path(glob.escape(str(tmp_path))) / "none-*" / "energy_uj"))
    metrics = evaluator.evaluate(genome, seed=0).metrics
    assert metrics["energy_source"] == "estimated"
    assert metrics["train_energy_kwh"] > 0 and metrics["infer_energy_kwh"] > 0
    fake_rapl(tmp_path / "rapl", {"intel-rapl:0": 0}, monkeypatch)
    metrics = evaluator.evaluate(genome, seed=0).metrics
    assert metrics["energy_source"] == "measured"
    assert metrics["train_energy_kwh"] == 0.0  # nothing advanced the fake counter


def test_this_machine_label_matches_rapl_availability():
    with energy_meter(PowerSettings()) as reading:
        pass
    assert reading.source == ("measured" if rapl_readable() else "estimated")
