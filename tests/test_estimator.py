"""NASClassifier and NASRegressor: scikit-learn's own estimator checks, a Pipeline under
cross-validation, raw DataFrames, and the run directory behind every fit."""
import json

import numpy as np
import pandas as pd
import pytest
from conftest import cli
from sklearn.datasets import load_diabetes, load_iris
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from nasforge import NASClassifier, NASRegressor


@pytest.mark.slow
@parametrize_with_checks([NASClassifier(budget=2, epochs=20), NASRegressor(budget=2, epochs=20)])
def test_scikit_learn_estimator_checks(estimator, check):
    """Every check scikit-learn runs on a classifier and a regressor; none is marked as expected to
    fail (the two array-API checks skip themselves unless SCIPY_ARRAY_API is set)."""
    check(estimator)


def test_a_pipeline_cross_validates():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), NASClassifier(budget=2, epochs=40, seed=1))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.8  # iris: a small MLP gets 0.9+
    X, y = load_diabetes(return_X_y=True)
    r2 = cross_val_score(NASRegressor(budget=2, epochs=60, patience=8), X, y, cv=3)
    assert r2.min() > 0.3  # a mean predictor scores ~0


def test_raw_dataframe_with_text_and_missing_values(tmp_path):
    rng = np.random.default_rng(0)
    n = 150
    colour = rng.choice(["red", "green", "blue"], size=n)
    size = rng.normal(size=n)
    label = np.where((colour == "red") | (size > 1), "yes", "no")
    size[::17] = np.nan  # missing: filled with the training median
    frame = pd.DataFrame({"colour": colour, "size": size})
    clf = NASClassifier(budget=2, epochs=60, out=str(tmp_path / "fits")).fit(frame, label)
    assert list(clf.classes_) == ["no", "yes"] and list(clf.feature_names_in_) == ["colour", "size"]
    assert clf.score(frame, label) > 0.85
    proba = clf.predict_proba(frame.head(4))
    assert proba.shape == (4, 2) and np.allclose(proba.sum(1), 1)
    assert set(clf.predict(frame.head(10))) <= {"no", "yes"}
    # the fit is a normal run: the CLI reads it, and fitting the same data again reuses it
    assert clf.run_dir_.parent.parent == tmp_path / "fits"
    shown = json.loads(cli("show", clf.run_dir_, "--json").stdout)
    assert len(shown) == 2
    again = NASClassifier(budget=2, epochs=60, out=str(tmp_path / "fits")).fit(frame, label)
    assert again.run_dir_ == clf.run_dir_ and again.best_trial_ == clf.best_trial_
    assert len(json.loads(cli("show", clf.run_dir_, "--json").stdout)) == 2  # nothing trained twice


def test_labels_of_any_type_come_back_as_given():
    X, y = load_iris(return_X_y=True)
    labels = np.array([10, 2, 33])[y]  # text order would put 10 before 2
    clf = NASClassifier(budget=1, epochs=40).fit(X, labels)
    assert list(clf.classes_) == [2, 10, 33]
    pred = clf.predict(X)
    assert pred.dtype == labels.dtype and (pred == labels).mean() > 0.8


@pytest.mark.parametrize("make, message", [
    (lambda: (NASClassifier(), np.zeros((20, 2)), np.arange(19) % 2), "inconsistent numbers of samples"),
    (lambda: (NASRegressor(), np.zeros((20, 2)), np.r_[np.nan, np.arange(19.0)]), "NaN"),
    (lambda: (NASClassifier(), np.zeros((20, 2)), np.linspace(0, 1, 20)), "Unknown label type"),
    (lambda: (NASRegressor(), np.zeros((5, 2)), np.arange(5.0)), "5 sample"),
    (lambda: (NASClassifier(strategy="nope"), np.zeros((20, 2)), np.arange(20) % 2), "unknown strategy 'nope'"),
])
def test_bad_input_is_a_scikit_learn_value_error(make, message):
    estimator, X, y = make()
    with pytest.raises(ValueError, match=message):
        estimator.fit(X, y)


def test_split_fractions_reach_the_search(tmp_path):
    from nasforge.runs import read_stored_config

    X, y = load_iris(return_X_y=True)
    clf = NASClassifier(budget=1, epochs=5, val_fraction=0.3, test_fraction=0.1).fit(X, y)
    data = read_stored_config(clf.run_dir_)["data"]
    assert data["val_fraction"] == 0.3 and data["test_fraction"] == 0.1
