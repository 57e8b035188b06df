"""Experiment trackers a search reports to (``--log mlflow,tensorboard``).

Each tracker is a module here that registers its class with ``TRACKERS`` (see ``base.py``);
nothing in this file names one. :func:`open_trackers` starts the ones a run asks for.
"""
from __future__ import annotations

from .base import TRACKERS, Tracker, Trackers, open_trackers

__all__ = ["TRACKERS", "Tracker", "Trackers", "open_trackers"]
