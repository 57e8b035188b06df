"""PyTorch networks for the ``cells`` family: a chain of cells, and the supernet of all 8 cells.

Cell plumbing follows DARTS: both cell inputs are preprocessed to the cell's width C
(ReLU-conv1x1-BN, or FactorizedReduce steps when the earlier input is larger), every
intermediate node sums two op outputs, and the cell output concatenates the listed nodes,
so it has len(concat) * C channels. A reduction cell doubles C and its edges that leave the
cell inputs have stride 2. Unlike DARTS, the second input may be any earlier cell or the
stem, so it may be several reductions larger: it then gets one FactorizedReduce per halving.

Module names are stable so weights can be inherited by name and shape
(nasforge.train.inheritance): ``cells.<i>.pre0``, ``cells.<i>.pre1`` and
``cells.<i>.edges.n<node><a|b>_<op>``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache

import torch
from torch import nn

from ..spaces.cell_plan import CellPlan, Node
from .cell_ops import OPS, FactorizedReduce, ReLUConvBN, make_op

Size = tuple[int, int]


def halve(size: Size) -> Size:
    return ((size[0] + 1) // 2, (size[1] + 1) // 2)


def stem_stride(height: int, width: int, stem_size: int) -> int:
    """The stem's stride: larger inputs are brought down to at most ``stem_size`` pixels a side."""
    return max(1, math.ceil(min(height, width) / stem_size))


class Stem(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, stride: int):
        kernel = 3 if stride <= 2 else stride
        super().__init__(nn.Conv2d(c_in, c_out, kernel, stride, 1 if kernel == 3 else 0, bias=False), nn.BatchNorm2d(c_out))


def stem_output(size: Size, stride: int) -> Size:
    if stride <= 2:
        return ((size[0] - 1) // stride + 1, (size[1] - 1) // stride + 1)
    return (size[0] // stride, size[1] // stride)


def preprocess(c_other: int, c: int, halvings: int) -> nn.Module:
    """A cell's first input brought to width ``c`` (and halved ``halvings`` times)."""
    if halvings:
        steps = [FactorizedReduce(c_other if i == 0 else c, c) for i in range(halvings)]
        return steps[0] if halvings == 1 else nn.Sequential(*steps)
    return ReLUConvBN(c_other, c, 1)


def cell_edges(nodes: Sequence[Node], reduction: bool) -> list[tuple[int, int, int, tuple[tuple[int, int], ...]]]:
    """Each intermediate node's number, its two inputs and its two (op, stride) edges: edges
    leaving the cell inputs of a reduction cell have stride 2."""
    return [(k, xi, xj, tuple((op, 2 if reduction and x < 2 else 1) for x, op in ((xi, oi), (xj, oj))))
            for k, (xi, xj, oi, oj) in enumerate(nodes, start=2)]


class Cell(nn.Module):
    def __init__(self, nodes: Sequence[Node], concat: Sequence[int], c_other: int, c_prev: int, c: int,
                 reduction: bool, halvings: int):
        super().__init__()
        self.pre0 = preprocess(c_other, c, halvings)
        self.pre1 = ReLUConvBN(c_prev, c, 1)
        self.edges = nn.ModuleDict()
        self.wiring: list[tuple[int, str, int, str]] = []
        for k, xi, xj, edges in cell_edges(nodes, reduction):
            keys = []
            for side, op, stride in zip("ab", *zip(*edges)):
                key = f"n{k}{side}_{OPS[op]}"
                self.edges[key] = make_op(op, c, stride)
                keys.append(key)
            self.wiring.append((xi, keys[0], xj, keys[1]))
        self.concat = tuple(concat)

    @staticmethod
    def count_params(nodes: Sequence[Node], concat: Sequence[int], c_other: int, c_prev: int, c: int,
                     reduction: bool, halvings: int) -> int:
        """The parameters of ``Cell(...)`` with the same arguments, from its parts counted once each."""
        ops = [_module_params(make_op, op, c, stride) for _, _, _, edges in cell_edges(nodes, reduction)
               for op, stride in edges]
        return _module_params(preprocess, c_other, c, halvings) + _module_params(ReLUConvBN, c_prev, c, 1) + sum(ops)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for xi, key_a, xj, key_b in self.wiring:
            states.append(self.edges[key_a](states[xi]) + self.edges[key_b](states[xj]))
        return torch.cat([states[n] for n in self.concat], dim=1)


CellArgs = tuple[tuple[Node, ...], tuple[int, ...], int, int, int, bool, int]
"""A cell's constructor arguments: nodes, concat, c_other, c_prev, c, reduction, halvings."""


def layout(plans: Sequence[CellPlan], input_shape: tuple[int, int, int], channels: int,
           stem_size: int) -> tuple[int, list[CellArgs], int]:
    """Where the cells of a chain sit: the stem's stride, each cell's constructor arguments
    (widths and halvings follow from which earlier outputs it reads), and the channels the
    classifier gets. The network and its parameter count both walk the chain here."""
    c_in, height, width = input_shape
    stride = stem_stride(height, width, stem_size)
    outputs: list[tuple[int, Size]] = [(channels, stem_output((height, width), stride))]
    cells: list[CellArgs] = []
    c = channels
    for plan in plans:
        c = c * 2 if plan.reduction else c
        c_prev, size_prev = outputs[plan.prev]
        c_other, size_other = outputs[plan.other]
        cells.append((tuple(plan.nodes), tuple(plan.concat), c_other, c_prev, c, plan.reduction,
                      halvings_between(size_other, size_prev)))
        outputs.append((len(plan.concat) * c, halve(size_prev) if plan.reduction else size_prev))
    return stride, cells, outputs[-1][0]


def count_params(plans: Sequence[CellPlan], input_shape: tuple[int, int, int], n_classes: int, channels: int,
                 stem_size: int) -> int:
    """The parameter count of ``CellsNetwork(plans, ...)`` without building it: each distinct
    cell is built once (on the meta device) and remembered, so counting the many mutations of
    a few parents, as the predictor does for every candidate, costs almost nothing."""
    stride, cells, c_last = layout(plans, input_shape, channels, stem_size)
    return (_module_params(Stem, input_shape[0], channels, stride) + sum(Cell.count_params(*a) for a in cells)
            + c_last * n_classes + n_classes)


@lru_cache(maxsize=4096)
def _module_params(make: Callable[..., nn.Module], *args: object) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in make(*args).parameters())


class CellsNetwork(nn.Module):
    """Stem, the chain of cells (each reading its previous cell and one earlier output), then
    global average pooling and a linear classifier."""

    def __init__(self, plans: Sequence[CellPlan], input_shape: tuple[int, int, int], n_classes: int,
                 channels: int, stem_size: int):
        super().__init__()
        stride, cells, c_last = layout(plans, input_shape, channels, stem_size)
        self.stem = Stem(input_shape[0], channels, stride)
        self.cells = nn.ModuleList(Cell(*args) for args in cells)
        self.codes: list[int] = [plan.code for plan in plans]
        self.widths: list[int] = [args[4] for args in cells]  # each cell's inner width C (the key of inherited weights)
        self.links: list[tuple[int, int]] = [(plan.other, plan.prev) for plan in plans]
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_last, n_classes)

    def cell_slots(self) -> list[tuple[int, int, nn.Module]]:
        """(cell code, inner width, module) of every cell, for weight inheritance."""
        return list(zip(self.codes, self.widths, self.cells))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [self.stem(x)]
        for cell, (other, prev) in zip(self.cells, self.links):
            outs.append(cell(outs[other], outs[prev]))
        return self.classifier(torch.flatten(self.pool(outs[-1]), 1))


