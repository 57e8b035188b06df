"""A model's speed in onnxruntime, the runtime most edge deployments use.

PyTorch eager latency says little about how fast a network runs once exported: the ONNX
graph is optimised (constant folding, fused ops) and runs without Python in the loop. So
``--measure onnx`` exports the network and times it in an onnxruntime session restricted
to one thread, the same budget the PyTorch figures get (``threads = 1``), so the two are
comparable and two searches on a busy machine do not fight over cores.

The export helpers here are also what ``nasforge export --format onnx`` writes and checks.
"""
from __future__ import annotations

import io
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import NasforgeError

INPUT_NAME, OUTPUT_NAME = "input", "logits"


def _require_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise NasforgeError(
            "ONNX export and measurement need onnx and onnxruntime: pip install onnx onnxruntime"
        ) from None
    return onnxruntime


def onnx_bytes(model: torch.nn.Module, sample_input: torch.Tensor) -> bytes:
    """The model as an ONNX graph with a dynamic batch axis (input ``input``, output ``logits``).

    The TorchScript-based exporter (``dynamo=False``) is used on purpose: it needs no
    extra package (the dynamo exporter needs ``onnxscript``) and handles every layer of
    nasforge's genome families. Learning-rule layers run their plain op in eval mode, so
    the exported graph is an ordinary Linear/Conv graph. Its deprecation warning is
    silenced here because users cannot act on it.
    """
    model.eval()
    buffer = io.BytesIO()
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            torch.onnx.export(model, (sample_input[:1],), buffer, dynamo=False, input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], dynamic_axes=axes)
        except Exception as exc:  # an op without an ONNX translation
            raise NasforgeError(f"the network cannot be exported to ONNX: {type(exc).__name__}: {exc}") from exc
    return buffer.getvalue()


def onnx_session(model_source: bytes | str | Path, threads: int = 1) -> Any:
    """An onnxruntime CPU session with ``threads`` intra-op threads and no inter-op parallelism."""
    ort = _require_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: warnings about unused initialisers are noise here
    source = str(model_source) if isinstance(model_source, Path) else model_source
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])


def run_session(session: Any, x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Logits for a batch, as float32 numpy."""
    array = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    return session.run([OUTPUT_NAME], {INPUT_NAME: array})[0]


def session_latency_seconds(session: Any, x: np.ndarray, warmup: int = 5, repeats: int = 30) -> float:
    """Median wall time of one ``session.run`` after warm-up runs (the PyTorch figures' protocol)."""
    feed = {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)}
    for _ in range(warmup):
        session.run(None, feed)
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def onnx_latency(model: torch.nn.Module, sample_input: torch.Tensor, warmup: int = 5, repeats: int = 30) -> dict[str, float]:
    """Single-sample and batch latency (ms) and samples per second of ``model`` in onnxruntime.

    ``sample_input`` is the batch timed for ``batch_latency_ms`` and ``fps`` (the evaluator
    passes its ``measure.batch_size`` validation rows); its first row gives ``latency_ms``.
    """
    if len(sample_input) == 0:
        raise ValueError("onnx_latency needs at least one sample input")
    session = onnx_session(onnx_bytes(model, sample_input))
    x = sample_input.detach().cpu().numpy().astype(np.float32)
    single = session_latency_seconds(session, x[:1], warmup, repeats)
    batch = session_latency_seconds(session, x, warmup, repeats)
    return {
        "latency_ms": single * 1e3,
        "batch_latency_ms": batch * 1e3,
        "fps": len(x) / batch if batch > 0 else float("inf"),
    }
