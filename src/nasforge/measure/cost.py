"""Size and speed of a model, measured on this machine."""
from __future__ import annotations

import io
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: torch.nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one single-sample forward pass (torch's counter: a multiply-add is 2 FLOPs)."""
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, *input_shape, device=next(model.parameters(), torch.zeros(())).device))
    return int(counter.get_total_flops())


def model_size_bytes(model: torch.nn.Module) -> int:
    """Bytes of the serialised state dict: what an export of the weights costs on disk."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


@torch.inference_mode()
def latency_seconds(model: torch.nn.Module, x: torch.Tensor, warmup: int = 5, repeats: int = 30) -> float:
    """Median wall time of one forward pass on ``x`` after warm-up runs; on a GPU, timed by
    CUDA events around each pass after the warm-up has finished (kernels run asynchronously,
    so a host clock would time the launch, not the work)."""
    model.eval()
    for _ in range(warmup):
        model(x)
    if x.device.type == "cuda":
        return statistics.median(_cuda_times(model, x, repeats))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _cuda_times(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> list[float]:
    with torch.cuda.device(x.device):  # events record on the current stream of ``x``'s GPU
        torch.cuda.synchronize()
        pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(repeats)]
        for start, end in pairs:
            start.record()
            model(x)
            end.record()
        torch.cuda.synchronize()
    return [start.elapsed_time(end) / 1e3 for start, end in pairs]
