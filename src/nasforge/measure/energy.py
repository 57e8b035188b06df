"""Energy of training and inference: measured by RAPL where readable, else estimated.

The estimate is LEMONADE's Eq. 4: ``kWh = 1.58 * t_hours * (p_cpu + p_ram + g * p_gpu) / 1000``
(1.58 is the data-centre power usage effectiveness the paper uses, powers in watts).
Every figure carries a label, "measured" or "estimated", so nobody mistakes one for the other.
"""
from __future__ import annotations

import glob
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

RAPL_GLOB = "/sys/class/powercap/intel-rapl:*/energy_uj"
PUE = 1.58


class PowerSettings(BaseModel):
    """Power draw assumed by the Eq. 4 estimate (watts); set them for your hardware."""

    model_config = ConfigDict(extra="forbid")
    cpu_watts: float = Field(default=15.0, ge=0, le=10000)
    ram_watts: float = Field(default=3.0, ge=0, le=10000)
    gpu_watts: float = Field(default=0.0, ge=0, le=10000)
    gpus: int = Field(default=0, ge=0, le=64)


def estimate_kwh(seconds: float, power: PowerSettings) -> float:
    """LEMONADE Eq. 4."""
    watts = power.cpu_watts + power.ram_watts + power.gpus * power.gpu_watts
    return PUE * (seconds / 3600.0) * watts / 1000.0


def _rapl_files() -> list[Path]:
    files = []
    for name in sorted(glob.glob(RAPL_GLOB)):
        path = Path(name)
        if not re.fullmatch(r"intel-rapl:\d+", path.parent.name):
            continue  # sub-zones (core, dram) are inside their package's count already
        try:
            int(path.read_text())
            files.append(path)
        except (OSError, ValueError):
            return []
    return files


@dataclass
class EnergyReading:
    kwh: float = 0.0
    source: str = "estimated"
    seconds: float = 0.0


@contextmanager
def energy_meter(power: PowerSettings, use_rapl: bool = True, gpu: Any = None) -> Iterator[EnergyReading]:
    """Measure the energy of the enclosed block (package RAPL counters summed). ``gpu``: a CUDA
    torch device the block runs on; its energy counter (NVML) is read too, after the GPU has
    finished the block's work, and where it cannot be read the GPU's share is estimated with
    ``gpu_watts``. The label says which part was measured."""
    reading = EnergyReading()
    files = _rapl_files() if use_rapl else []
    before = [int(f.read_text()) for f in files]
    gpu_before = gpu_energy_mj(gpu) if gpu is not None else None
    start = time.perf_counter()
    try:
        yield reading
    finally:
        if gpu is not None:
            import torch

            torch.cuda.synchronize(gpu)
        reading.seconds = time.perf_counter() - start
        after = [int(f.read_text()) for f in files] if files else []
        deltas = [a - b for a, b in zip(after, before)]
        if files and all(d >= 0 for d in deltas):  # a counter wrap falls back to the estimate
            cpu_kwh, cpu_measured = sum(deltas) / 3.6e12, True
        else:
            host = power if gpu is None else power.model_copy(update={"gpus": 0})  # the GPU is counted below
            cpu_kwh, cpu_measured = estimate_kwh(reading.seconds, host), False
        if gpu is None:  # (no return in a finally block: it would swallow the block's exception)
            reading.kwh, reading.source = cpu_kwh, "measured" if cpu_measured else "estimated"
        else:
            reading.kwh, reading.source = _with_gpu(reading.seconds, power, gpu, gpu_before, cpu_kwh, cpu_measured)


def _with_gpu(seconds: float, power: PowerSettings, gpu: Any, before: int | None, cpu_kwh: float,
              cpu_measured: bool) -> tuple[float, str]:
    """The block's energy with the GPU's share (measured from ``before``, or estimated), and its label."""
    after = gpu_energy_mj(gpu) if before is not None else None
    if before is not None and after is not None and after >= before:
        gpu_kwh, gpu_measured = (after - before) / 3.6e9, True
    else:
        gpu_kwh, gpu_measured = PUE * (seconds / 3600.0) * power.gpu_watts / 1000.0, False
    source = ("measured" if cpu_measured and gpu_measured else "estimated" if not (cpu_measured or gpu_measured)
              else "measured (GPU), estimated (CPU)" if gpu_measured else "measured (CPU), estimated (GPU)")
    return cpu_kwh + gpu_kwh, source


_NVML: dict[str, Any] = {}  # device label -> NVML handle (None: not readable)


def gpu_energy_mj(device: Any) -> int | None:
    """The GPU's energy counter since its driver loaded (millijoules, NVML, Volta or newer),
    or None where it cannot be read (no nvidia-ml-py, an older GPU, no permission)."""
    key = str(device)
    if key not in _NVML:
        _NVML[key] = _nvml_handle(device)
    handle = _NVML[key]
    if handle is None:
        return None
    import pynvml

    try:
        return int(pynvml.nvmlDeviceGetTotalEnergyConsumption(handle))
    except pynvml.NVMLError:
        _NVML[key] = None
        return None


def _nvml_handle(device: Any) -> Any:
    """NVML's handle of a CUDA device, found by its PCI bus (CUDA and NVML may number GPUs
    differently, and CUDA_VISIBLE_DEVICES renumbers them)."""
    try:
        import pynvml
        import torch

        pynvml.nvmlInit()
        props = torch.cuda.get_device_properties(device)
        bus = f"{props.pci_domain_id:08x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}.0"
        handle = pynvml.nvmlDeviceGetHandleByPciBusId(bus)
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        return handle
    except Exception:  # noqa: BLE001 - any failure means: not readable here, estimate instead
        return None


def rapl_readable() -> bool:
    return bool(_rapl_files())
