"""The ``net`` genome family: CNNs (or MLPs) with skip connections, edited by LEMONADE.

A genome is a sequence of layers (``conv`` = conv + optional batch norm + activation,
``pool``, ``dropout``, ``global_pool``, ``dense``), skip connections ``{"from": i, "to": j}``
(the output of layer i is added to the output of layer j, through a bias-free 1x1 conv or
Linear when channels/units differ), a weight initialiser, the learning rule of the
implicit classifier ``Linear(n_classes)`` and ``regularization``: the weight-decay
coefficient, exposed as ``genome.weight_decay``, which the trainer should use. A dense
layer (or the classifier) after an image tensor flattens it implicitly.

The search space, :class:`~nasforge.spaces.net_space.NetSpace`, has LEMONADE's
instructions (SPEC §4) as its mutation operators, one method each
(:mod:`nasforge.spaces.net_instructions`); :data:`INSTRUCTION_OPERATORS` maps the
instruction codes to their names and :data:`INSTRUCTION_CHECKS` tells whether an edit did
what a code asks. This module does
not import the space (the space imports the genome), and the layers and shape rules come
from :mod:`nasforge.spaces.net_layers`, so nothing here needs torch until ``build``.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from .base import Genome
from .diagram import Stack, StackItem
from .net_layers import (
    ConvLayer,
    DenseLayer,
    DropoutLayer,
    GlobalPoolLayer,
    Layer,
    PoolLayer,
    Shape,
    Skip,
    check_skips,
    count_params,
    trace_shapes,
)  # fmt: skip
from .vocabulary import Init, Rule

if TYPE_CHECKING:
    import torch

REGULARIZATIONS: tuple[float, ...] = (0.0, 1e-5, 1e-4, 1e-3, 1e-2)
INSTRUCTION_OPERATORS: dict[str, str] = {
    "ACL": "add_conv", "RCL": "remove_conv", "ASC": "add_skip", "RSC": "remove_skip",
    "ADL": "add_dense", "RDL": "remove_dense", "AD": "add_dropout", "RD": "remove_dropout",
    "AMK": "more_kernels", "RK": "fewer_kernels", "AMN": "more_neurons", "RN": "fewer_neurons",
    "AR": "add_regularization", "RR": "reduce_regularization", "AWI": "change_init",
}  # fmt: skip
SCHEMA_DESCRIPTION = (
    "A neural network: layers run in order; a dense layer after an image tensor flattens it; "
    "global_pool collapses HxW and flattens; the classifier Linear(n_classes) is implicit. "
    "Each skip adds the output of layer `from` to the output of layer `to` (0-based, from < to, "
    "same spatial size, both before or both after the flatten); differing channels are projected. "
    "regularization is the weight decay."
)


def _total(g: NetGenome, kind: str, attr: str) -> float:
    return sum(getattr(layer, attr) for layer in g.layers if layer.kind == kind)


def _mean(g: NetGenome, kind: str, attr: str) -> float:
    """Per layer on average, so that adding a layer does not by itself count as widening."""
    n = g.count(kind)
    return _total(g, kind, attr) / n if n else 0.0


def _dropout(g: NetGenome) -> tuple[int, float]:
    return g.count("dropout"), round(_total(g, "dropout", "rate"), 9)


def _layer_text(layer: Layer) -> str:
    """A layer as the report's drawing names it, e.g. ``conv 16 · 3x3 · stride 2 · BN · relu``."""
    if isinstance(layer, ConvLayer):
        k = layer.kernel
        extras = [f"{k}x{k}"] + (["stride 2"] if layer.stride == 2 else []) + (["BN"] if layer.batch_norm else [])
        return f"conv {layer.channels} · {' · '.join(extras)} · {layer.activation}"
    if isinstance(layer, DenseLayer):
        return f"dense {layer.units} · {layer.activation}"
    if isinstance(layer, PoolLayer):
        return f"{layer.op} pool 2x2"
    if isinstance(layer, GlobalPoolLayer):
        return f"global {layer.op} pool"
    if isinstance(layer, DropoutLayer):
        return f"dropout {layer.rate}"
    return json.dumps(layer.model_dump(mode="json"), sort_keys=True)


# The table of nasforge.strategies.expert.compliance, net column.
INSTRUCTION_CHECKS: dict[str, Callable[[NetGenome, NetGenome], bool]] = {
    "ACL": lambda a, b: b.count("conv") > a.count("conv"),
    "RCL": lambda a, b: b.count("conv") < a.count("conv"),
    "ASC": lambda a, b: len(b.skips) > len(a.skips),
    "RSC": lambda a, b: len(b.skips) < len(a.skips),
    "ADL": lambda a, b: b.count("dense") > a.count("dense"),
    "RDL": lambda a, b: b.count("dense") < a.count("dense"),
    "AD": lambda a, b: _dropout(b) > _dropout(a),  # more layers, or as many with higher rates
    "RD": lambda a, b: _dropout(b) < _dropout(a),
    "AMK": lambda a, b: _mean(b, "conv", "channels") > _mean(a, "conv", "channels"),
    "RK": lambda a, b: _mean(b, "conv", "channels") < _mean(a, "conv", "channels"),
    "AMN": lambda a, b: _mean(b, "dense", "units") > _mean(a, "dense", "units"),
    "RN": lambda a, b: _mean(b, "dense", "units") < _mean(a, "dense", "units"),
    "AR": lambda a, b: b.regularization > a.regularization,
    "RR": lambda a, b: b.regularization < a.regularization,
    "AWI": lambda a, b: b.init != a.init,
}  # fmt: skip


