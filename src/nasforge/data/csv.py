"""User CSV files: numeric and categorical columns, any label type.

Column rules (README "Your own CSV"):
- the target column's rows that are empty are dropped (a label cannot be imputed);
- a column whose non-empty values all parse as numbers is numeric; a column that is mostly
  numbers (at least 90 %) but holds a few other strings is an error naming the first bad
  value, since that is almost always a typo or a unit left in the data;
- every other column is categorical (one-hot encoded); a categorical column with more than
  ``max_categories`` distinct values (an id, free text) is an error suggesting ``--drop``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import NasforgeError


def read_csv(path: str | Path, target: str, drop: tuple[str, ...] = (), max_categories: int = 100) -> tuple[pd.DataFrame, pd.Series]:
    path = Path(path)
    if not path.is_file():
        raise NasforgeError(f"CSV file not found: {path}")
    try:
        frame = pd.read_csv(path, sep=None, engine="python", skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise NasforgeError(f"{path} is not a readable CSV file: {str(exc).splitlines()[0]}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if target not in frame.columns:
        raise NasforgeError(f"target column {target!r} is not in {path.name}; columns are: {', '.join(frame.columns)}")
    missing_drop = [c for c in drop if c not in frame.columns]
    if missing_drop:
        raise NasforgeError(f"--drop column(s) {missing_drop} not in {path.name}")
    frame = frame.dropna(subset=[target]).reset_index(drop=True)
    if len(frame) == 0:
        raise NasforgeError(f"{path.name} has no rows with a value in the target column {target!r}")
    features = frame.drop(columns=[target, *drop])
    for column in list(features.columns):
        features[column] = _typed_column(features[column], path.name, max_categories)
    return features, frame[target]


def _typed_column(col: pd.Series, file: str, max_categories: int) -> pd.Series:
    if pd.api.types.is_numeric_dtype(col):
        return col.astype(float)
    present = col.dropna().astype(str).str.strip()
    present = present[present != ""]
    numbers = pd.to_numeric(present, errors="coerce")
    if len(present) and numbers.notna().all():
        return pd.to_numeric(col.astype(str).str.strip().replace("", None), errors="coerce")
    if len(present) and numbers.notna().mean() >= 0.9:
        bad = present[numbers.isna()].iloc[0]
        raise NasforgeError(f"{file}: column {col.name!r} is numeric but holds {bad!r}; fix the value or make it empty")
    if present.nunique() > max_categories:
        raise NasforgeError(
            f"{file}: column {col.name!r} has {present.nunique()} distinct text values (an id or free text?); "
            f"leave it out with --drop {col.name!r}"
        )
    text = col.astype("object").where(col.notna(), np.nan)
    return text.map(lambda v: v.strip() if isinstance(v, str) else v).replace("", np.nan)
