"""Runs and config files made before the registries still open, show and resume.

``tests/fixtures/legacy_runs/`` holds two small runs made by nasforge at commit 6de31e6 (the
last before the search-core refactor): ``bilevel-iris`` (``--strategy bilevel --population 3``)
and ``random-iris`` (``--strategy random --population 5``, a setting random search never had
and silently ignored then). Their stored configuration has the old shape: one flat
``[strategy]`` table with null ``expert``/``two_stage``/``bilevel`` sub-tables, one flat
``[space]`` table with every family's bounds.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import cli

from nasforge.config import build_config
from nasforge.study import load_study

LEGACY = Path(__file__).parent / "fixtures" / "legacy_runs"


def copy_run(name: str, tmp_path: Path) -> Path:
    out = tmp_path / name
    shutil.copytree(LEGACY / name, out)  # its run.json names /tmp/legacy/...: the directory's own study.db is used
    return out


def test_legacy_configs_load_in_the_new_shape(tmp_path):
    bilevel = load_study(copy_run("bilevel-iris", tmp_path))
    assert bilevel.config.strategy.name == "bilevel" and bilevel.config.strategy.population_size == 3
    assert bilevel.config.space.family == "mlp" and bilevel.config.space.max_units == 16
    assert not hasattr(bilevel.config.space, "min_cells")  # the cells bounds of the flat table are dropped
    random = load_study(copy_run("random-iris", tmp_path))
    assert random.config.strategy.model_dump() == {"name": "random"}  # its ignored --population stays ignored
    assert [t.state for t in random.trials()] == ["complete"] * 3


@pytest.mark.parametrize("name, before", [("bilevel-iris", 4), ("random-iris", 3)])
def test_legacy_run_shows_and_resumes_to_a_larger_budget(tmp_path, name, before):
    out = copy_run(name, tmp_path)
    old = json.loads(cli("show", out, "--json").stdout)
    assert len(old) == before
    r = cli("resume", out, "--budget", before + 2, "--quiet")
    assert r.returncode == 0, r.stderr
    new = json.loads(cli("show", out, "--json").stdout)
    assert len(new) == before + 2 and all(t["state"] == "complete" for t in new)
    assert [(t["genome"], t["fitness"]) for t in new[:before]] == [(t["genome"], t["fitness"]) for t in old]


def test_legacy_config_file_sub_tables_are_the_strategy_settings():
    ts = build_config({"strategy": {"name": "ts-enas", "population_size": 6,
                                    "two_stage": {"population": 4, "inheritance": False, "supernet_epochs": 2}}})
    assert (ts.strategy.population_size, ts.strategy.inheritance, ts.strategy.supernet_epochs) == (4, False, 2)
    assert ts.space.family == "cells"
    expert = build_config({"strategy": {"name": "expert", "expert": {"designer": "rules", "thresholds": {"PF": 0.8}}}})
    assert expert.strategy.thresholds.PF == 0.8
    bilevel = build_config({"strategy": {"name": "bilevel", "bilevel": {"population": 5, "rho": 3.0}}})
    assert (bilevel.strategy.population_size, bilevel.strategy.rho) == (5, 3.0)
