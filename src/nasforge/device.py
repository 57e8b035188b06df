"""Where candidates train and are measured: the ``[device]`` table and what it resolves to.

``--device auto`` takes a CUDA device when torch sees one, else the CPU; ``cuda`` is the
first visible GPU, ``cuda:N`` the N-th. The device is resolved in the process that trains
(a worker process may be given its own GPU), never stored in a run's identity: a run searched
on a GPU resumes on the CPU and back, each trial's metrics naming the device that trained and
timed it (``device``). ``--precision bf16|fp16`` trains and evaluates under autocast (fp16
with a gradient scaler); weights, optimizer state and saved files stay fp32.

Importing this module does not import torch (the CLI starts without it).
"""
from __future__ import annotations

import re
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .errors import NasforgeError
from .flags import flag

if TYPE_CHECKING:
    import torch

Precision = Literal["fp32", "bf16", "fp16"]
DEVICE_PATTERN = r"^(auto|cpu|cuda(:\d{1,2})?)$"


class DeviceSettings(BaseModel):
    """Where candidates train and are measured. Not part of a run's identity: a run resumes on
    another device (each trial's metrics name the device it was trained and timed on)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="auto", pattern=DEVICE_PATTERN, json_schema_extra=flag("--device"), description=(
        "auto (a CUDA GPU when torch sees one, else the CPU), cpu, cuda or cuda:N"))
    precision: Precision = Field(default="fp32", json_schema_extra=flag("--precision"), description=(
        "fp32 (default), bf16 or fp16: training and evaluation under autocast in that type (fp16 with a gradient "
        "scaler); weights stay fp32"))
    measure_on: Literal["same", "cpu"] = Field(default="same", json_schema_extra=flag("--measure-on"), description=(
        "where latency, FPS and inference energy are timed: same (the training device, default) or cpu "
        "(for deployment on a CPU after a GPU search)"))
    trials_per_gpu: int = Field(default=1, ge=1, le=64, json_schema_extra=flag("--trials-per-gpu"), description=(
        "candidates trained at once on each GPU, each in its own worker process (small models leave a GPU "
        "idle most of the time); with a CUDA device only"))


def cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve(name: str, worker: int | None = None) -> torch.device:
    """The torch device ``name`` means here; ``worker``: the index of a worker process that
    shares the GPUs round-robin (``cuda`` and ``auto`` then mean GPU ``worker % count``).
    Raises a one-line NasforgeError when CUDA is asked for and absent."""
    import torch

    if not re.fullmatch(DEVICE_PATTERN, name):
        raise NasforgeError(f"unknown device {name!r}; choose auto, cpu, cuda or cuda:N")
    count = cuda_count()
    if name == "cpu" or (name == "auto" and count == 0):
        return torch.device("cpu")
    if count == 0:
        raise NasforgeError(f"--device {name}: torch sees no CUDA device on this machine "
                            f"(torch {torch.__version__}, {'a CPU-only build' if torch.version.cuda is None else 'CUDA ' + torch.version.cuda}); "
                            "use --device cpu or auto")
    if ":" in name:
        index = int(name.split(":")[1])
        if index >= count:
            raise NasforgeError(f"--device {name}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
        return torch.device("cuda", index)
    return torch.device("cuda", 0 if worker is None else worker % count)


def describe(device: torch.device) -> str:
    """``cpu``, or ``cuda:0 (NVIDIA H200)``: how figures measured there are labelled."""
    if device.type != "cuda":
        return device.type
    import torch

    return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"


def gpus_for(name: str) -> int:
    """How many GPUs a run on ``name`` spreads its workers over (0: none)."""
    count = cuda_count()
    if name == "cpu" or count == 0:
        return 0
    return 1 if ":" in name else count


def check(settings: DeviceSettings, workers: int = 1, ray_gpus: float | None = None) -> str:
    """Before a run starts: the device exists here and the settings fit it; returns the run
    header's description of where candidates train. One-line NasforgeError otherwise.
    ``ray_gpus``: the run's evaluations are Ray tasks asking for that many GPUs each; their
    devices are the tasks' (a task sees only the GPUs it asked for), not this machine's."""
    if ray_gpus is not None:
        if ray_gpus == 0 and settings.name.startswith("cuda"):
            raise NasforgeError(f"--device {settings.name} with Ray needs --gpus-per-task (a Ray task that asks for "
                                "no GPU sees none)")
        if settings.trials_per_gpu > 1:
            raise NasforgeError("with Ray, several candidates share a GPU by a fractional --gpus-per-task (e.g. "
                                "0.25), not --trials-per-gpu")
        where = f"Ray tasks with {ray_gpus:g} GPU each" if ray_gpus else "Ray tasks on CPUs"
        return f"{where}, {settings.precision}"
    device = resolve(settings.name)
    check_precision(device, settings.precision)
    gpus = gpus_for(settings.name)
    if settings.trials_per_gpu > 1:
        if gpus == 0:
            raise NasforgeError(f"--trials-per-gpu {settings.trials_per_gpu} needs a CUDA device, and this run "
                                f"trains on {device.type}")
        if workers > 1:
            raise NasforgeError("give --workers or --trials-per-gpu, not both (--trials-per-gpu K starts K workers "
                                "per GPU)")
    where = describe(device) if gpus <= 1 else f"{gpus} GPUs ({describe(device)}, ...)"
    if settings.trials_per_gpu > 1:
        where += f", {settings.trials_per_gpu} candidates at once on each"
    if settings.measure_on == "cpu" and device.type == "cuda":
        where += "; speed timed on the CPU"
    return f"{where}, {settings.precision}"


def check_precision(device: torch.device, precision: str) -> None:
    """One line when the device cannot run ``precision`` (bf16 on a GPU without it)."""
    import torch

    if device.type == "cuda" and precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise NasforgeError(f"--precision bf16: {describe(device)} does not support bfloat16; use fp16 or fp32")


def autocast(device: torch.device, precision: str) -> Any:
    """The autocast context of ``precision`` on ``device`` (a no-op for fp32)."""
    if precision == "fp32":
        return nullcontext()
    import torch

    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def grad_scaler(device: torch.device, precision: str) -> Any:
    """A gradient scaler for fp16 (small gradients would underflow to zero), else None."""
    if precision != "fp16":
        return None
    import torch

    return torch.amp.GradScaler(device.type)


__all__ = ["DeviceSettings", "Precision", "autocast", "check", "check_precision", "cuda_count", "describe", "grad_scaler",
           "gpus_for", "resolve"]
