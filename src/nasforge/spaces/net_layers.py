"""Layers and shape rules of the ``net`` genome family, without torch.

Kept apart from :mod:`nasforge.spaces.net` (the genome) so that the shape rules, which
``check``, ``n_params`` and the torch builder (:mod:`nasforge.nets.net_model`) all need,
live next to the layers they describe.

Shapes are tracked without torch: ``(C, H, W)`` for an image tensor, ``(F,)`` for
features. Every conv pads ``kernel // 2`` (odd kernels only), so a stride-1 conv keeps
H x W and a stride-2 conv gives ``ceil(H / 2)``; a pool halves H and W (floor) and needs
both to be at least 2. A dense layer (or the classifier) meeting an image tensor flattens
it implicitly; ``global_pool`` averages (or maxes) H x W away and flattens.
"""
from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InvalidGenome
from .vocabulary import ACTIVATIONS, POOL_OPS, Rule

# Fixed grids as enums: LLM grammar converters ignore numeric min/max but honour enums.
WIDTHS: tuple[int, ...] = (2, 4, 8, 16, 32, 64, 128, 256, 512)
Width = Literal[WIDTHS]  # type: ignore[valid-type]
NET_ACTIVATIONS: tuple[str, ...] = (*ACTIVATIONS, "none")  # a conv or dense layer may be linear
NetActivation = Literal[NET_ACTIVATIONS]  # type: ignore[valid-type]
Shape = tuple[int, ...]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConvLayer(_Part):
    """Conv -> optional BatchNorm -> activation, as one layer: LEMONADE edits them together."""

    kind: Literal["conv"] = "conv"
    channels: Width
    kernel: Literal[1, 3, 5, 7] = 3
    stride: Literal[1, 2] = 1
    activation: NetActivation = "relu"
    batch_norm: bool = False
    rule: Rule = "backprop"


class PoolLayer(_Part):
    """2x2 max or average pooling with stride 2: halves H and W."""

    kind: Literal["pool"] = "pool"
    op: Literal[POOL_OPS] = "max"  # type: ignore[valid-type]
    size: Literal[2] = 2


class DropoutLayer(_Part):
    """Element-wise dropout (``nn.Dropout``, also on image tensors)."""

    kind: Literal["dropout"] = "dropout"
    rate: float = Field(default=0.2, ge=0.0, lt=1.0)


class GlobalPoolLayer(_Part):
    """Collapses H x W to one value per channel and flattens: (C, H, W) -> (C,)."""

    kind: Literal["global_pool"] = "global_pool"
    op: Literal[POOL_OPS[::-1]] = "avg"  # type: ignore[valid-type]  # the default first, as published


class DenseLayer(_Part):
    kind: Literal["dense"] = "dense"
    units: Width
    activation: NetActivation = "relu"
    rule: Rule = "backprop"


Layer = Annotated[
    ConvLayer | PoolLayer | DropoutLayer | GlobalPoolLayer | DenseLayer, Field(discriminator="kind")
]


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
