"""``nn.Linear`` / ``nn.Conv2d`` drop-ins that train with a per-layer learning rule.

Why subclasses of the plain layers: a trained model must load into, and export as, an
ordinary torch model. So the parameters and ``state_dict`` keys are exactly the plain
layer's (feedback draws are non-persistent buffers), and whenever no gradient is being
taken (eval mode, ``torch.no_grad``) or the rule is ``backprop``, forward is the plain
functional op, which is what ``torch.export``/``torch.onnx.export``/``torch.jit.trace`` then see.

Buffer semantics per rule: ``fa`` keeps B (drawn once at construction); ``frsf`` keeps
``|M|`` (drawn once); ``brsf`` keeps the ``|M|`` of the latest training forward and
redraws it at every training forward that builds a graph (one draw per mini-batch).
Buffers follow ``.to(device)`` and ``copy.deepcopy`` but are not saved or loaded, so a
model rebuilt from a state dict gets fresh feedback draws (seed torch to fix them).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

from nasforge.learning_rules.feedback import (
    FIXED_FEEDBACK_RULES,
    MAGNITUDE_RULES,
    build_feedback,
    check_rule,
    draw_magnitude,
    draw_xavier,
)
from nasforge.learning_rules.functions import Conv2dFeedback, LinearFeedback

_BUFFER = "feedback_buffer"


class _RuleMixin:
    """Shared rule bookkeeping for the layers: validation, buffers, B, repr."""

    weight: nn.Parameter
    training: bool
    register_buffer: Any

    def _init_rule(self, rule: str, scale: bool) -> None:
        self._rule = check_rule(rule)
        self.scale = bool(scale)
        stored: torch.Tensor | None = None
        if rule in FIXED_FEEDBACK_RULES:
            stored = draw_xavier(self.weight)
        elif rule in MAGNITUDE_RULES:
            stored = draw_magnitude(self.weight)
        # Registered (as None when unused) so every layer has the same attribute.
        self.register_buffer(_BUFFER, stored, persistent=False)

    @property
    def rule(self) -> str:
        """The learning rule, fixed at construction (its buffers depend on it)."""
        return self._rule

    def _plain(self) -> bool:
        """True when forward should be the plain op: nothing custom to backpropagate."""
        return self._rule == "backprop" or not self.training or not torch.is_grad_enabled()

    def _stored(self) -> torch.Tensor | None:
        stored: torch.Tensor | None = getattr(self, _BUFFER)
        return stored

    def feedback(self) -> torch.Tensor:
        """The B in use now: for the current W and, for brsf, the latest batch's M.

        It equals the B saved by the latest training forward as long as W has not been
        stepped since, so gradients can be recomputed by hand from it.
        """
        return build_feedback(self._rule, self.weight, self._stored(), self.scale)

    def _feedback_for_step(self) -> torch.Tensor:
        """B for a training forward; brsf draws a new M here, once per mini-batch."""
        if self._rule == "brsf":
            with torch.no_grad():
                self._stored().copy_(draw_magnitude(self.weight))
        return self.feedback()

    def _rule_repr(self) -> str:
        return f"rule={self._rule}" + (", scale=True" if self.scale else "")


class RuleLinear(_RuleMixin, nn.Linear):
    """``nn.Linear`` whose input gradient is ``delta @ B`` for its learning ``rule``.

    Args:
        in_features, out_features, bias, device, dtype: as for ``nn.Linear``.
        rule: one of :data:`~nasforge.learning_rules.RULES`.
        scale: multiply B by ``sqrt(2 / (fan_in + fan_out))`` (no effect on backprop).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        rule: str = "backprop",
        scale: bool = False,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        check_rule(rule)  # before super(): fail fast, and before any RNG is used
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self._init_rule(rule, scale)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self._plain():
            return F.linear(input, self.weight, self.bias)
        out: torch.Tensor = LinearFeedback.apply(
            input, self.weight, self.bias, self._feedback_for_step()
        )
        return out

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._rule_repr()}"


class RuleConv2d(_RuleMixin, nn.Conv2d):
    """``nn.Conv2d`` whose input gradient goes through B for its learning ``rule``.

    Supports everything ``nn.Conv2d`` does: stride, dilation, any ``groups`` (including
    depthwise), numeric or ``"same"``/``"valid"`` padding and every ``padding_mode``.

    Args:
        in_channels ... padding_mode, device, dtype: as for ``nn.Conv2d``.
        rule: one of :data:`~nasforge.learning_rules.RULES`.
        scale: multiply B by ``sqrt(2 / (fan_in + fan_out))``, fans counting the kernel
            size as Xavier init does (no effect on backprop).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: str | int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        *,
        rule: str = "backprop",
        scale: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        check_rule(rule)
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
            bias, padding_mode, device=device, dtype=dtype,
        )  # fmt: skip
        self._init_rule(rule, scale)

    def _explicit_padding(self) -> tuple[int, int, int, int]:
        """``F.pad`` amounts (left, right, top, bottom) equivalent to ``self.padding``.

        Needed because the custom backward takes numeric, symmetric padding only;
        ``"same"`` with an even kernel pads one more on the right/bottom, like torch.
        """
        if self.padding == "valid":
            return (0, 0, 0, 0)
        if self.padding == "same":
            pads: list[int] = []
            for k, d in zip(reversed(self.kernel_size), reversed(_pair(self.dilation))):
                total = d * (k - 1)
                pads += [total // 2, total - total // 2]
            return (pads[0], pads[1], pads[2], pads[3])
        ph, pw = _pair(self.padding)
        return (pw, pw, ph, ph)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self._plain():
            return self._conv_forward(input, self.weight, self.bias)
        unbatched = input.dim() == 3
        x = input.unsqueeze(0) if unbatched else input
        padding = _pair(0)
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
            pads = self._explicit_padding()
            if any(pads):
                x = F.pad(x, pads, mode=mode)
        else:
            padding = _pair(self.padding)
        out: torch.Tensor = Conv2dFeedback.apply(
            x, self.weight, self.bias, self._feedback_for_step(),
            _pair(self.stride), padding, _pair(self.dilation), self.groups,
        )  # fmt: skip
        return out.squeeze(0) if unbatched else out

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._rule_repr()}"
