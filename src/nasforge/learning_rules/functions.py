"""Autograd Functions whose backward sends the error to the input through B, not W.

Forward is the ordinary linear/conv op with W. Backward returns
``grad_input = B^T delta`` (the input gradient the op would give if B were its weight),
and the usual ``grad_weight`` and ``grad_bias``: those do not depend on W at all, so they
are exactly what plain autograd computes.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable


class LinearFeedback(torch.autograd.Function):
    """``y = x W^T + b`` forward; ``dx = dy B`` backward (B has W's shape)."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        feedback: torch.Tensor,
    ) -> torch.Tensor:
        ctx.save_for_backward(x, feedback)
        ctx.has_bias = bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, feedback = ctx.saved_tensors
        need_x, need_w, need_b, _ = ctx.needs_input_grad
        grad_x = grad_w = grad_b = None
        if need_x:
            grad_x = grad_out.matmul(feedback)
        if need_w or (need_b and ctx.has_bias):
            # Leading dims (batch, sequence, ...) all count as samples.
            g2 = grad_out.reshape(-1, grad_out.shape[-1])
            if need_w:
                grad_w = g2.t().mm(x.reshape(-1, x.shape[-1]))
            if need_b and ctx.has_bias:
                grad_b = g2.sum(0)
        return grad_x, grad_w, grad_b, None


class Conv2dFeedback(torch.autograd.Function):
    """``F.conv2d`` forward; backward routes the input gradient through B.

    One ``aten.convolution_backward`` call with B as the weight gives all three
    gradients: the input gradient uses B, while the weight and bias gradients only need
    the input, the output gradient and the weight's shape (which B shares with W).
    Padding here is numeric; string and non-zero padding modes are resolved by the
    caller with an explicit ``F.pad``.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        feedback: torch.Tensor,
        stride: tuple[int, int],
        padding: tuple[int, int],
        dilation: tuple[int, int],
        groups: int,
    ) -> torch.Tensor:
        ctx.save_for_backward(x, feedback)
        ctx.conf = (list(stride), list(padding), list(dilation), groups)
        ctx.bias_sizes = None if bias is None else list(bias.shape)
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, feedback = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conf
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        need_b = need_b and ctx.bias_sizes is not None
        grad_x, grad_w, grad_b = torch.ops.aten.convolution_backward(
            grad_out.contiguous(),
            x,
            feedback,
            ctx.bias_sizes,
            stride,
            padding,
            dilation,
            False,
            [0, 0],
            groups,
            [need_x, need_w, need_b],
        )
        return grad_x, grad_w, grad_b, None, None, None, None, None
