"""The built-in colors dataset: size, features, known colours, rare-class merging."""

from collections import Counter

import numpy as np
import pytest

from nasforge.data.colors import load_colors, rgb_to_hsv, rgb_to_lab


def _row(name_hex: str, X: np.ndarray) -> int:
    """Index of the first row whose RGB equals the hex colour (rows are unique colours)."""
    h = name_hex.lstrip("#")
    target = np.array([int(h[i : i + 2], 16) for i in (0, 2, 4)]) / 255.0
    hits = np.flatnonzero(np.all(np.abs(X[:, :3] - target) < 1e-6, axis=1))
    assert len(hits) == 1, name_hex
    return int(hits[0])


def test_defaults_rows_and_classes():
    X, y, names = load_colors()
    assert X.shape == (949, 3) and X.dtype == np.float32
    assert y.shape == (949,) and y.dtype.kind == "U"
    assert names == ["red", "green", "blue"]
    counts = Counter(y.tolist())
    assert len(counts) == 24
    assert counts["other"] == 9 and counts["green"] == 95 and counts["orange"] == 12
    assert not {"white", "black", "yellow ochre"} & set(counts)
    assert X.min() >= 0.0 and X.max() <= 1.0


def test_other_labels():
    _, y, _ = load_colors(label="color_type")
    assert len(set(y.tolist())) == 11 and len(y) == 949
    _, y, _ = load_colors(label="color_or_neutral", min_class_size=0)
    assert set(y.tolist()) == {"color", "neutral"}


@pytest.mark.parametrize(
    "features, width",
    [("rgb", 3), ("hsv", 3), ("lab", 3), ("rgb+hsv+lab", 9), ("lab, rgb", 6), ("RGB+rgb", 3)],
)
def test_feature_shapes(features, width):
    X, y, names = load_colors(features)
    assert X.shape == (949, width) and len(names) == width and np.isfinite(X).all()


def test_feature_order_follows_request():
    X, _, names = load_colors("lab,rgb")
    assert names[:3] == ["lab_l", "lab_a", "lab_b"] and names[3:] == ["red", "green", "blue"]
    Xr, _, _ = load_colors("rgb")
    np.testing.assert_array_equal(X[:, 3:], Xr)


def test_known_colours():
    X, y, _ = load_colors("rgb+hsv+lab", min_class_size=0)
    red = _row("#e50000", X)  # xkcd "red"
    np.testing.assert_allclose(X[red, :3], [229 / 255, 0, 0], atol=1e-6)
    assert X[red, 3] == pytest.approx(0.0) and X[red, 4] == pytest.approx(1.0)
    assert y[red] == "orange red"  # the survey's family for xkcd "red"
    white = _row("#ffffff", X)
    np.testing.assert_allclose(X[white, 6:], [100.0, 0.0, 0.0], atol=0.01)
    assert y[white] == "white"
    black = _row("#000000", X)
    np.testing.assert_allclose(X[black, 6:], [0.0, 0.0, 0.0], atol=1e-6)


def test_conversions_against_reference_values():
    # Published sRGB -> Lab (D65) values for the primaries.
    lab = rgb_to_lab(np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]))
    np.testing.assert_allclose(
        lab, [[53.24, 80.09, 67.20], [87.73, -86.18, 83.18], [32.30, 79.19, -107.86]], atol=0.05
    )
    hsv = rgb_to_hsv(np.array([[0, 1.0, 0], [0, 0, 1.0], [0.5, 0.5, 0.5], [1.0, 0, 0.5]]))
    np.testing.assert_allclose(
        hsv, [[1 / 3, 1, 1], [2 / 3, 1, 1], [0, 0, 0.5], [330 / 360, 1, 1]], atol=1e-9
    )


def test_rare_families_merge_into_other():
    _, y_all, _ = load_colors(min_class_size=0)
    raw = Counter(y_all.tolist())
    assert len(raw) == 26 and sum(raw.values()) == 949

    _, y, _ = load_colors(min_class_size=20)
    merged = {c for c, n in raw.items() if n < 20}
    counts = Counter(y.tolist())
    assert counts["other"] == sum(raw[c] for c in merged) == 103
    assert set(counts) == (set(raw) - merged) | {"other"}
    assert len(y) == 949


def test_too_small_other_is_dropped():
    # Only "white" (2 colours) is below 3, and an "other" of 2 is too small: drop its rows.
    X, y, _ = load_colors(min_class_size=3)
    assert len(y) == 947 and X.shape == (947, 3)
    assert "white" not in y and "other" not in y
    assert len(set(y.tolist())) == 25


@pytest.mark.parametrize(
    "kwargs", [{"features": "rgb+xyz"}, {"features": " + "}, {"label": "xkcd"}]
)
def test_bad_arguments_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        load_colors(**kwargs)
