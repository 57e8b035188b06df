"""Pareto search end to end: several objectives, limits, the front (issue #15).

Strategy contracts in a Pareto search run on synthetic metrics; the searches train real
networks on iris/digits for a few epochs, in a real SQLite study.
"""
from __future__ import annotations

import json
import math
import sqlite3

import numpy as np
import optuna
import pytest
from conftest import cli, run_study
from test_contracts import space_for
from test_golden import synthetic_metrics

import nasforge
from nasforge import pareto
from nasforge.config import build_config
from nasforge.errors import NasforgeError
from nasforge.objectives import Goal
from nasforge.strategies import STRATEGIES, make_strategy
from nasforge.strategies.ga import Member, selection_keys

FAST = {"train": {"epochs": 3, "patience": 0}, "space": {"max_layers": 2, "max_units": 32}}
FAST_FLAGS = ["--epochs", "3", "--patience", "0", "--max-layers", "2", "--max-units", "32"]
TWO = Goal(["accuracy", "params"])


def mo_strategy(name: str, seed: int = 0):
    return make_strategy(name, space_for(name), np.random.default_rng(seed), 30, goal=TWO)


def drive(strategy, n: int) -> list:
    out = []
    for number in range(n):
        proposal = strategy.ask()
        proposal.trial = number
        metrics = synthetic_metrics(proposal.genome)
        strategy.tell(proposal, None if metrics is None else metrics["val_acc"], metrics)
        out.append(proposal)
    return out


# --- selection under Pareto dominance ---
def test_selection_keys_rank_fronts_then_crowding_and_put_infeasible_last():
    members = [Member(None, 0.0, i, params=p, order=i, point=pt, violation=v) for i, (pt, p, v) in enumerate([
        ((0.9, -100.0), 100, 0.0), ((0.8, -10.0), 10, 0.0), ((0.85, -50.0), 50, 0.0),  # front 0
        ((0.7, -200.0), 200, 0.0),  # dominated
        ((0.99, -1.0), 1, 0.5)])]  # dominates everything, but breaks a limit
    keys = selection_keys(members, multi=True)
    order = sorted(range(5), key=lambda i: keys[i], reverse=True)
    assert set(order[:3]) == {0, 1, 2} and order[3:] == [3, 4]
    assert keys[2] < keys[0] and keys[2] < keys[1]  # the middle of the front is the most crowded
    single = selection_keys([Member(None, 0.9, 0, violation=0.1), Member(None, 0.5, 1)], multi=False)
    assert single[1] > single[0]  # within the limits beats a better fitness over them


def test_selection_spreads_sizes_on_log10_so_small_models_count_as_much_as_large_ones():
    """Front (accuracy, params): 100, 200, 10,000, 50,000, 100,000 parameters at evenly rising
    accuracy. On a linear axis the 200-parameter model sits next to the 100 one (gap 9,900 of
    99,900) and 50,000 looks lonelier; on log10 its gap is 2 of 3 decades against 50,000's 1."""
    sizes, accuracies = [100, 200, 10_000, 50_000, 100_000], [0.80, 0.85, 0.90, 0.95, 1.00]
    metrics = [{"val_acc": a, "params": p} for a, p in zip(accuracies, sizes)]
    assert TWO.ranking_point(metrics[1]) == (0.85, pytest.approx(-math.log10(200)))
    assert TWO.point(metrics[1]) == (0.85, -200.0)  # what the study stores stays in its units
    members = [Member.told(TWO, None, m["val_acc"], i, m, params=m["params"], order=i) for i, m in enumerate(metrics)]
    keys = selection_keys(members, multi=True)
    assert keys[1][1] == pytest.approx(0.5 + 2 / 3) and keys[3][1] == pytest.approx(0.5 + 1 / 3)
    linear = pareto.rank_keys([TWO.point(m) for m in metrics])
    assert linear[1][1] < linear[3][1]  # the order the log scale reverses
    fps = Goal(["accuracy", "fps"]).measures[1]
    assert fps.ranked(1000.0) == pytest.approx(3.0) and fps.unranked(3.0) == pytest.approx(1000.0)
    assert TWO.measures[1].unranked(TWO.measures[1].ranked(1210.0)) == pytest.approx(1210.0)


@pytest.mark.parametrize("name", [n for n in STRATEGIES.names() if n != "random"])
def test_population_strategies_select_the_front_and_replay_exactly(name):
    """Each population strategy, given two objectives, runs, repeats itself under the same seed,
    and keeps non-dominated members: its chosen parents come mostly from the told front."""
    a, b = drive(mo_strategy(name), 24), drive(mo_strategy(name), 24)
    assert [p.genome.id for p in a] == [p.genome.id for p in b]
    told = {p.trial: synthetic_metrics(p.genome) for p in a}
    parents = [t for p in a for t in p.parents]
    assert parents, f"{name} bred no children in 24 asks"
    ok = {t: m for t, m in told.items() if m is not None}
    front = {list(ok)[i] for i in pareto.pareto_front([TWO.point(m) for m in ok.values()])}
    ranks = {}
    points = [TWO.point(m) for m in ok.values()]
    for depth, layer in enumerate(pareto.sort_fronts(points)):
        for i in layer:
            ranks[list(ok)[i]] = depth
    mean_parent_rank = np.mean([ranks[t] for t in parents])
    mean_rank = np.mean(list(ranks.values()))
    assert mean_parent_rank < mean_rank, (name, mean_parent_rank, mean_rank, front)


