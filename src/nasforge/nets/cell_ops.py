"""The torch modules of the operations inside TS-ENAS cells (codes and names:
:data:`nasforge.spaces.vocabulary.CELL_OPS`, Table I of the paper plus what the published
cells use).

Every op maps C channels to C channels. With ``stride=2`` (an edge that leaves a cell input
inside a reduction cell) every op maps a side of n pixels to ceil(n / 2): the same size for
all ops on odd sides too (7 -> 4), and 1 -> 1, so a reduction cell also works on a 1x1 map.
DARTS's FactorizedReduce would give 3 on one branch and 4 on the other for a side of 7; the
padded shift below fixes that.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..spaces.vocabulary import CELL_OPS

OPS = CELL_OPS  # code -> name; the names are the keys of _FACTORIES below


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(c_out))


class Factorized(nn.Sequential):
    """ReLU, a (1,k) conv then a (k,1) conv, BN: Table I's "1xk then kx1" at 2/k of the cost."""

    def __init__(self, c: int, k: int, stride: int):
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c, c, (1, k), (1, stride), (0, k // 2), bias=False),
            nn.Conv2d(c, c, (k, 1), (stride, 1), (k // 2, 0), bias=False),
            nn.BatchNorm2d(c),
        )


class DilConv(nn.Sequential):
    """ReLU, depthwise conv (dilated), pointwise conv, BN (DARTS's DilConv)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, dilation: int):
        pad = dilation * (kernel - 1) // 2
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c_in, c_in, kernel, stride, pad, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )


class SepConv(nn.Sequential):
    """Two depthwise-separable blocks, the first carrying the stride (DARTS/NASNet)."""

    def __init__(self, c: int, kernel: int, stride: int):
        super().__init__(DilConv(c, c, kernel, stride, 1), DilConv(c, c, kernel, 1, 1))


class FactorizedReduce(nn.Module):
    """Halve the map with two 1x1 stride-2 convs, one on a one-pixel-shifted copy, then concat.

    The shifted copy is padded on the bottom/right first, so both halves come out at
    ceil(n / 2) for odd n and a 1x1 map stays 1x1.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.conv2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv1(x), self.conv2(shifted)], dim=1))


class Zero(nn.Module):
    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride] * 0.0


def _pool(kind: str, k: int, stride: int) -> nn.Module:
    if kind == "avg":
        return nn.AvgPool2d(k, stride, k // 2, count_include_pad=False)
    return nn.MaxPool2d(k, stride, k // 2)


_FACTORIES: dict[str, Callable[[int, int], nn.Module]] = {
    "none": lambda c, s: Zero(s),
    "skip_connect": lambda c, s: nn.Identity() if s == 1 else FactorizedReduce(c, c),
    "conv_1x3_3x1": lambda c, s: Factorized(c, 3, s),
    "conv_7x1_1x7": lambda c, s: Factorized(c, 7, s),
    "dil_conv_3x3": lambda c, s: DilConv(c, c, 3, s, 2),
    "dil_conv_5x5": lambda c, s: DilConv(c, c, 5, s, 2),
    "avg_pool_3x3": lambda c, s: _pool("avg", 3, s),
    "max_pool_3x3": lambda c, s: _pool("max", 3, s),
    "max_pool_5x5": lambda c, s: _pool("max", 5, s),
    "max_pool_7x7": lambda c, s: _pool("max", 7, s),
    "conv_1x1": lambda c, s: ReLUConvBN(c, c, 1, s),
    "conv_3x3": lambda c, s: ReLUConvBN(c, c, 3, s),
    "sep_conv_3x3": lambda c, s: SepConv(c, 3, s),
    "sep_conv_5x5": lambda c, s: SepConv(c, 5, s),
    "sep_conv_7x7": lambda c, s: SepConv(c, 7, s),
}
assert set(_FACTORIES) == set(OPS.values())


def make_op(code: int, channels: int, stride: int) -> nn.Module:
    """The module for op ``code`` on ``channels`` channels (stride 1 or 2)."""
    return _FACTORIES[OPS[code]](channels, stride)
