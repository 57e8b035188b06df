"""benchmarks/gpu.py on a machine without a GPU: it says so without measuring, keeps a GPU
machine's table, and its dry run on the CPU goes through every step the GPU run takes."""
import sys

import pytest
import torch
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu  # noqa: E402


def test_without_a_gpu_nothing_is_measured_and_a_measurement_is_kept(tmp_path, capsys):
    assert not torch.cuda.is_available()
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n")
    assert gpu.main([], results=results) == []
    assert "no CUDA device; nothing measured" in capsys.readouterr().err
    text = results.read_text()
    assert "**Not measured yet**" in text and "<!-- BEGIN gpu -->" in text
    measured = "<!-- BEGIN gpu -->\n## GPU\n\nDevice compared: cuda:0 (NVIDIA H200)\n<!-- END gpu -->\n"
    results.write_text("# Benchmark results\n\n" + measured)
    gpu.main([], results=results)
    assert results.read_text().endswith(measured)  # a GPU machine's figures are never replaced by "not measured"


@pytest.mark.slow
def test_a_dry_run_on_the_cpu_takes_every_step(tmp_path):
    results = tmp_path / "RESULTS.md"
    found = gpu.main(["--device", "cpu", "--quick", "--budget", "3", "--cpu-budget", "2", "--epochs", "1"],
                     results=results)
    (row,) = found
    assert row["accel"].label == "cpu" and len(row["accel"].trials) == 3 and len(row["cpu"].trials) == 2
    assert row["accel"].per_hour > 0 and row["cpu"].per_hour > 0
    # the same seed on both sides: the first candidates are the same genomes, trained alike
    assert [t.genome for t in row["cpu"].trials] == [t.genome for t in row["accel"].trials[:2]]
    device_side, cpu_side = row["same"]
    assert device_side["genome"] == cpu_side["genome"] and device_side["test_acc"] == cpu_side["test_acc"]
    text = results.read_text()
    assert "dry run on the CPU, not a GPU measurement" in text and "| digits-images | cpu |" in text
    assert gpu.MEASURED not in text  # a dry run never passes for a measurement
