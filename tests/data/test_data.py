import numpy as np
import pandas as pd
import pytest
import torch

from nasforge.data import load_task
from nasforge.errors import NasforgeError


@pytest.mark.parametrize("name,n,classes", [("digits", 1797, 10), ("wdbc", 569, 2), ("iris", 150, 3), ("wine", 178, 3)])
def test_builtin_datasets_load_offline(name, n, classes):
    task = load_task(name, seed=0)
    assert len(task.y_train) + len(task.y_val) + len(task.y_test) == n
    assert task.n_classes == classes
    assert task.X_train.dtype == torch.float32 and task.y_train.dtype == torch.int64


def test_split_is_stratified_disjoint_and_seeded():
    a, b, c = load_task("iris", seed=1), load_task("iris", seed=1), load_task("iris", seed=2)
    assert torch.equal(a.X_train, b.X_train) and not torch.equal(a.X_train, c.X_train)
    assert (len(a.y_train), len(a.y_val), len(a.y_test)) == (90, 30, 30)
    for y in (a.y_train, a.y_val, a.y_test):  # iris has 50 per class: stratified means equal shares
        counts = torch.bincount(y)
        assert counts.max() - counts.min() <= 1
    def rows(X):
        return {tuple(r) for r in X.numpy().round(6).tolist()}
    assert not rows(a.X_train) & rows(a.X_test)


def test_standardisation_uses_training_statistics_only():
    task = load_task("wine", seed=0)
    assert torch.allclose(task.X_train.mean(0), torch.zeros(13), atol=1e-5)
    assert torch.allclose(task.X_train.std(0, unbiased=False), torch.ones(13), atol=1e-4)
    assert not torch.allclose(task.X_test.mean(0), torch.zeros(13), atol=1e-3)  # test is not refitted


def write(tmp_path, frame, name="data.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_csv_numeric_categorical_missing_and_any_labels(tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame({
        "size": rng.normal(size=n),
        "colour": rng.choice(["red", "green", "blue"], size=n),
        "count": rng.integers(0, 5, size=n).astype(float),
        "label": pd.Series(rng.choice([True, False], size=n), dtype=object),
    })
    frame.loc[3, "size"] = np.nan
    frame.loc[5, "colour"] = np.nan
    frame.loc[7, "label"] = np.nan  # dropped: a label cannot be imputed
    task = load_task(csv=write(tmp_path, frame), target="label", seed=0)
    assert task.classes == ["False", "True"]
    assert len(task.y_train) + len(task.y_val) + len(task.y_test) == n - 1
    assert "colour_red" in task.feature_names and "colour_<missing>" in task.feature_names
    assert task.X_train.shape[1] == len(task.feature_names)
    assert torch.isfinite(task.X_train).all() and torch.isfinite(task.X_test).all()


@pytest.mark.parametrize("frame,target,message", [
    (pd.DataFrame({"a": range(9), "y": ["x"] * 9}), "y", "at least 2"),
    (pd.DataFrame({"a": range(9), "y": [0] * 8 + [1]}), "y", "at least 3"),
    (pd.DataFrame({"a": range(9), "y": [0, 1, 2] * 3}), "label", "not in"),
    (pd.DataFrame({"a": [str(i) for i in range(19)] + ["12kg"], "y": [0, 1] * 10}), "y", "12kg"),
    (pd.DataFrame({"id": [f"u{i}" for i in range(200)], "y": [0, 1] * 100}), "y", "--drop"),
])
def test_bad_csv_gives_clear_error(tmp_path, frame, target, message):
    with pytest.raises(NasforgeError, match=message):
        load_task(csv=write(tmp_path, frame), target=target)


def test_drop_column_and_garbage_file(tmp_path):
    frame = pd.DataFrame({"id": [f"u{i}" for i in range(200)], "v": range(200), "y": [0, 1] * 100})
    task = load_task(csv=write(tmp_path, frame), target="y", drop=("id",))
    assert task.feature_names == ["v"]
    garbage = tmp_path / "g.csv"
    garbage.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(NasforgeError):
        load_task(csv=garbage, target="y")
    with pytest.raises(NasforgeError, match="unknown dataset"):
        load_task("mnist-99")
