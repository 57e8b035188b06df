"""Evaluators: genome and seed in, measured metrics out (see ``base.py``); kinds register
themselves in their modules (``training``, ``table``)."""
from .base import EVALUATORS, Evaluation, Evaluator, WeightSource

__all__ = ["EVALUATORS", "Evaluation", "Evaluator", "WeightSource"]
