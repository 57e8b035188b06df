"""Multi-fidelity search end to end (issue #16): real training on digits in a real SQLite study."""
from __future__ import annotations

import json
import sqlite3

import numpy as np
import optuna
import pytest
import torch
from conftest import cli, kill_after, run_study

import nasforge
from nasforge.config import build_config
from nasforge.loop import trial_seed
from nasforge.spaces import genome_from_dict
from nasforge.study import create_study, load_study

SMALL = {"space": {"max_layers": 2, "max_units": 32}, "train": {"patience": 0}}


def config(kind="asha", budget=12, **kw):
    return build_config({"data": {"dataset": "digits"}, "budget": budget, "seed": 0, **SMALL,
                         "scheduler": {"kind": kind, "min_epochs": 1, "max_epochs": 9, "eta": 3}, **kw})


def story(trials):
    return [(t.ask_index, json.dumps(t.genome, sort_keys=True), t.state, [r["epochs"] for r in t.rungs],
             t.metrics.get("val_acc")) for t in sorted(trials, key=lambda t: t.number) if not t.interrupted]


def test_asha_stops_most_candidates_early_and_keeps_the_rungs_in_the_study(tmp_path):
    out = tmp_path / "asha"
    trials = run_study(out, config())
    pruned = [t for t in trials if t.state == "pruned"]
    complete = [t for t in trials if t.state == "complete"]
    assert len(trials) == 12 and pruned and complete
    assert all(t.rungs[-1]["epochs"] < 9 and t.metrics == t.rungs[-1]["metrics"] for t in pruned)
    assert all([r["epochs"] for r in t.rungs] == [1, 3, 9] for t in complete)
    # nothing here reads speed: only candidates that reach the last rung are timed, all are counted
    assert all("latency_ms" not in t.metrics and "fps" not in t.metrics and t.metrics["params"] > 0 for t in pruned)
    assert all(t.metrics["latency_ms"] > 0 and t.metrics["fps"] > 0 and t.metrics["params"] > 0 for t in complete)
    # below the last rung: no test split, and no training accuracy (evolution does not read it)
    assert all("test_acc" not in t.metrics and "train_acc" not in t.metrics and 0 < t.metrics["val_acc"] <= 1
               for t in pruned)
    assert all("test_acc" in t.metrics and "train_rows_measured" not in t.metrics for t in complete)
    best = nasforge.open_run(out).best
    assert best.state == "complete" and best.metrics["epochs"] == 9  # only fully trained candidates are chosen
    assert not list((out / "models").glob("*.state.pt"))  # training states go once a trial is concluded
    assert all((out / "models" / f"trial-{t.number:05d}.pt").is_file() for t in pruned + complete)
    study = optuna.load_study(study_name=json.loads((out / "run.json").read_text())["study"],
                              storage=f"sqlite:///{out / 'study.db'}")
    frozen = {t.number: t for t in study.trials}
    assert all(frozen[t.number].state == optuna.trial.TrialState.PRUNED for t in pruned)
    assert all(sorted(frozen[t.number].intermediate_values) == [r["epochs"] for r in t.rungs] for t in trials)
    shown = cli("show", out)
    assert "pruned" in shown.stdout and "rung" in shown.stdout
    from nasforge.report import write_report

    page = write_report(out).read_text()
    assert "epochs reached (rung)" in page and "9 (rung 3)" in page and "1 (rung 1)" in page