class NetGenome(Genome):
    """Layers in order, skips between them, init, output rule and weight decay (see module doc)."""

    family = "net"
    instruction_checks = INSTRUCTION_CHECKS
    layers: tuple[Layer, ...] = Field(default=(), max_length=64)
    skips: tuple[Skip, ...] = Field(default=(), max_length=32)
    init: Init = "default"
    regularization: float = Field(default=0.0, json_schema_extra={"enum": list(REGULARIZATIONS)})
    output_rule: Rule = "backprop"

    @field_validator("regularization")
    @classmethod
    def _on_grid(cls, value: float) -> float:
        """A grid, not a range: AR/RR step along it, and an enum is what an LLM grammar obeys."""
        if value not in REGULARIZATIONS:
            raise ValueError(f"must be one of {list(REGULARIZATIONS)}")
        return value

    @field_validator("skips")
    @classmethod
    def _sorted(cls, skips: tuple[Skip, ...]) -> tuple[Skip, ...]:
        """Skip order does not change the network, so it must not change the id either."""
        return tuple(sorted(skips, key=lambda s: (s.src, s.dst)))

    @property
    def weight_decay(self) -> float:
        """The weight decay the trainer should use for this genome (``regularization``)."""
        return self.regularization

    def count(self, kind: str) -> int:
        return sum(layer.kind == kind for layer in self.layers)

    def shapes(self, input_shape: tuple[int, ...]) -> list[Shape]:
        """Output shape of every layer; raises InvalidGenome with the reason when impossible."""
        shapes = trace_shapes(self.layers, input_shape)
        check_skips(self.skips, shapes)
        return shapes

    def build(self, input_shape: tuple[int, ...], n_classes: int) -> torch.nn.Module:
        from ..nets.net_model import build_model

        return build_model(self.layers, self.skips, input_shape, n_classes, self.init, self.output_rule)

    def n_params(self, input_shape: tuple[int, ...], n_classes: int) -> int:
        return count_params(self.layers, self.skips, input_shape, n_classes)

    def rules(self) -> list[str]:
        return [layer.rule for layer in self.layers if isinstance(layer, (ConvLayer, DenseLayer))] + [self.output_rule]

    def summary(self) -> str:
        parts = []
        for layer in self.layers:
            if isinstance(layer, ConvLayer):
                text = f"c{layer.channels}k{layer.kernel}" + ("s2" if layer.stride == 2 else "")
                text += "b" if layer.batch_norm else ""
            elif isinstance(layer, DenseLayer):
                text = f"d{layer.units}"
            elif isinstance(layer, PoolLayer):
                text = f"{layer.op[0]}p"
            elif isinstance(layer, DropoutLayer):
                text = f"dr{layer.rate:g}"
            else:
                text = "gp" if layer.op == "avg" else "gmp"
            rule = getattr(layer, "rule", "backprop")
            parts.append(text + ("" if rule == "backprop" else f":{rule}"))
        line = "-".join(parts) or "linear"
        if self.skips:
            line += f" +{len(self.skips)}skip"
        if self.regularization:
            line += f" wd{self.regularization:g}"
        if self.init != "default":
            line += f" {self.init}"
        if self.output_rule != "backprop":
            line += f" out:{self.output_rule}"
        return line

    def diagram(self) -> Stack:
        """Layers in order with the skips as arcs; item 0 is the input, so layer i is item i + 1."""
        items = [StackItem("input", "input", "", {"data-role": "input"})]
        for i, layer in enumerate(self.layers):
            rule = layer.rule if isinstance(layer, (ConvLayer, DenseLayer)) else ""
            items.append(StackItem(layer.kind, _layer_text(layer), rule, {"data-layer": i, "data-kind": layer.kind}))
        items.append(StackItem("output", "linear classifier → classes", self.output_rule, {"data-role": "output"}))
        skips = tuple((s.src + 1, s.dst + 1) for s in self.skips)
        footer = (f"init {self.init} · weight decay {self.regularization} · "
                  f"{len(skips)} skip connection{'s' if len(skips) != 1 else ''}",)
        return Stack(tuple(items), skips, footer, label="network architecture")

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The published schema: what an LLM designer must write (family included)."""
        schema = cls.model_json_schema()
        schema["properties"] = {"family": {"const": cls.family, "type": "string"}, **schema["properties"]}
        schema["required"] = ["family", *schema.get("required", [])]
        schema["description"] = SCHEMA_DESCRIPTION
        for layer in schema["$defs"].values():  # the union's tag must be written, default or not
            if "kind" in layer.get("properties", {}):
                layer["properties"]["kind"].pop("default", None)
                layer["required"] = ["kind", *layer.get("required", [])]
        return schema

    @classmethod
    def schema_json(cls) -> str:
        return json.dumps(cls.json_schema(), indent=2)

