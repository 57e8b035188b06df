"""Each search method and the baselines command from the command line, end to end on tiny budgets."""
import json

import pytest
from conftest import cli

pytestmark = pytest.mark.slow


def shown(out):
    r = cli("show", out, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_ts_enas_from_the_cli_records_stage_and_generation(tmp_path):
    out = tmp_path / "ts"
    r = cli("search", "--dataset", "digits-images", "--strategy", "ts-enas", "--budget", 5, "--seed", 0,
            "--population", 4, "--epochs", 1, "--patience", 0, "--min-cells", 2, "--max-cells", 3, "--channels", 4,
            "--no-inheritance", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "best: trial" in r.stdout
    trials = shown(out)
    assert len(trials) == 5 and all(t["genome"]["family"] == "cells" for t in trials)
    assert all(t["info"]["stage"] in ("rough", "fine") and "generation" in t["info"] for t in trials)
    assert not (out / "cell_weights.pt").exists()  # --no-inheritance: every individual from scratch


def test_bilevel_from_the_cli_prints_the_trade_off(tmp_path):
    out = tmp_path / "bl"
    r = cli("search", "--dataset", "wdbc", "--strategy", "bilevel", "--budget", 4, "--seed", 0, "--lower-level", "de",
            "--max-layers", 2, "--max-units", 16, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "chosen (min F)" in r.stdout and "most accurate" in r.stdout
    assert len(shown(out)) == 4


def test_expert_rules_designer_from_the_cli(tmp_path):
    out = tmp_path / "ex"
    r = cli("search", "--dataset", "digits", "--strategy", "expert", "--designer", "rules", "--budget", 3,
            "--seed", 0, "--epochs", 2, "--patience", 0, "--max-units", 32, "--out", out)
    assert r.returncode == 0, r.stderr
    trials = shown(out)
    assert len(trials) == 3
    fired = [t["info"]["rules"] for t in trials[1:] if t["info"].get("rules")]
    assert fired and all(f["instructions"] for firings in fired for f in firings)  # Table 3 rules, with instructions


def test_baselines_command_on_iris():
    r = cli("baselines", "--dataset", "iris", "--seed", 0, "--mlp-configs", 4)
    assert r.returncode == 0, r.stderr
    for name in ("tuned_mlp", "logistic_regression", "svm_rbf", "random_forest"):
        assert name in r.stdout, r.stdout


def test_baselines_unknown_dataset_is_one_line():
    r = cli("baselines", "--dataset", "nope")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "unknown dataset" in r.stderr