@pytest.mark.parametrize("settings,early", [
    ({}, False),
    ({"objectives": ["accuracy", "params"]}, False),
    ({"objectives": ["accuracy", "latency"]}, True),
    ({"objectives": ["accuracy", "energy"]}, True),
    ({"constraints": {"max_latency_ms": 50.0}}, True),
    ({"constraints": {"max_size_kb": 50.0}}, False),
    ({"objective": {"accuracy": 0.7, "fps": 0.3}}, True),
    ({"objective": {"accuracy": 0.7, "size": 0.3}}, False),
    ({"strategy": {"name": "expert"}}, True),  # its rules read FPS whatever the weights
])
def test_speed_is_timed_at_the_first_rung_only_when_the_run_reads_it(tmp_path, settings, early):
    from nasforge.data import load_task
    from nasforge.evaluators.training import TrainingEvaluator
    from nasforge.spaces import make_space

    c = config(**settings)
    task = load_task("digits", seed=0)
    evaluator = TrainingEvaluator.from_config(c, task, make_space(c.space, task), tmp_path)
    assert evaluator.speed_at_first_rung is early
    fit = c.strategy.name == "expert"  # the only strategy that reads the train/validation gap
    assert evaluator.train_fit_every_rung is fit
    genome = make_space(c.space, task).sample(np.random.default_rng(0))
    first = evaluator.evaluate(genome, seed=1, until=1)
    assert ("latency_ms" in first.metrics) is early and first.metrics["params"] > 0
    assert "test_acc" not in first.metrics and 0 < first.metrics["val_acc"] <= 1
    if fit:
        rows = first.metrics["train_rows_measured"]  # every 3rd of digits' 1077 training rows: 359 <= 360 validation rows
        assert rows == len(task.X_train[::3]) == 359 and 0 < first.metrics["train_acc"] <= 1
    else:  # nothing reads training accuracy below the last rung: not predicted
        assert "train_acc" not in first.metrics and "train_rows_measured" not in first.metrics
    last = evaluator.evaluate(genome, seed=1, until=9, resume=first.train_state)
    assert last.metrics["latency_ms"] > 0 and last.metrics["fps"] > 0  # the last rung always has it
    assert "train_rows_measured" not in last.metrics and 0 < last.metrics["test_acc"] <= 1  # and every split in full
    if early:
        assert last.metrics["latency_ms"] == first.metrics["latency_ms"]  # timed once, carried on


def test_a_promoted_candidate_equals_one_trained_in_one_go(tmp_path):
    out = tmp_path / "asha"
    trials = run_study(out, config(budget=8))
    promoted = next(t for t in trials if t.state == "complete" and len(t.rungs) == 3)
    study = load_study(out)
    try:
        study.evaluator.train_settings = study.evaluator.train_settings.model_copy(update={"epochs": 9})
        whole = study.evaluator.evaluate(genome_from_dict(promoted.genome), trial_seed(0, promoted.ask_index))
    finally:
        study.close()
    kept = torch.load(out / "models" / f"trial-{promoted.number:05d}.pt")
    assert all(torch.equal(kept[k], whole.state_dict[k]) for k in kept)
    assert whole.metrics["val_acc"] == promoted.metrics["val_acc"]


@pytest.mark.parametrize("kind", ["asha", "sha", "hyperband"])
def test_same_command_same_trials_and_an_interrupted_run_continues_between_rungs(tmp_path, kind):
    whole = run_study(tmp_path / "whole", config(kind, budget=11))
    assert story(whole) == story(run_study(tmp_path / "again", config(kind, budget=11)))
    # stop the same search after 4 concluded trials (with others waiting between rungs), then resume
    cut = tmp_path / "cut"
    study = create_study(cut, config(kind, budget=11))

    def stop(record, s):
        if sum(t.finished for t in s.trials()) >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        study.run(stop)
    study.close()
    between = [t for t in load_study(cut).trials() if t.state == "running"]
    assert any(t.rungs for t in between), "some trial should be waiting between rungs"
    resumed = run_study(cut, config(kind, budget=11))
    assert story(resumed) == story(whole)
    assert not [t for t in resumed if t.state == "running"]


@pytest.mark.slow
def test_kill_9_during_rungs_then_resume_loses_and_repeats_no_rung(tmp_path):
    out = tmp_path / "killed"
    args = ["search", "--dataset", "digits", "--scheduler", "asha", "--max-epochs", "9", "--budget", 10, "--seed", 2,
            "--max-layers", 2, "--max-units", 32, "--patience", 0, "--out", out, "--jsonl"]
    assert len(kill_after(args, 3, pause=0.1)) == 3
    r = cli("resume", out, "--quiet")
    assert r.returncode == 0, r.stderr
    ref = tmp_path / "ref"
    assert cli(*[str(a) if a != out else ref for a in args[:-1]], "--quiet").returncode == 0
    got, want = story(nasforge.open_run(out).trials), story(nasforge.open_run(ref).trials)
    assert [g[:4] for g in got] == [w[:4] for w in want]  # same candidates, same rungs reached, nothing twice
    with sqlite3.connect(out / "study.db") as db:
        assert not db.execute("select count(*) from trials where state = 'RUNNING'").fetchone()[0]


