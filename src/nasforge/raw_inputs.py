"""Exported models that take raw inputs: the run's preprocessing joined in front of the network.

A network searched on a table learns from preprocessed numbers (median-filled, standardised
numeric columns; one-hot text columns), a network searched on images from standardised
float pixels. A deployed model should take what the user has: the table's columns, or image
pixels as files give them. So ``nasforge export --format onnx`` (unless
``--no-preprocessing``) writes one graph that does both steps:

- **tables**: one input per raw column, named as the column, shape ``[N, 1]``: ``float32``
  for a numeric column (NaN = missing: the training median), ``string`` for a text column
  (``""`` = missing, as an empty CSV cell; a category not seen in training encodes as all
  zeros). The graph is built here from the fitted scikit-learn preprocessor's numbers with
  plain ONNX ops (``IsNaN``/``Where``, ``Sub``/``Div``, ``ai.onnx.ml.OneHotEncoder``):
  skl2onnx cannot convert a string imputer that fills NaN, which is what nasforge fits.
- **images**: one input ``input``, ``uint8`` ``[N, H, W, C]`` at the training size (as
  Pillow or OpenCV read a file; resizing stays outside the graph), scaled to [0, 1] and
  standardised per channel inside the graph.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .errors import NasforgeError
from .measure.onnx import INPUT_NAME

MISSING_TEXT = "<missing>"  # what the tabular preprocessor fills a missing text value with
ML_DOMAIN, ML_OPSET = "ai.onnx.ml", 3


def is_tabular(pre: Any) -> bool:
    return hasattr(pre, "transformers_")


def is_images(pre: Any) -> bool:
    return hasattr(pre, "mean") and hasattr(pre, "size")


def columns(pre: Any) -> list[tuple[str, str]]:
    """The raw columns a tabular preprocessor reads, in its output order: (name, "numeric"|"text")."""
    out = []
    for name, _, cols in pre.transformers_:
        if name in ("numeric", "categorical"):
            out += [(str(c), "numeric" if name == "numeric" else "text") for c in cols]
    return out


class RawImages(torch.nn.Module):
    """uint8 images ``[N, H, W, C]`` -> [0, 1] -> standardised ``[N, C, H, W]`` -> the network."""

    def __init__(self, module: torch.nn.Module, mean: Any, std: Any):
        super().__init__()
        self.module = module
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.permute(0, 3, 1, 2).to(torch.float32) / 255.0
        return self.module((x - self.mean) / self.std)


def raw_images(X: np.ndarray, pre: Any) -> np.ndarray:
    """Standardised ``[N, C, H, W]`` float images back to the uint8 ``[N, H, W, C]`` pixels a file
    would hold (rounded: the test inputs of the export check)."""
    mean = np.asarray(pre.mean, dtype=np.float64)[:, None, None]
    std = np.asarray(pre.std, dtype=np.float64)[:, None, None]
    unit = np.asarray(X, dtype=np.float64) * std + mean
    return np.clip(np.rint(unit * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def tabular_feed(frame: Any, pre: Any) -> dict[str, np.ndarray]:
    """The ONNX inputs for the raw rows of a DataFrame: one ``[N, 1]`` array per column."""
    feed = {}
    for name, kind in columns(pre):
        if name not in frame.columns:
            raise NasforgeError(f"the rows lack column {name!r}; the model reads {', '.join(c for c, _ in columns(pre))}")
        values = frame[name]
        if kind == "numeric":
            feed[name] = values.to_numpy(dtype=np.float32, na_value=np.nan).reshape(-1, 1)
        else:
            feed[name] = np.array(["" if v is None or v != v else str(v) for v in values], dtype=object).reshape(-1, 1)
    return feed


def tabular_graph(pre: Any, opset: int, ir_version: int) -> Any:
    """An ONNX model from the raw columns to the preprocessed features (output ``input``, the
    network's input), numbers taken from the fitted preprocessor."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, inputs, parts, consts = [], [], [], []

    def const(name: str, value: np.ndarray) -> str:
        consts.append(numpy_helper.from_array(value, name))
        return name

    for name, _, cols in pre.transformers_:
        if name == "numeric" and len(cols):
            imputer, scaler = pre.named_transformers_["numeric"].steps[0][1], pre.named_transformers_["numeric"].steps[1][1]
            for k, col in enumerate(cols):
                x = f"n{k}"
                inputs.append(helper.make_tensor_value_info(str(col), TensorProto.FLOAT, [None, 1]))
                nodes += [
                    helper.make_node("IsNaN", [str(col)], [f"{x}_nan"]),
                    helper.make_node("Where", [f"{x}_nan", const(f"{x}_fill", np.array([[imputer.statistics_[k]]], np.float32)),
                                               str(col)], [f"{x}_filled"]),
                    helper.make_node("Sub", [f"{x}_filled", const(f"{x}_mean", np.array([[scaler.mean_[k]]], np.float32))],
                                     [f"{x}_centred"]),
                    helper.make_node("Div", [f"{x}_centred", const(f"{x}_scale", np.array([[scaler.scale_[k]]], np.float32))],
                                     [x]),
                ]
                parts.append(x)
        elif name == "categorical" and len(cols):
            encoder = pre.named_transformers_["categorical"].steps[1][1]
            for k, col in enumerate(cols):
                x = f"c{k}"
                cats = [str(c) for c in encoder.categories_[k]]
                inputs.append(helper.make_tensor_value_info(str(col), TensorProto.STRING, [None, 1]))
                # "" (an empty cell) counts as missing: one more one-hot column, folded into "<missing>"'s
                known = cats + ([""] if MISSING_TEXT in cats and "" not in cats else [])
                fold = np.eye(len(known), len(cats), dtype=np.float32)
                if len(known) > len(cats):
                    fold[-1, cats.index(MISSING_TEXT)] = 1.0
                nodes += [
                    helper.make_node("OneHotEncoder", [str(col)], [f"{x}_hot"], domain=ML_DOMAIN, cats_strings=known,
                                     zeros=1),
                    helper.make_node("Reshape", [f"{x}_hot", const(f"{x}_shape", np.array([-1, len(known)], np.int64))],
                                     [f"{x}_flat"]),
                    helper.make_node("MatMul", [f"{x}_flat", const(f"{x}_fold", fold)], [x]),
                ]
                parts.append(x)
    if not parts:
        raise NasforgeError("the run's preprocessor reads no columns; export with --no-preprocessing")
    nodes.append(helper.make_node("Concat", parts, [INPUT_NAME], axis=1))
    width = sum(1 for _ in pre.get_feature_names_out())
    graph = helper.make_graph(nodes, "preprocessing", inputs,
                              [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [None, width])], consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset),
                                                    helper.make_opsetid(ML_DOMAIN, ML_OPSET)])
    model.ir_version = ir_version
    return model


