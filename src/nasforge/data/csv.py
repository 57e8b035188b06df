"""User CSV files: numeric and categorical columns, any label type.

Column rules (README "Your own CSV"):
- the target column's rows that are empty are dropped (a label cannot be imputed);
- a column whose non-empty values all parse as numbers is numeric; a column that is mostly
  numbers (at least 90 %) but holds a few other strings is an error naming the first bad
  value, since that is almost always a typo or a unit left in the data;
- every other column is categorical (one-hot encoded); a categorical column with more than
  ``max_categories`` distinct values (an id, free text) is an error suggesting ``--drop``;
- numbers written with a decimal comma (``1,5`` in a semicolon-separated file) are numbers;
- infinite values, and numbers beyond ``MAX_MAGNITUDE`` (their squares overflow when the
  column is standardised), are an error naming the column and the row: there is no honest
  value to put in their place;
- the file is read as UTF-8 with or without a byte-order mark; a file whose delimiter cannot
  be detected is read as comma-separated.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import NasforgeError

MAX_MAGNITUDE = 1e100


DELIMITERS = ",;\t|"


def _delimiter(path: Path) -> str:
    """The file's delimiter among ``DELIMITERS`` by its first lines; comma when they do not tell
    (one column, an empty file)."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        sample = handle.read(64 * 1024)
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def _read_frame(path: Path) -> pd.DataFrame:
    """The table with its detected delimiter; any failure is one line naming the file."""
    try:
        return pd.read_csv(path, sep=_delimiter(path), engine="python", skipinitialspace=True, encoding="utf-8-sig")
    except OSError as exc:
        raise NasforgeError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, csv.Error) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NasforgeError(f"{path} is not a readable CSV file: {reason}") from None


def read_csv(path: str | Path, target: str, drop: tuple[str, ...] = (), max_categories: int = 100) -> tuple[pd.DataFrame, pd.Series]:
    path = Path(path)
    if not path.is_file():
        raise NasforgeError(f"CSV file not found: {path}")
    frame = _read_frame(path)
    frame.columns = [str(c).replace("\x00", "").strip() for c in frame.columns]
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
    empty = [c for c in features.columns if features[c].isna().all()]
    if empty:
        raise NasforgeError(f"{path.name}: column {empty[0]!r} has no values; leave it out with --drop {empty[0]!r}")
    return features, frame[target]


def _finite(values: pd.Series, file: str) -> pd.Series:
    """``values`` as floats; an infinite or overflowing number is an error naming it."""
    values = values.astype(float)
    bad = values[values.abs() > MAX_MAGNITUDE]  # inf included; NaN (missing) is not
    if len(bad):
        raise NasforgeError(f"{file}: column {values.name!r} holds {float(bad.iloc[0]):g} (data row {bad.index[0] + 1}); "
                            f"values must be finite and at most {MAX_MAGNITUDE:g} in magnitude")
    return values


def _numbers(texts: pd.Series) -> pd.Series:
    """Texts as numbers (NaN where one is not), a decimal comma read as a point."""
    numbers = pd.to_numeric(texts, errors="coerce")
    commas = texts.str.fullmatch(r"[+-]?\d*,\d+(?:[eE][+-]?\d+)?")
    if commas.any():
        numbers = numbers.where(~commas, pd.to_numeric(texts.str.replace(",", ".", regex=False), errors="coerce"))
    return numbers


def _typed_column(col: pd.Series, file: str, max_categories: int) -> pd.Series:
    if pd.api.types.is_bool_dtype(col):
        return col.astype(float)
    if pd.api.types.is_numeric_dtype(col):
        return _finite(col, file)
    present = col.dropna().astype(str).str.strip()
    present = present[present != ""]
    numbers = _numbers(present)
    if len(present) and numbers.notna().all():
        return _finite(_numbers(col.astype(str).str.strip()).rename(col.name), file)
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
