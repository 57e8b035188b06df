"""nasforge: neural architecture search for your own data.

    import nasforge
    result = nasforge.search("digits", strategy="evolution", budget=40, seed=0, out="runs/digits")
    model = nasforge.load_model("runs/digits")
"""
__version__ = "0.1.0"

from .api import SearchResult, TrainedModel, load_model, open_run, search  # noqa: E402
from .config import SearchConfig  # noqa: E402
from .data import Task, load_task  # noqa: E402
from .errors import NasforgeError  # noqa: E402
from .export import export_model  # noqa: E402
from .final import train_final  # noqa: E402
from .study import Study  # noqa: E402

__all__ = ["search", "open_run", "load_model", "load_task", "train_final", "export_model", "Study", "SearchConfig",
           "SearchResult", "TrainedModel", "Task", "NasforgeError"]
