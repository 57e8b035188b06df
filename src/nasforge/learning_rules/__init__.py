"""Per-layer bio-inspired learning rules (SPEC section 5).

Each ``RuleLinear``/``RuleConv2d`` runs forward with its weight W but sends the error to
its input through a feedback matrix B chosen by its rule (``backprop``: W; ``fa``: fixed
random; ``usf``: sign(W); ``brsf``/``frsf``: random magnitudes times sign(W), redrawn
per batch or fixed). Weight and bias gradients are the usual ones, so any torch
optimiser trains these layers, and their state dicts are those of the plain layers.
"""

from nasforge.learning_rules.feedback import RULES
from nasforge.learning_rules.layers import RuleConv2d, RuleLinear

__all__ = ["RULES", "RuleConv2d", "RuleLinear"]