def test_evolution_tournament_differs_from_the_single_objective_one():
    single = drive(make_strategy("evolution", space_for("evolution"), np.random.default_rng(0), 30), 30)
    multi = drive(mo_strategy("evolution"), 30)
    assert [p.genome.id for p in single] != [p.genome.id for p in multi]


# --- configuration and bad input ---
@pytest.mark.parametrize("args,needle", [
    (["--objectives", "accuracy,speed"], "unknown objective 'speed'"),
    (["--objectives", "accuracy,accuracy"], "named twice"),
    (["--objectives", "accuracy"], "two or more objectives"),
    (["--objectives", "accuracy,params", "--weights", "accuracy=1"], "not both"),
    (["--max-latency-ms", "-1"], "max_latency_ms"),
    (["--max-size-kb", "0"], "max_size_kb"),
    (["--max-size-kb", "0.01"], "none of 64 random networks"),
    (["--max-params", "5"], "--max-params 5 may be too small"),
])
def test_bad_objectives_and_limits_are_one_line_and_write_nothing(tmp_path, args, needle):
    out = tmp_path / "r"
    r = cli("search", "--dataset", "iris", "--budget", 2, "--out", out, "--quiet", *args)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not out.exists()


def test_a_table_benchmark_refuses_objectives():
    with pytest.raises(NasforgeError, match="leave out --objectives"):
        build_config({"benchmark": {"name": "nb201", "file": "x.csv"}, "objectives": ["accuracy", "params"]})


# --- real searches ---
def _run(out, **kw):
    return run_study(out, build_config({"data": {"dataset": "iris"}, "budget": 8, "seed": 0, **FAST, **kw}))


def test_two_objective_search_stores_two_directions_and_a_non_dominated_front(tmp_path):
    out = tmp_path / "mo"
    trials = _run(out, objectives=["accuracy", "latency"])
    study = optuna.load_study(study_name=json.loads((out / "run.json").read_text())["study"],
                              storage=f"sqlite:///{out / 'study.db'}")
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    done = [t for t in trials if t.state == "complete"]
    assert len(done) == 8 and all(t.values == [t.metrics["val_acc"], t.metrics["latency_ms"]] for t in done)
    result = nasforge.open_run(out)
    front = result.front
    assert front and all(not pareto.dominates(o.point, f.point) for f in front for o in done)
    assert {t.number for t in study.best_trials} == {t.number for t in front}  # optuna agrees
    assert result.best in front
    assert result.best.number == front[pareto.knee([t.point for t in front])].number
    metrics = json.loads((out / "best" / "metrics.json").read_text())
    assert metrics["chosen"] == "the knee of the Pareto front" and metrics["trial"] == result.best.number


def test_multi_objective_run_resumes_like_an_uninterrupted_one(tmp_path):
    kw = {"objectives": ["accuracy", "params"], "strategy": {"name": "evolution", "population_size": 4}}
    whole = _run(tmp_path / "whole", **{**kw, "budget": 10})
    _run(tmp_path / "parts", **{**kw, "budget": 5})
    parts = _run(tmp_path / "parts", **{**kw, "budget": 10})

    def sequence(trials):
        return [(t.genome, t.values, t.parents) for t in sorted(trials, key=lambda t: t.told_seq)]

    assert sequence(parts) == sequence(whole)
    assert any(t.parents for t in whole)  # the resumed part bred children from the replayed population


def test_size_limit_skips_candidates_before_training_without_spending_the_budget(tmp_path):
    out = tmp_path / "small"
    trials = _run(out, objectives=["accuracy", "size"], constraints={"max_size_kb": 4.0},
                  space={"max_layers": 2, "max_units": 64})
    skipped = [t for t in trials if t.state == "skipped"]
    done = [t for t in trials if t.finished]
    assert len(done) == 8 and skipped, "a 4 KB limit should rule some 64-unit networks out"
    assert all(t.metrics["size_bytes"] > 4000 and "skipped before training" in t.error for t in skipped)
    assert all(not (out / "models" / f"trial-{t.number:05d}.pt").exists() for t in skipped)
    assert all(t.metrics["size_bytes"] <= 4000 for t in done if t.state == "complete")
    with sqlite3.connect(out / "study.db") as db:
        states = {s for (s,) in db.execute("select state from trials")}
    assert "PRUNED" in states
    again = _run(out, objectives=["accuracy", "size"], constraints={"max_size_kb": 4.0},
                 space={"max_layers": 2, "max_units": 64})  # resuming a finished run evaluates nothing
    assert len(again) == len(trials)


