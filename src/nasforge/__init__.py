"""nasforge: neural architecture search for your own data.

    import nasforge
    result = nasforge.search("digits", strategy="evolution", budget=40, seed=0, out="runs/digits")
    model = nasforge.load_model("runs/digits")

The public names load on first use (PEP 562), so ``import nasforge.cli`` and ``nasforge
--help`` start without importing torch.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "search": ".api", "open_run": ".api", "load_model": ".api", "SearchResult": ".api", "TrainedModel": ".api",
    "SearchConfig": ".config", "Task": ".data", "load_task": ".data", "NasforgeError": ".errors",
    "export_model": ".export", "train_final": ".final", "Study": ".study",
    "NASClassifier": ".estimator", "NASRegressor": ".estimator",
}


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_PUBLIC[name], __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])


__all__ = ["search", "open_run", "load_model", "load_task", "train_final", "export_model", "Study", "SearchConfig",
           "SearchResult", "TrainedModel", "Task", "NasforgeError", "NASClassifier", "NASRegressor"]