@pytest.mark.parametrize("args,needle", [
    (["--scheduler", "asha", "--eta", "1"], "scheduler.eta"),
    (["--scheduler", "asha", "--min-epochs", "50", "--max-epochs", "9"], "--min-epochs 50 is above --max-epochs 9"),
    (["--scheduler", "asha", "--lower-level", "de"], "halves gradient training"),
    (["--scheduler", "annealing"], "invalid choice"),
    (["--scheduler", "asha", "--benchmark", "nb201", "--bench-file", "x.csv"], "trains nothing"),
])
def test_bad_scheduler_settings_are_one_line(tmp_path, args, needle):
    r = cli("search", "--budget", 2, "--out", tmp_path / "r", "--quiet", *args)
    assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "r").exists()


def test_two_worker_processes_promote_asynchronously_and_finish_the_budget(tmp_path):
    trials = run_study(tmp_path / "two", config(budget=8, executor={"workers": 2}))
    assert sum(t.finished for t in trials) == 8 and not [t for t in trials if t.state == "running"]
    assert {t.state for t in trials} == {"complete", "pruned"}


@pytest.mark.slow
def test_ts_enas_inherits_weights_at_the_first_rung_and_continues_them(tmp_path):
    cfg = build_config({"data": {"dataset": "digits-images"}, "budget": 4, "seed": 0,
                        "strategy": {"name": "ts-enas", "supernet_epochs": 1, "population_size": 2},
                        "scheduler": {"kind": "asha", "max_epochs": 2, "eta": 2}, "train": {"patience": 0}})
    trials = run_study(tmp_path / "ts", cfg)
    assert sum(t.finished for t in trials) == 4
    assert all(t.rungs[0]["metrics"]["inherited"] for t in trials if t.rungs)  # inherited where training began
    assert any(len(t.rungs) == 2 for t in trials)


def test_a_raised_budget_after_a_closed_bracket_resumes_exactly(tmp_path):
    """The last bracket closes when the budget is spent; raising the budget opens a new one.
    An interruption after that replays the close at the point it happened."""
    def grown(out, stop_after=None):
        run_study(out, config("sha", budget=5))
        study = create_study(out, config("sha", budget=11))
        if stop_after is None:
            study.run()
        else:
            def stop(record, s):
                if sum(t.finished for t in s.trials()) >= stop_after:
                    raise KeyboardInterrupt

            with pytest.raises(KeyboardInterrupt):
                study.run(stop)
        study.close()
        return run_study(out, config("sha", budget=11))

    assert story(grown(tmp_path / "a", stop_after=8)) == story(grown(tmp_path / "b"))


def test_a_candidate_failing_at_a_rung_leaves_its_bracket_also_after_resume(tmp_path, monkeypatch):
    """sha waits for every member of a bracket; one that fails must not keep it waiting, in the
    live run or in the scheduler rebuilt on resume (the failure is a stored event too)."""
    from nasforge.errors import TrialFailed
    from nasforge.evaluators.training import TrainingEvaluator

    real = TrainingEvaluator.evaluate

    def flaky(self, genome, seed, until=None, resume=None):
        if seed == trial_seed(0, 2):  # the third ask fails at its first rung
            raise TrialFailed("loss became nan at epoch 1")
        return real(self, genome, seed, until=until, resume=resume)

    monkeypatch.setattr(TrainingEvaluator, "evaluate", flaky)
    whole = run_study(tmp_path / "whole", config("sha", budget=11))
    failed = [t for t in whole if t.state == "failed"]
    assert len(failed) == 1 and failed[0].rungs == [{"rung": 0, "epochs": 1, "seq": failed[0].rungs[0]["seq"],
                                                      "failed": True}]
    cut = tmp_path / "cut"
    study = create_study(cut, config("sha", budget=11))

    def stop(record, s):
        if sum(t.finished for t in s.trials()) >= 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        study.run(stop)
    study.close()
    assert story(run_study(cut, config("sha", budget=11))) == story(whole)
