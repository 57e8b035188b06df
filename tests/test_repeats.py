"""No repeats (issue #20): a genome the run evaluated before is never paid for twice."""
from __future__ import annotations

import json
from collections import Counter

from conftest import SHARED_DATA, cli, run_study

from nasforge.config import build_config
from nasforge.spaces import genome_from_dict


def table_run(out, repeats: bool):
    return run_study(out, build_config({
        "budget": 80, "seed": 0, "repeats": repeats, "strategy": {"name": "evolution", "population_size": 8,
                                                                   "sample_size": 3},
        "benchmark": {"file": str(SHARED_DATA / "nb201_12epoch.csv"), "dataset": "cifar10"}}))


def ids(trials):
    return Counter(genome_from_dict(t.genome).id for t in trials)


def test_evolution_pays_once_per_genome_and_is_told_the_stored_result(tmp_path):
    old = table_run(tmp_path / "old", repeats=True)
    assert max(ids([t for t in old if t.finished]).values()) > 1  # the behaviour this replaces
    new = table_run(tmp_path / "new", repeats=False)
    finished = [t for t in new if t.finished]
    repeats = [t for t in new if t.repeat_of is not None]
    assert len(finished) == 80 and max(ids(finished).values()) == 1  # the whole budget on distinct cells
    assert repeats and all(t.state == "skipped" and "result is reused" in t.error for t in repeats)
    by_number = {t.number: t for t in new}
    for t in repeats:
        original = by_number[t.repeat_of]
        assert original.finished and original.genome == t.genome and t.metrics == original.metrics
    # resuming replays the repeats (told with the stored fitness) and continues the same search
    more = run_study(tmp_path / "new", build_config({
        "budget": 90, "seed": 0, "strategy": {"name": "evolution", "population_size": 8, "sample_size": 3},
        "benchmark": {"file": str(SHARED_DATA / "nb201_12epoch.csv"), "dataset": "cifar10"}}))
    assert sum(t.finished for t in more) == 90 and max(ids([t for t in more if t.finished]).values()) == 1


def test_an_exhausted_space_ends_the_run_cleanly(tmp_path):
    """Two genomes in the space, a budget of six: two are trained, then the run ends, saying why."""
    toml = tmp_path / "tiny.toml"
    toml.write_text('budget = 6\n[data]\ndataset = "iris"\n[strategy]\nname = "random"\n[train]\nepochs = 2\n'
                    '[space]\nmin_layers = 1\nmax_layers = 1\nmin_units = 8\nmax_units = 8\n'
                    'activations = ["relu", "tanh"]\ndropouts = [0.0]\n')
    out = tmp_path / "tiny"
    r = cli("search", "--config", toml, "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    assert "the search space looks exhausted" in r.stderr and "(2 distinct ones)" in r.stderr, r.stderr
    trials = sorted(json.loads(cli("show", out, "--json").stdout), key=lambda t: t["told_seq"])
    assert sum(t["state"] == "complete" for t in trials) == 2
    assert all(t["repeat_of"] is not None for t in trials[-100:])  # a hundred repeats in a row ended it
