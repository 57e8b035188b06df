"""Export a trained network for deployment, and prove the file computes what PyTorch does.

``nasforge export RUN --format onnx|torchscript|state-dict [--trial ID | --final]`` writes
the model file, its genome (``genome.json``) and a model card (``model_card.md``) into
``OUT/export/<trial-NNNNN|final>/`` (or ``--output DIR``).

Why every export is checked: exporters can silently change a network (an op translated
differently, a layer traced in the wrong mode, a buffer not saved). So the written file is
loaded back with the runtime a user would use (onnxruntime, ``torch.jit.load``, a fresh
``genome.build`` + ``load_state_dict``) and run on real inputs, the task's test split; if
any logit differs from the PyTorch model's by more than ``TOLERANCE`` the file is deleted
and a :class:`NasforgeError` says so. The measured difference goes in the card.

A regression network learns the standardised target; the ONNX and TorchScript files hold the
step back to the target's units (``y = output * sd + mean``), so they predict the number
itself. A state dict holds the network's weights alone (the card gives mean and sd).
"""
from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__ as _nasforge_version
from .api import load_model
from .data.targets import NAMES, SPLIT_WORDS, kind_of
from .errors import NasforgeError
from .files import environment_problem, replacing, write_text
from .final import load_final, pick_trial, run_task
from .measure import onnx as onnx_measure
from .raw_inputs import is_images, write_raw_onnx
from .runs import read_task_info
from .spaces import Genome
from .train.trainer import weights

FORMATS = ("onnx", "torchscript", "state-dict")
FILE_NAMES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt", "state-dict": "model.state_dict.pt"}
TOLERANCE = 1e-4
PARITY_ROWS = 512  # test rows pushed through both models; enough to hit every code path


@dataclass
class ExportResult:
    path: Path
    max_abs_diff: float
    card_path: Path
    genome_path: Path | None = None
    format: str = "onnx"
    checked_rows: int = 0


@dataclass
class _Source:
    """What is being exported: the network and what the card says about it."""

    module: torch.nn.Module
    genome: Genome
    info: dict[str, Any]
    metrics: dict[str, Any]
    name: str  # trial-00007 or final
    label: str  # "trial 7 of the search" / "final model (train + validation)"


def _load_source(out: Path, trial: int | None, final: bool) -> _Source:
    if final:
        if trial is not None:
            raise NasforgeError("give --trial or --final, not both")
        module, genome, metrics = load_final(out)
        return _Source(module, genome, read_task_info(out), metrics, "final",
                       f"final model: trial {metrics.get('trial')}'s genome retrained on train + validation")
    record = pick_trial(out, trial)
    model = load_model(out, record.number)
    chosen = "trial" if trial is not None else ("chosen trial (the knee of the Pareto front)" if record.fitness is None
                                                else "best trial")
    return _Source(model.module.eval(), model.genome, read_task_info(out), dict(record.metrics), f"trial-{record.number:05d}",
                   f"{chosen} {record.number} of the search (trained on the training split)")


class Restored(torch.nn.Module):
    """A regression network whose output is put back in the target's units."""

    def __init__(self, module: torch.nn.Module, mean: float, std: float):
        super().__init__()
        self.module, self.mean, self.std = module, float(mean), float(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x) * self.std + self.mean


def deployable(module: torch.nn.Module, info: dict[str, Any], fmt: str) -> torch.nn.Module:
    """What goes in a ``fmt`` file: the network, for regression with its target's scale built in
    (except in a state dict, which holds weights only)."""
    scale = info.get("target_scale")
    if info.get("kind") == "regression" and scale is not None and fmt != "state-dict":
        return Restored(module, scale.mean, scale.std).eval()
    return module.eval()


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence torch.jit's deprecation warnings: the user cannot act on them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def write_model(module: torch.nn.Module, fmt: str, path: Path, example: torch.Tensor) -> None:
    """Serialise ``module`` (eval mode) in ``fmt`` to ``path``."""
    module.eval()
    if fmt == "onnx":
        path.write_bytes(onnx_measure.onnx_bytes(module, example))  # path: a temporary file (export_model)
        try:
            import onnx
        except ImportError:
            return  # onnxruntime's load in the parity check still validates the graph
        onnx.checker.check_model(str(path))
    elif fmt == "torchscript":
        try:
            with _quiet(), torch.no_grad():
                traced = torch.jit.trace(module, example[: min(8, len(example))], check_trace=False)
                traced.save(str(path))
        except Exception as exc:
            raise NasforgeError(f"the network cannot be traced to TorchScript: {type(exc).__name__}: {exc}") from exc
    elif fmt == "state-dict":
        torch.save(weights(module), path)
    else:
        raise NasforgeError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")


