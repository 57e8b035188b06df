"""Datasets that ship with installed packages: nothing is downloaded, ever."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd
from sklearn import datasets as skd


@dataclass(frozen=True)
class Builtin:
    name: str
    description: str
    load: Callable[[], tuple[pd.DataFrame, pd.Series]]


def _sklearn(loader: Callable, class_names: bool = True) -> Callable[[], tuple[pd.DataFrame, pd.Series]]:
    def load() -> tuple[pd.DataFrame, pd.Series]:
        bunch = loader(as_frame=True)
        target = bunch.target
        if class_names and hasattr(bunch, "target_names"):
            target = target.map(dict(enumerate(map(str, bunch.target_names))))
        return bunch.data, target.rename("target")

    return load


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in [
        Builtin("digits", "8x8 handwritten digits as 64 pixel features, 1,797 rows, 10 classes (scikit-learn)",
                _sklearn(skd.load_digits, class_names=False)),
        Builtin("wdbc", "Wisconsin diagnostic breast cancer, 569 rows, 30 features, 2 classes (scikit-learn)",
                _sklearn(skd.load_breast_cancer)),
        Builtin("iris", "Iris flowers, 150 rows, 4 features, 3 classes (scikit-learn)", _sklearn(skd.load_iris)),
        Builtin("wine", "Wine cultivars, 178 rows, 13 features, 3 classes (scikit-learn)", _sklearn(skd.load_wine)),
    ]
}
