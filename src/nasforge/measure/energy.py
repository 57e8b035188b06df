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
def energy_meter(power: PowerSettings, use_rapl: bool = True) -> Iterator[EnergyReading]:
    """Measure the energy of the enclosed block (package RAPL counters summed)."""
    reading = EnergyReading()
    files = _rapl_files() if use_rapl else []
    before = [int(f.read_text()) for f in files]
    start = time.perf_counter()
    try:
        yield reading
    finally:
        reading.seconds = time.perf_counter() - start
        after = [int(f.read_text()) for f in files] if files else []
        deltas = [a - b for a, b in zip(after, before)]
        if files and all(d >= 0 for d in deltas):  # a counter wrap falls back to the estimate
            reading.kwh, reading.source = sum(deltas) / 3.6e12, "measured"
        else:
            reading.kwh, reading.source = estimate_kwh(reading.seconds, power), "estimated"


def rapl_readable() -> bool:
    return bool(_rapl_files())