def halvings_between(larger: Size, smaller: Size) -> int:
    """How many ceil-halvings take an earlier map down to a later one's size."""
    steps = 0
    while larger != smaller:
        if steps > 64 or larger[0] < smaller[0] or larger[1] < smaller[1]:
            raise ValueError(f"cell inputs of sizes {larger} and {smaller} cannot be aligned")
        larger, steps = halve(larger), steps + 1
    return steps


class SuperNet(nn.Module):
    """The 8 cells in one network, trained once so new individuals can start from it.

    Layout (**ours**; the paper only says the cells are stacked): the normal cells in a
    DARTS-style chain at width C (each reads the two outputs before it), then the reduction
    cells side by side on the last two normal outputs, at width 2C. Every cell has its own
    classifier head on its pooled output (deep supervision, **ours**): the loss is the mean
    over heads, so each cell's output is itself a usable representation, and an individual
    can inherit the head of its last cell's type as its classifier (same shape). Cell weights
    depend on the width, which doubles at every reduction, so the weight store trains one
    supernet per width an individual can use (C, 2C, 4C, ...).
    """

    def __init__(self, normal: Sequence[CellPlan], reduction: Sequence[CellPlan], input_shape: tuple[int, int, int],
                 n_classes: int, channels: int, stem_size: int):
        super().__init__()
        c_in, height, width = input_shape
        stride = stem_stride(height, width, stem_size)
        self.stem = Stem(c_in, channels, stride)
        self.cells, self.heads = nn.ModuleList(), nn.ModuleList()
        self.codes: list[int] = []
        self.widths: list[int] = []
        out_channels = [channels]
        for i, plan in enumerate(normal):
            c_other, c_prev = out_channels[max(0, i - 1)], out_channels[i]
            self._add(plan, Cell(plan.nodes, plan.concat, c_other, c_prev, channels, False, 0), channels, n_classes)
            out_channels.append(len(plan.concat) * channels)
        self.n_normal = len(normal)
        for plan in reduction:
            cell = Cell(plan.nodes, plan.concat, out_channels[-2], out_channels[-1], 2 * channels, True, 0)
            self._add(plan, cell, 2 * channels, n_classes)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def _add(self, plan: CellPlan, cell: Cell, width: int, n_classes: int) -> None:
        self.cells.append(cell)
        self.heads.append(nn.Linear(len(plan.concat) * width, n_classes))
        self.codes.append(plan.code)
        self.widths.append(width)

    def cell_slots(self) -> list[tuple[int, int, nn.Module]]:
        return list(zip(self.codes, self.widths, self.cells))

    def head_logits(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every head's logits, in the order of ``cells``."""
        outs = [self.stem(x)]
        for i in range(self.n_normal):
            outs.append(self.cells[i](outs[max(0, i - 1)], outs[i]))
        s0, s1 = outs[-2], outs[-1]
        outs += [cell(s0, s1) for cell in list(self.cells)[self.n_normal:]]
        return [head(torch.flatten(self.pool(out), 1)) for head, out in zip(self.heads, outs[1:])]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The heads' mean logits (an ensemble; what the supernet's accuracy is measured on)."""
        return torch.stack(self.head_logits(x)).mean(0)
