"""benchmarks/overhead.py: the store comparison writes the same trials both ways."""
import sys

import optuna
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import overhead  # noqa: E402

from nasforge.storage import RunStore, sqlite_url  # noqa: E402


def test_both_stores_hold_the_same_pruned_trials(tmp_path):
    ours = RunStore(sqlite_url(tmp_path), "ours", create=True)
    theirs = optuna.create_study(storage=f"sqlite:///{tmp_path}/optuna.db", study_name="x")
    assert overhead.store_nasforge(ours, 2) > 0 and overhead.store_optuna(theirs, 2) > 0
    a, b = ours.study.get_trials(), theirs.get_trials()
    assert [t.state for t in a] == [t.state for t in b] == [optuna.trial.TrialState.PRUNED] * 2
    for x, y in zip(a, b):  # what the dashboard shows is the same: value, intermediate values, attributes
        assert (x.value, x.intermediate_values, x.user_attrs) == (y.value, y.intermediate_values, y.user_attrs)
    assert [r.state for r in ours.records()] == ["pruned", "pruned"]


def test_store_rows_give_milliseconds_and_their_ratio():
    [[mine, optunas, ratio]] = overhead.store_rows(repeats=1, n=2)
    assert float(mine) > 0 and float(optunas) > 0
    assert abs(float(ratio) - float(mine) / float(optunas)) < 0.06


def test_rung_rows_time_both_ways_on_both_spaces():
    rows = overhead.rung_rows(repeats=1, genomes=1)
    assert [r[:3] for r in rows] == [["digits", "mlp", "1"], ["digits-images", "net", "1"]]
    for _, _, _, timed, deferred, ratio in rows:
        assert float(timed) > 0 and float(deferred) > 0 and float(ratio) > 0
