"""nasforge: neural architecture search for your own data.

    import nasforge
    result = nasforge.search("digits", strategy="evolution", budget=40, seed=0, out="runs/digits")
    model = nasforge.load_model("runs/digits")
"""
from .api import SearchResult, TrainedModel, load_model, open_run, search
from .config import SearchConfig
from .data import Task, load_task
from .errors import NasforgeError
from .study import Study

__all__ = ["search", "open_run", "load_model", "load_task", "Study", "SearchConfig", "SearchResult",
           "TrainedModel", "Task", "NasforgeError"]
__version__ = "0.1.0"