def join_tabular(network: bytes, pre: Any) -> bytes:
    """The network's ONNX graph with the tabular preprocessing in front (inputs: raw columns)."""
    import onnx
    from onnx import compose

    net = onnx.load_from_string(network)
    opset = next(o.version for o in net.opset_import if o.domain in ("", "ai.onnx"))
    front = tabular_graph(pre, opset, net.ir_version)
    net = compose.add_prefix(net, "net/", rename_inputs=False, rename_outputs=False)  # no clash with ours
    merged = compose.merge_models(front, net, io_map=[(INPUT_NAME, INPUT_NAME)])
    onnx.checker.check_model(merged)
    return merged.SerializeToString()


def write_raw_onnx(module: torch.nn.Module, info: dict[str, Any], task: Any, path: Any,
                   rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Write ``module`` with the run's preprocessing in front to ``path``; return the outputs
    of PyTorch on the preprocessed test inputs and of the written file on the raw ones (the
    export check)."""
    from .measure import onnx as onnx_measure

    pre = info.get("preprocessor")
    if is_tabular(pre):
        if task.raw_test is None or not len(task.raw_test):
            raise NasforgeError("the run's raw test rows are not at hand to check the export; use --no-preprocessing")
        frame = task.raw_test.iloc[:rows]
        with torch.no_grad():
            reference = module(torch.as_tensor(np.asarray(pre.transform(frame), dtype=np.float32))).numpy()
        path.write_bytes(join_tabular(onnx_measure.onnx_bytes(module, task.X_test[:rows]), pre))
        feed = tabular_feed(frame, pre)
    elif is_images(pre):
        raw = torch.as_tensor(raw_images(task.X_test[:rows].numpy(), pre))
        wrapped = RawImages(module, pre.mean, pre.std).eval()
        with torch.no_grad():
            reference = wrapped(raw).numpy()
        path.write_bytes(onnx_measure.onnx_bytes(wrapped, raw))
        feed = {INPUT_NAME: raw.numpy()}
    else:
        raise NasforgeError("the run recorded no preprocessing to put in the graph; use --no-preprocessing")
    session = onnx_measure.onnx_session(path)
    return reference, session.run(None, feed)[0]
