"""Layers, shape rules and the torch module of the ``net`` genome family.

Kept apart from :mod:`nasforge.spaces.net` (genome and search space) so that the shape
rules, which both ``check`` and ``build`` need, live next to the module they describe.

Shapes are tracked without torch: ``(C, H, W)`` for an image tensor, ``(F,)`` for
features. Every conv pads ``kernel // 2`` (odd kernels only), so a stride-1 conv keeps
H x W and a stride-2 conv gives ``ceil(H / 2)``; a pool halves H and W (floor) and needs
both to be at least 2. A dense layer (or the classifier) meeting an image tensor flattens
it implicitly; ``global_pool`` averages (or maxes) H x W away and flattens.
"""
from __future__ import annotations

import math
from typing import Annotated, Literal, Union

import torch
from pydantic import BaseModel, ConfigDict, Field

from ..errors import InvalidGenome
from .mlp import ACTIVATIONS, Rule

# Fixed grids as enums: LLM grammar converters ignore numeric min/max but honour enums.
WIDTHS: tuple[int, ...] = (2, 4, 8, 16, 32, 64, 128, 256, 512)
Width = Literal[2, 4, 8, 16, 32, 64, 128, 256, 512]
Activation = Literal["relu", "tanh", "sigmoid", "gelu", "elu", "leaky_relu", "silu", "none"]
Init = Literal["default", "kaiming", "xavier", "orthogonal"]
INITS: tuple[str, ...] = ("default", "kaiming", "xavier", "orthogonal")
Shape = tuple[int, ...]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConvLayer(_Part):
    """Conv -> optional BatchNorm -> activation, as one layer: LEMONADE edits them together."""

    kind: Literal["conv"] = "conv"
    channels: Width
    kernel: Literal[1, 3, 5, 7] = 3
    stride: Literal[1, 2] = 1
    activation: Activation = "relu"
    batch_norm: bool = False
    rule: Rule = "backprop"


class PoolLayer(_Part):
    """2x2 max or average pooling with stride 2: halves H and W."""

    kind: Literal["pool"] = "pool"
    op: Literal["max", "avg"] = "max"
    size: Literal[2] = 2


class DropoutLayer(_Part):
    """Element-wise dropout (``nn.Dropout``, also on image tensors)."""

    kind: Literal["dropout"] = "dropout"
    rate: float = Field(default=0.2, ge=0.0, lt=1.0)


class GlobalPoolLayer(_Part):
    """Collapses H x W to one value per channel and flattens: (C, H, W) -> (C,)."""

    kind: Literal["global_pool"] = "global_pool"
    op: Literal["avg", "max"] = "avg"


class DenseLayer(_Part):
    kind: Literal["dense"] = "dense"
    units: Width
    activation: Activation = "relu"
    rule: Rule = "backprop"


Layer = Annotated[
    Union[ConvLayer, PoolLayer, DropoutLayer, GlobalPoolLayer, DenseLayer], Field(discriminator="kind")
]
LearnableLayer = Union[ConvLayer, DenseLayer]


class Skip(_Part):
    """The output of layer ``from`` is added to the output of layer ``to`` (from < to)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )
    src: int = Field(alias="from", ge=0)
    dst: int = Field(alias="to", ge=0)


def input_image_shape(input_shape: tuple[int, ...]) -> Shape:
    """(C, H, W) for images, (H, W) read as one channel, (F,) for flat inputs."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) not in (1, 3) or min(shape) < 1:
        raise InvalidGenome(f"input shape {input_shape} is neither (C, H, W), (H, W) nor (F,)")
    return shape


def _fmt(shape: Shape) -> str:
    return "x".join(map(str, shape)) + (" image" if len(shape) == 3 else " features")


