"""The NAS-Bench-201 network (Dong & Yang, ICLR 2020) for an :class:`~nasforge.spaces.nb201.NB201Genome`.

Imported by ``NB201Genome.build`` only, so that the genome, its space and the tabular
benchmark import without torch.
"""
from __future__ import annotations

import torch
from torch import nn

from ..spaces.nb201 import EDGES, N_NODES


def _relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(), nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out))


def _make_op(name: str, c: int) -> nn.Module:
    if name == "skip_connect":
        return nn.Identity()
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    if name == "nor_conv_1x1":
        return _relu_conv_bn(c, c, 1)
    if name == "nor_conv_3x3":
        return _relu_conv_bn(c, c, 3)
    raise ValueError(f"op {name!r} has no module")


class Cell(nn.Module):
    """Node j = sum over i < j of op_ji(node i). A ``none`` edge adds zeros, so it is left out
    of the sum; a node whose edges are all ``none`` is a zero tensor (and later edges still
    apply their op to it, as in the benchmark, where ReLU-Conv-BN of zeros is the BN bias)."""

    def __init__(self, ops: tuple[str, ...], channels: int):
        super().__init__()
        live = [(dst, src, op) for (dst, src), op in zip(EDGES, ops) if op != "none"]
        self.wiring = [(dst, src, f"e{dst}{src}") for dst, src, _ in live]
        self.edges = nn.ModuleDict({f"e{dst}{src}": _make_op(op, channels) for dst, src, op in live})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x] + [None] * (N_NODES - 1)
        for dst, src, key in self.wiring:
            source = nodes[src]
            out = self.edges[key](torch.zeros_like(x) if source is None else source)
            nodes[dst] = out if nodes[dst] is None else nodes[dst] + out
        last = nodes[-1]
        return torch.zeros_like(x) if last is None else last


class ResidualReduction(nn.Module):
    """NAS-Bench-201's reduction block: two ReLU-Conv-BN (first with stride 2) plus a shortcut
    of 2x2 average pooling and a 1x1 conv. ``ceil_mode`` keeps both paths the same size on
    odd inputs (7x7 -> 4x4 for 28x28 images)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.body = nn.Sequential(_relu_conv_bn(c_in, c_out, 3, stride=2), _relu_conv_bn(c_out, c_out, 3))
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2, ceil_mode=True),
                                      nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class NB201Network(nn.Module):
    """The benchmark's macro skeleton: stem, 3 stages of N cells at C/2C/4C channels joined by
    residual reductions, then BN-ReLU, global average pooling and a linear classifier."""

    def __init__(self, ops: tuple[str, ...], in_channels: int, n_classes: int, channels: int, cells_per_stage: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)]
        for stage in range(3):
            c = channels * 2**stage
            if stage:
                layers.append(ResidualReduction(c // 2, c))
            layers += [Cell(ops, c) for _ in range(cells_per_stage)]
        c_last = 4 * channels
        layers += [nn.BatchNorm2d(c_last), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_last, n_classes)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
