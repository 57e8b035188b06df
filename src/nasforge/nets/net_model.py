"""The torch module of the ``net`` genome family, built from its layers and skips.

Imported by :meth:`~nasforge.spaces.net.NetGenome.build` only, so that the genome and its
search space import without torch; the shape rules live in :mod:`nasforge.spaces.net_layers`.
"""
from __future__ import annotations

import math

import torch

from ..errors import InvalidGenome
from ..spaces.net_layers import (
    ConvLayer,
    DropoutLayer,
    GlobalPoolLayer,
    Layer,
    PoolLayer,
    Shape,
    Skip,
    check_skips,
    input_image_shape,
    trace_shapes,
)  # fmt: skip
from .mlp_model import ACTIVATION_MODULES, linear_layer


def _conv(c_in: int, c_out: int, kernel: int, stride: int, rule: str, bias: bool) -> torch.nn.Conv2d:
    if rule == "backprop":
        return torch.nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=bias)
    from ..learning_rules import RuleConv2d

    return RuleConv2d(c_in, c_out, kernel, stride, kernel // 2, bias=bias, rule=rule)


def _activation(name: str) -> list[torch.nn.Module]:
    return [] if name == "none" else [ACTIVATION_MODULES[name]()]


def _block(layer: Layer, prev: Shape) -> torch.nn.Module:
    """The torch modules of one genome layer whose input has shape ``prev``."""
    mods: list[torch.nn.Module] = []
    if isinstance(layer, ConvLayer):
        mods.append(_conv(prev[0], layer.channels, layer.kernel, layer.stride, layer.rule, not layer.batch_norm))
        if layer.batch_norm:
            mods.append(torch.nn.BatchNorm2d(layer.channels))
        mods += _activation(layer.activation)
    elif isinstance(layer, PoolLayer):
        mods.append(torch.nn.MaxPool2d(2) if layer.op == "max" else torch.nn.AvgPool2d(2))
    elif isinstance(layer, DropoutLayer):
        mods.append(torch.nn.Dropout(layer.rate))
    elif isinstance(layer, GlobalPoolLayer):
        pool = torch.nn.AdaptiveAvgPool2d(1) if layer.op == "avg" else torch.nn.AdaptiveMaxPool2d(1)
        mods += [pool, torch.nn.Flatten()]
    else:
        if len(prev) == 3:
            mods.append(torch.nn.Flatten())
        mods += [linear_layer(math.prod(prev), layer.units, layer.rule), *_activation(layer.activation)]
    return torch.nn.Sequential(*mods)


def _projection(a: Shape, b: Shape, rule: str) -> torch.nn.Module:
    """Identity when sizes match, else a bias-free 1x1 conv or Linear (the destination's rule)."""
    if a[0] == b[0]:
        return torch.nn.Identity()
    if len(a) == 3:
        return _conv(a[0], b[0], 1, 1, rule, bias=False)
    return linear_layer(a[0], b[0], rule, bias=False)


def _apply_init(model: torch.nn.Module, init: str) -> None:
    """Re-initialise every conv/linear weight (biases to zero); "default" keeps torch's."""
    if init == "default":
        return
    fill = {
        "kaiming": lambda w: torch.nn.init.kaiming_normal_(w, nonlinearity="relu"),
        "xavier": torch.nn.init.xavier_uniform_,
        "orthogonal": torch.nn.init.orthogonal_,
    }[init]
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                fill(module.weight)
                if module.bias is not None:
                    module.bias.zero_()


class NetModel(torch.nn.Module):
    """Runs the blocks in order; after block j adds the (projected) saved outputs of its skips."""

    def __init__(
        self,
        blocks: list[torch.nn.Module],
        skips: list[tuple[int, int]],
        projections: list[torch.nn.Module],
        head: torch.nn.Module,
        add_channel: bool = False,
    ):
        super().__init__()
        self.blocks = torch.nn.ModuleList(blocks)
        self.projections = torch.nn.ModuleDict({f"{i}_{j}": p for (i, j), p in zip(skips, projections)})
        self.head = head
        self.add_channel = add_channel
        self._incoming: dict[int, list[tuple[int, str]]] = {}
        for i, j in skips:
            self._incoming.setdefault(j, []).append((i, f"{i}_{j}"))
        self._sources = frozenset(i for i, _ in skips)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.add_channel:  # (N, H, W) inputs: one channel
            x = x.unsqueeze(1)
        saved: dict[int, torch.Tensor] = {}
        for j, block in enumerate(self.blocks):
            x = block(x)
            for i, key in self._incoming.get(j, ()):
                x = x + self.projections[key](saved[i])
            if j in self._sources:
                saved[j] = x
        return self.head(x)


def build_model(
    layers: tuple[Layer, ...],
    skips: tuple[Skip, ...],
    input_shape: tuple[int, ...],
    n_classes: int,
    init: str = "default",
    output_rule: str = "backprop",
) -> NetModel:
    """The torch module; shape errors raise ValueError (the evaluator reports a failed trial)."""
    try:
        shapes = trace_shapes(layers, input_shape)
        check_skips(skips, shapes)
        prev = input_image_shape(input_shape)
    except InvalidGenome as exc:
        raise ValueError(str(exc)) from None
    blocks = []
    for layer, out in zip(layers, shapes):
        blocks.append(_block(layer, prev))
        prev = out
    projections = []
    for skip in skips:
        rule = getattr(layers[skip.dst], "rule", "backprop")
        projections.append(_projection(shapes[skip.src], shapes[skip.dst], rule))
    head_mods: list[torch.nn.Module] = [torch.nn.Flatten()] if len(prev) == 3 else []
    head = torch.nn.Sequential(*head_mods, linear_layer(math.prod(prev), n_classes, output_rule))
    add_channel = len(tuple(input_shape)) == 2
    model = NetModel(blocks, [(s.src, s.dst) for s in skips], projections, head, add_channel)
    _apply_init(model, init)
    return model
