"""The drawing of an ``mlp`` genome (kept out of mlp.py, which is long enough): input, one
box per hidden layer with its learning rule, the classifier."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .diagram import Stack, StackItem

if TYPE_CHECKING:
    from .mlp import MLPGenome


def mlp_diagram(g: MLPGenome) -> Stack:
    dropout = f" · dropout {g.dropout:g}" if g.dropout else ""
    items = [StackItem("input", "input features", "", {"data-role": "input"})]
    items += [StackItem("dense", f"dense {layer.units} · {layer.activation}{dropout}", layer.rule, {"data-layer": i})
              for i, layer in enumerate(g.layers)]
    items.append(StackItem("output", "linear classifier → classes", g.output_rule, {"data-role": "output"}))
    return Stack(tuple(items), label="MLP architecture")