def test_a_limit_no_trained_candidate_meets_stops_after_the_first_population(tmp_path):
    out = tmp_path / "fast"
    r = cli("search", "--dataset", "iris", "--objectives", "accuracy,latency", "--max-latency-ms", "0.000001",
            "--strategy", "evolution", "--population", "3", "--budget", 8, "--out", out, "--quiet", *FAST_FLAGS)
    assert r.returncode == 2 and "no candidate meets the limits" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    trials = json.loads(cli("show", out, "--json").stdout)
    assert len([t for t in trials if t["state"] == "complete"]) == 3  # kept, not lost


def test_show_front_and_export_any_trial_of_the_front(tmp_path):
    out = tmp_path / "front"
    _run(out, objectives=["accuracy", "params"])
    r = cli("show", out, "--front")
    assert r.returncode == 0, r.stderr
    assert "Pareto front" in r.stdout and "accuracy (max)" in r.stdout and "params (min)" in r.stdout
    front = json.loads(cli("show", out, "--front", "--json").stdout)
    assert sum(t["chosen"] for t in front) == 1
    assert {t["trial"] for t in front} == {t.number for t in nasforge.open_run(out).front}
    other = next(t for t in front if not t["chosen"]) if len(front) > 1 else front[0]
    target = tmp_path / "exported"
    r = cli("export", out, "--trial", other["trial"], "--format", "onnx", "--output", target)
    assert r.returncode == 0, r.stderr
    assert list(target.glob("*.onnx")) and json.loads(next(target.glob("*genome*.json")).read_text()) == next(
        t["genome"] for t in front if t["trial"] == other["trial"])
    table = cli("show", out)
    assert "*chosen*" in table.stdout and "objectives" in table.stdout
    trained = cli("train", out, "--epochs", "2")
    assert trained.returncode == 0 and "the knee of the Pareto front" in trained.stdout, trained.stderr
    single = tmp_path / "single"
    _run(single, budget=2)
    r = cli("show", single, "--front")
    assert r.returncode == 2 and "one objective" in r.stderr


def test_show_top_orders_a_front_by_crowding_with_sizes_on_log10(tmp_path, monkeypatch):
    from nasforge import runs
    from nasforge.cli.reading import top_trials
    from nasforge.storage import TrialRecord

    # A (0.90, 100) and D (0.96, 100,000) are the ends. Crowding of B (0.93, 200) and C (0.95,
    # 10,000): accuracy gaps 0.05/0.06 and 0.03/0.06; parameter gaps on log10 (4-2)/3 and
    # (5-2.30)/3, so B 1.50 > C 1.40 (on a linear axis C would come first: 0.93 < 1.50)
    front = [("A", 0.90, 100), ("B", 0.93, 200), ("C", 0.95, 10_000), ("D", 0.96, 100_000)]
    records = [TrialRecord(number=i, state="complete", genome={"name": name}, fitness=None, values=[acc, params],
                           point=(acc, -params)) for i, (name, acc, params) in enumerate(front)]
    records.append(TrialRecord(number=4, state="complete", genome={"name": "E"}, fitness=None, values=[0.5, 10**6],
                               point=(0.5, -10**6)))  # dominated: last
    monkeypatch.setattr(runs, "read_stored_config", lambda run: {"objectives": ["accuracy", "params"]})
    assert [t.genome["name"] for t in top_trials(tmp_path, records, 5)] == ["A", "D", "B", "C", "E"]
    assert [t.genome["name"] for t in top_trials(tmp_path, records, 3)] == ["A", "D", "B"]


# --- cheap objectives first ---
def test_screen_trains_what_widens_the_front_and_thins_out_crowded_places():
    from nasforge import screening

    trained = [(3.0,), (3.01,), (3.02,), (3.03,), (4.5,)]
    front = [(3.0,)]
    assert screening.chance((2.0,), trained, front) == 1.0  # cheaper than every front member: always tried
    crowded = screening.chance((3.01,), trained, front)
    sparse = screening.chance((4.0,), trained, front)
    assert screening.FLOOR <= crowded < sparse <= 1.0
    assert screening.chance((3.01,), trained, []) == 1.0  # no front yet: nothing to compare with
    assert not screening.applies(Goal(["params", "size"])) and screening.applies(TWO)
    assert not screening.applies(Goal(["accuracy", "latency"]))


def test_screened_candidates_are_stored_skipped_and_replayed_on_resume(tmp_path, monkeypatch):
    from nasforge import screening

    monkeypatch.setattr(screening, "chance", lambda *a: 0.4)
    kw = {"objectives": ["accuracy", "params"], "strategy": {"name": "evolution", "population_size": 3}}
    whole = _run(tmp_path / "whole", **{**kw, "budget": 9})
    screened = [t for t in whole if t.state == "skipped"]
    assert screened and all("cheap-objectives screen" in t.error and t.metrics["params"] > 0 for t in screened)
    assert sum(t.finished for t in whole) == 9
    _run(tmp_path / "parts", **{**kw, "budget": 5})
    parts = _run(tmp_path / "parts", **{**kw, "budget": 9})
    assert [(t.genome, t.state, t.values) for t in parts] == [(t.genome, t.state, t.values) for t in whole]
    off = _run(tmp_path / "off", **{**kw, "budget": 9}, screening=False)
    assert not [t for t in off if t.state == "skipped" and "screen" in t.error]
