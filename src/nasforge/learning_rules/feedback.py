"""Feedback matrices B for the bio-inspired learning rules (SPEC section 5).

A learning rule only changes which matrix carries the error back to a layer's input:
backprop uses the forward weight W itself, the other rules avoid "weight transport" by
using a random matrix (``fa``), the signs of W (``usf``) or the signs of W with random
magnitudes (``brsf``, ``frsf``). This module knows how to draw and build those matrices;
the autograd plumbing lives in :mod:`nasforge.learning_rules.functions` and the layers in
:mod:`nasforge.learning_rules.layers`.

Random draws use torch's global RNG on purpose: ``torch.manual_seed`` then makes a whole
run, feedback matrices included, reproducible without threading a generator through.
"""

from __future__ import annotations

import math

import torch

from nasforge.spaces.vocabulary import LEARNING_RULES as RULES

# Rules whose feedback needs a random draw kept in a buffer: fa keeps B itself, the
# random-magnitude sign-concordant rules keep |M| (brsf overwrites it every batch).
FIXED_FEEDBACK_RULES: tuple[str, ...] = ("fa",)
MAGNITUDE_RULES: tuple[str, ...] = ("brsf", "frsf")


def check_rule(rule: str) -> str:
    """Return ``rule`` if it is known, else raise a ``ValueError`` that lists the rules.

    Failing at construction time (not at the first backward pass) makes a bad genome
    visible where it was built.
    """
    if rule not in RULES:
        raise ValueError(f"unknown learning rule {rule!r}; expected one of {', '.join(RULES)}")
    return rule


def fans(weight: torch.Tensor) -> tuple[int, int]:
    """Fan-in and fan-out of a Linear/Conv weight, counted as Xavier init counts them.

    For a conv weight ``(out, in/groups, *kernel)`` each fan includes the kernel size.
    """
    if weight.dim() < 2:
        raise ValueError("feedback needs a weight with at least 2 dimensions")
    receptive = math.prod(weight.shape[2:]) if weight.dim() > 2 else 1
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def scale_factor(weight: torch.Tensor) -> float:
    """The optional feedback scale ``sqrt(2 / (fan_in + fan_out))`` for this weight."""
    fan_in, fan_out = fans(weight)
    return math.sqrt(2.0 / (fan_in + fan_out))


def draw_xavier(weight: torch.Tensor) -> torch.Tensor:
    """A fresh Glorot-uniform tensor shaped like ``weight`` (global RNG, no grad).

    Used for fa's B and for the random magnitudes M of brsf/frsf, so every random
    feedback matrix starts on the same scale as a freshly initialised W.
    """
    fan_in, fan_out = fans(weight)
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return torch.empty_like(weight, memory_format=torch.contiguous_format).uniform_(
            -bound, bound
        )


def draw_magnitude(weight: torch.Tensor) -> torch.Tensor:
    """Random non-negative magnitudes ``|M|`` for the sign-concordant rules."""
    return draw_xavier(weight).abs_()


def build_feedback(
    rule: str,
    weight: torch.Tensor,
    stored: torch.Tensor | None,
    scale: bool,
) -> torch.Tensor:
    """The matrix B that carries the error back to the input, for the current W.

    ``stored`` is the layer's buffer: B itself for ``fa``, ``|M|`` for ``brsf``/``frsf``,
    unused otherwise. The result is detached: B is never trained, and the weight
    gradient does not flow through it. ``scale`` is ignored for ``backprop`` so that
    rule stays exactly the true gradient.
    """
    w = weight.detach()
    if rule == "backprop":
        return w
    if rule == "usf":
        b = torch.sign(w)
    elif rule in MAGNITUDE_RULES:
        if stored is None:
            raise RuntimeError(f"rule {rule!r} needs its stored magnitudes")
        b = stored * torch.sign(w)
    elif rule == "fa":
        if stored is None:
            raise RuntimeError("rule 'fa' needs its stored feedback matrix")
        b = stored
    else:
        check_rule(rule)
        raise AssertionError("unreachable")
    if scale:
        b = b * scale_factor(w)
    return b