def load_exported(path: Path, fmt: str, genome: Genome, info: dict[str, Any]) -> Callable[[torch.Tensor], np.ndarray]:
    """Load an exported file the way a user would; returns a function from inputs to logits."""
    if fmt == "onnx":
        session = onnx_measure.onnx_session(path)
        return lambda x: onnx_measure.run_session(session, x.numpy())
    if fmt == "torchscript":
        with _quiet():
            loaded = torch.jit.load(str(path)).eval()
    else:
        loaded = genome.build(tuple(info["input_shape"]), info.get("n_outputs") or len(info["classes"]))
        loaded.load_state_dict(torch.load(path, weights_only=True))
        loaded.eval()

    def run(x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return loaded(x).numpy()

    return run


def parity_tolerance(reference: np.ndarray, module: torch.nn.Module) -> float:
    """``TOLERANCE`` for logits; for numbers in a regression target's units, relative to the
    largest output (float32 carries ~7 digits whatever the units)."""
    if isinstance(module, Restored) and reference.size:
        return TOLERANCE * max(1.0, float(np.abs(reference).max()))
    return TOLERANCE


def max_abs_diff(reference: np.ndarray, got: np.ndarray) -> float:
    """Largest absolute logit difference; infinite for a shape mismatch or a NaN."""
    if reference.shape != got.shape:
        return float("inf")
    diff = np.abs(reference.astype(np.float64) - got.astype(np.float64))
    return float("inf") if not np.all(np.isfinite(diff)) else float(diff.max(initial=0.0))


def export_model(out: str | Path, fmt: str, trial: int | None = None, final: bool = False,
                 output: str | Path | None = None, preprocessing: bool = True) -> ExportResult:
    """Write ``fmt`` (onnx, torchscript, state-dict), check parity on test inputs, write genome and card.

    ``preprocessing`` (ONNX only): the file takes raw inputs, the run's preprocessing inside
    the graph (:mod:`nasforge.raw_inputs`); False: preprocessed inputs, as the network sees them."""
    if fmt not in FORMATS:
        raise NasforgeError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    out = Path(out)
    source = _load_source(out, trial, final)
    _, task = run_task(out)
    X = task.X_test[:PARITY_ROWS] if len(task.X_test) else task.X_val[:PARITY_ROWS]
    folder = Path(output) if output is not None else out / "export" / source.name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE_NAMES[fmt]
    module = deployable(source.module, source.info, fmt)
    with torch.no_grad():
        reference = module(X).numpy()
    raw = preprocessing and fmt == "onnx" and source.info.get("preprocessor") is not None
    with replacing(path) as unchecked:  # the file appears under its name only once it passed the check
        try:
            if raw:
                reference, got = write_raw_onnx(module, source.info, task, unchecked, PARITY_ROWS)
            else:
                write_model(module, fmt, unchecked, X)
                got = load_exported(unchecked, fmt, source.genome, source.info)(X)
            diff = max_abs_diff(reference, got)
        except NasforgeError:
            raise
        except Exception as exc:
            if environment_problem(exc):
                raise
            raise NasforgeError(f"the {fmt} export failed its check (it does not validate, load or run): "
                                f"{type(exc).__name__}: {exc}") from exc
        tolerance = parity_tolerance(reference, module)
        if not diff <= tolerance:
            raise NasforgeError(
                f"export check failed: the {fmt} file's outputs differ from the PyTorch model's by up to {diff:.3g} "
                f"on {len(X)} test inputs (tolerance {tolerance:.3g}); no file was written")
    genome_path = folder / "genome.json"
    write_text(genome_path, json.dumps(source.genome.to_dict(), indent=2, sort_keys=True))
    card_path = folder / "model_card.md"
    write_text(card_path, model_card(source, fmt, path, diff, len(X), tolerance, raw))
    return ExportResult(path, diff, card_path, genome_path, fmt, len(X))


# --- the model card ---------------------------------------------------------------------

def preprocessing_summary(pre: Any) -> str:
    """One paragraph on what raw inputs must go through before the network sees them."""
    if pre is None:
        return "none recorded: the network takes the features as given"
    if hasattr(pre, "mean") and hasattr(pre, "size"):  # ImagePreprocessor
        h, w = pre.size
        stats = ", ".join(f"{m:.4g}/{s:.4g}" for m, s in zip(pre.mean, pre.std))
        return (f"images read at {h}x{w} with {len(pre.mean)} channel(s), pixels scaled to [0, 1], then each channel "
                f"standardised with the training split's mean/std ({stats})")
    parts = []
    for name, _, columns in getattr(pre, "transformers_", []):
        cols = [str(c) for c in columns] if not isinstance(columns, str) else [columns]
        if name == "remainder" or not cols:
            continue
        shown = ", ".join(cols[:8]) + (f", ... ({len(cols)} in all)" if len(cols) > 8 else "")
        if name == "numeric":
            parts.append(f"numeric columns ({shown}): missing values -> training median, then standardised with "
                         "training mean and sd")
        elif name == "categorical":
            parts.append(f"categorical columns ({shown}): one-hot with the training categories (unseen -> all zeros)")
        else:
            parts.append(f"{name}: {shown}")
    if parts:
        return "; ".join(parts) + ". Fitted on the training split only; saved in the run's task.pkl"
    return f"{type(pre).__name__} (saved in the run's task.pkl)"


def _fmt(value: Any, spec: str = ".4f", unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:{spec}}{unit}"
    return f"{value}{unit}"


def _metric_rows(m: dict[str, Any], file_bytes: int) -> list[tuple[str, str]]:
    energy_label = m.get("energy_source", "estimated")
    infer_rows = m.get("infer_rows")
    names = NAMES[kind_of(m)]
    rows = [(f"{SPLIT_WORDS[split]} {words}", _fmt(m.get(f"{split}_{key}")))
            for split in ("test", "val", "train") for key, words in (names if split == "test" else names[:1])]
    rows += [
        ("parameters", _fmt(m.get("params"))),
        ("FLOPs per sample", _fmt(m.get("flops"))),
        ("state-dict size", _fmt(m.get("size_bytes"), unit=" bytes")),
        ("exported file size", f"{file_bytes} bytes"),
        ("latency, 1 sample (PyTorch)", _fmt(m.get("latency_ms"), ".4g", " ms")),
        ("latency, batch (PyTorch)", _fmt(m.get("batch_latency_ms"), ".4g", " ms")),
        ("throughput (PyTorch)", _fmt(m.get("fps"), ".0f", " samples/s")),
    ]
    if "onnx_latency_ms" in m:
        rows += [("latency, 1 sample (onnxruntime)", _fmt(m.get("onnx_latency_ms"), ".4g", " ms")),
                 ("latency, batch (onnxruntime)", _fmt(m.get("onnx_batch_latency_ms"), ".4g", " ms")),
                 ("throughput (onnxruntime)", _fmt(m.get("onnx_fps"), ".0f", " samples/s"))]
    rows += [
        ("training time", _fmt(m.get("train_seconds"), ".2f", " s")),
        ("epochs", _fmt(m.get("epochs"))),
        (f"training energy ({energy_label})", _fmt(m.get("train_energy_kwh"), ".3g", " kWh")),
        (f"inference energy ({energy_label})", _fmt(m.get("infer_energy_kwh"), ".3g", " kWh")
         + (f" for {infer_rows} samples" if infer_rows else " for the validation split")),
    ]
    return rows


_LOADING = {
    "onnx": ("import onnxruntime as ort\n"
             "session = ort.InferenceSession('model.onnx')\n"
             "logits = session.run(['logits'], {'input': x.astype('float32')})[0]"),
    "torchscript": "import torch\nmodel = torch.jit.load('model.torchscript.pt').eval()\nlogits = model(x)",
    "state-dict": ("import json, torch, nasforge\n"
                   "genome = nasforge.spaces.genome_from_dict(json.load(open('genome.json')))\n"
                   "model = genome.build(INPUT_SHAPE, N_CLASSES)\n"
                   "model.load_state_dict(torch.load('model.state_dict.pt', weights_only=True))\n"
                   "logits = model.eval()(x)"),
}


_RAW_LOADING = {
    "table": ("import numpy as np, onnxruntime as ort, pandas as pd\n"
              "session = ort.InferenceSession('model.onnx')\n"
              "rows = pd.read_csv('new_rows.csv')  # the raw columns, as in the training CSV\n"
              "feed = {i.name: rows[[i.name]].to_numpy(np.float32) if i.type == 'tensor(float)'\n"
              "        else rows[[i.name]].fillna('').astype(str).to_numpy() for i in session.get_inputs()}\n"
              "outputs = session.run(None, feed)[0]"),
    "images": ("import numpy as np, onnxruntime as ort\n"
               "session = ort.InferenceSession('model.onnx')\n"
               "outputs = session.run(None, {'input': images})[0]  # images: uint8 array [N, H, W, C]"),
}


def model_card(source: _Source, fmt: str, path: Path, diff: float, rows: int, tolerance: float = TOLERANCE,
               raw: bool = False) -> str:
    """The markdown card: data, network, metrics, energy label, learning rules, how to load it."""
    info, m, genome = source.info, source.metrics, source.genome
    classes = [str(c) for c in info["classes"]]
    scale = info.get("target_scale")
    if info.get("kind") == "regression":
        restore = (f"outputs are in the target's units (the network learnt the target standardised with the "
                   f"training mean {scale.mean:.6g} and sd {scale.std:.6g}; " if scale else "(")
        restore += ("a state dict holds the network alone: multiply its output by the sd and add the mean)"
                    if fmt == "state-dict" else "the file restores the units)")
        target = f"- target: a number (regression), output shape [N, 1]; {restore}"
    else:
        target = (f"- classes ({len(classes)}; output index i is class i): {', '.join(classes[:50])}"
                  + (" ..." if len(classes) > 50 else ""))
    shape = ", ".join(str(int(s)) for s in info["input_shape"])
    rules = genome.rules() if hasattr(genome, "rules") else None
    rule_text = (", ".join(rules) + " (per learnable layer, output layer last; rules change training only, "
                 "inference is the plain layer)") if rules else "backprop (the family has no learning-rule gene)"
    loading = _LOADING[fmt].replace("INPUT_SHAPE", f"({shape},)" if len(info["input_shape"]) == 1 else f"({shape})")
    inputs = f"float32 tensor of shape [N, {shape}], preprocessed as below"
    if raw:
        pre = info.get("preprocessor")
        loading = _RAW_LOADING["images" if is_images(pre) else "table"]
        inputs = (f"raw images: uint8 tensor `input` of shape [N, {pre.size[0]}, {pre.size[1]}, {len(pre.mean)}] "
                  "(height, width, channels, as read from a file at that size); the graph scales and standardises "
                  "them" if is_images(pre) else
                  "raw columns: one input per column, named as the column, shape [N, 1]: float32 for numeric columns "
                  "(NaN = missing), string for text columns (\"\" = missing); the graph fills, scales and encodes them")
    loading = loading.replace("N_CLASSES", str(info.get("n_outputs", len(classes))))
    lines = [
        f"# Model card: {info.get('name', 'nasforge model')} / {source.name}",
        "",
        f"Exported by nasforge {_nasforge_version} as **{fmt}**: `{path.name}`. Source: {source.label}.",
        f"Checked at export: largest absolute output difference from the PyTorch model on {rows} test inputs"
        + (" (given raw to the file, preprocessed by nasforge for PyTorch) " if raw else " ")
        + f"= {diff:.2e} (tolerance {tolerance:.3g}).",
        "",
        "## Data",
        "",
        f"- dataset: {info.get('name', 'n/a')}",
        target,
        f"- input: {inputs}",
        f"- preprocessing: {preprocessing_summary(info.get('preprocessor'))}",
        "",
        "## Network",
        "",
        f"- genome: `{genome.summary()}` (full genome in `genome.json`)",
        f"- learning rules: {rule_text}",
        "",
        "## Metrics",
        "",
        "Measured on the machine that ran the search (single thread). Energy is measured from RAPL counters "
        "where readable, otherwise estimated with LEMONADE's Eq. 4; the label says which.",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in _metric_rows(m, path.stat().st_size)),
        "",
        "## Loading",
        "",
        "```python",
        loading,
        "```",
        "",
    ]
    return "\n".join(lines)
