"""Datasets: built-in ones (``builtin``), CSV tables, image files, and the split ``Task``.

Names are loaded on first use (PEP 562): ``nasforge datasets`` and ``--help`` list the
built-in datasets without importing torch, pandas or scikit-learn.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

from .builtin import BUILTINS

_LAZY = {"Task": ".task", "tabular_task": ".task", "load_task": ".loading", "reload_task": ".loading",
         "IMAGE_FORMATS": ".loading"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_LAZY[name], __name__), name)


__all__ = ["Task", "load_task", "reload_task", "BUILTINS", "IMAGE_FORMATS"]