def trace_shapes(layers: tuple[Layer, ...], input_shape: tuple[int, ...]) -> list[Shape]:
    """The output shape of every layer; raises InvalidGenome where a layer cannot apply."""
    shape = input_image_shape(input_shape)
    shapes: list[Shape] = []
    for i, layer in enumerate(layers):
        if layer.kind in ("conv", "pool", "global_pool") and len(shape) != 3:
            raise InvalidGenome(
                f"layer {i} ({layer.kind}) needs an image tensor but gets {_fmt(shape)} "
                "(after a global_pool or dense layer, or with a flat input)"
            )
        if isinstance(layer, ConvLayer):
            h, w = shape[1:]
            if layer.stride == 2:
                h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
            shape = (layer.channels, h, w)
        elif isinstance(layer, PoolLayer):
            c, h, w = shape
            if h < 2 or w < 2:
                raise InvalidGenome(
                    f"layer {i} (pool) would shrink the {h}x{w} map below 1x1: too many reductions for the input"
                )
            shape = (c, h // 2, w // 2)
        elif isinstance(layer, GlobalPoolLayer):
            shape = (shape[0],)
        elif isinstance(layer, DenseLayer):
            shape = (layer.units,)
        shapes.append(shape)
    return shapes


def skip_problem(skip: Skip, shapes: list[Shape]) -> str | None:
    """Why this skip cannot be added (None when it can): the reasons ``check`` reports."""
    i, j = skip.src, skip.dst
    name = f"skip {i}->{j}"
    if i >= j:
        return f"{name} must go forward (from < to)"
    if j >= len(shapes):
        return f"{name}: layer {j} does not exist (the genome has {len(shapes)} layers)"
    a, b = shapes[i], shapes[j]
    if len(a) != len(b):
        return f"{name} crosses the flatten/global_pool boundary ({_fmt(a)} to {_fmt(b)})"
    if len(a) == 3 and a[1:] != b[1:]:
        return f"{name} joins a {a[1]}x{a[2]} map to a {b[1]}x{b[2]} map: spatial sizes differ"
    return None


def check_skips(skips: tuple[Skip, ...], shapes: list[Shape]) -> None:
    seen: set[tuple[int, int]] = set()
    for skip in skips:
        if (skip.src, skip.dst) in seen:
            raise InvalidGenome(f"skip {skip.src}->{skip.dst} appears twice")
        seen.add((skip.src, skip.dst))
        problem = skip_problem(skip, shapes)
        if problem:
            raise InvalidGenome(problem)


def count_params(
    layers: tuple[Layer, ...], skips: tuple[Skip, ...], input_shape: tuple[int, ...], n_classes: int
) -> int:
    """Trainable parameters of the built model, computed without building it."""
    shapes = trace_shapes(layers, input_shape)
    prev = input_image_shape(input_shape)
    total = 0
    for layer, out in zip(layers, shapes):
        if isinstance(layer, ConvLayer):
            weights = layer.kernel * layer.kernel * prev[0] * layer.channels
            total += weights + (2 * layer.channels if layer.batch_norm else layer.channels)
        elif isinstance(layer, DenseLayer):
            total += (math.prod(prev) + 1) * layer.units
        prev = out
    for skip in skips:  # projections only where channels/units differ (no bias)
        a, b = shapes[skip.src][0], shapes[skip.dst][0]
        total += a * b if a != b else 0
    return total + (math.prod(prev) + 1) * n_classes


def _conv(c_in: int, c_out: int, kernel: int, stride: int, rule: str, bias: bool) -> torch.nn.Conv2d:
    if rule == "backprop":
        return torch.nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=bias)
    from ..learning_rules import RuleConv2d

    return RuleConv2d(c_in, c_out, kernel, stride, kernel // 2, bias=bias, rule=rule)


def _linear(n_in: int, n_out: int, rule: str, bias: bool = True) -> torch.nn.Linear:
    if rule == "backprop":
        return torch.nn.Linear(n_in, n_out, bias=bias)
    from ..learning_rules import RuleLinear

    return RuleLinear(n_in, n_out, bias=bias, rule=rule)


def _activation(name: str) -> list[torch.nn.Module]:
    return [] if name == "none" else [ACTIVATIONS[name]()]


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
        mods += [_linear(math.prod(prev), layer.units, layer.rule), *_activation(layer.activation)]
    return torch.nn.Sequential(*mods)


def _projection(a: Shape, b: Shape, rule: str) -> torch.nn.Module:
    """Identity when sizes match, else a bias-free 1x1 conv or Linear (the destination's rule)."""
    if a[0] == b[0]:
        return torch.nn.Identity()
    if len(a) == 3:
        return _conv(a[0], b[0], 1, 1, rule, bias=False)
    return _linear(a[0], b[0], rule, bias=False)


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
    head = torch.nn.Sequential(*head_mods, _linear(math.prod(prev), n_classes, output_rule))
    add_channel = len(tuple(input_shape)) == 2
    model = NetModel(blocks, [(s.src, s.dst) for s in skips], projections, head, add_channel)
    _apply_init(model, init)
    return model
