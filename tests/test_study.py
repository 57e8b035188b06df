import pytest
from conftest import run_study

import nasforge
from nasforge.config import build_config
from nasforge.errors import NasforgeError
from nasforge.study import create_study

FAST = {"train": {"epochs": 4, "patience": 0}, "space": {"max_layers": 2, "max_units": 32}}


def cfg(**kw):
    return build_config({"data": {"dataset": "iris"}, "budget": 8, "seed": 0, **FAST, **kw})


def sequence(trials):
    done = sorted((t for t in trials if t.finished), key=lambda t: t.told_seq)
    return [(t.genome, t.fitness, t.parents, t.operator) for t in done]


def run(out, config):
    return run_study(out, config)


def test_budget_is_spent_and_best_saved(tmp_path):
    trials = run(tmp_path / "r", cfg())
    assert len(trials) == 8 and all(t.state == "complete" for t in trials)
    assert (tmp_path / "r" / "study.db").is_file()
    assert (tmp_path / "r" / "best" / "model.pt").is_file()
    model = nasforge.load_model(tmp_path / "r")
    task = nasforge.load_task("iris", seed=0)
    assert model.predict_proba(task.X_test).shape == (30, 3)


def test_continuing_equals_an_uninterrupted_run(tmp_path):
    whole = run(tmp_path / "whole", cfg(budget=12))
    run(tmp_path / "parts", cfg(budget=5))
    parts = run(tmp_path / "parts", cfg(budget=12))  # same settings, bigger budget: continues
    assert sequence(parts) == sequence(whole)
    assert [t.number for t in parts] == list(range(12))  # nothing evaluated twice


def test_trial_left_running_is_marked_interrupted_and_its_ask_rerun(tmp_path):
    whole = run(tmp_path / "whole", cfg(budget=8))
    run(tmp_path / "cut", cfg(budget=5))
    # simulate a process killed during trial 5: the ask is stored as running, never told
    study = create_study(tmp_path / "cut", cfg(budget=8))
    from nasforge.loop import SearchLoop

    strategy = study.strategy()
    pending, next_ask, tells = SearchLoop(study).replay(strategy, study.trials())
    proposal = strategy.ask()
    study.store.start({"genome": proposal.genome.to_dict(), "parents": list(proposal.parents),
                       "operator": proposal.operator, "info": proposal.info, "ask_index": next_ask, "asked_after": tells})
    study.store._ids.clear()  # the process "dies" here
    study.close()
    trials = run(tmp_path / "cut", cfg(budget=8))
    interrupted = [t for t in trials if t.interrupted]
    assert len(interrupted) == 1 and interrupted[0].state == "failed" and "interrupted" in interrupted[0].error
    assert sum(t.finished for t in trials) == 8
    assert sequence(trials) == sequence(whole)


def test_other_settings_in_the_same_directory_are_refused(tmp_path):
    run(tmp_path / "r", cfg(budget=2))
    with pytest.raises(NasforgeError, match="other settings"):
        create_study(tmp_path / "r", cfg(budget=2, seed=1))


def test_failing_candidates_are_recorded_and_the_search_goes_on(tmp_path):
    task = nasforge.load_task("iris", seed=0)
    task.X_train[0, 0] = float("nan")  # every training loss becomes NaN
    study = create_study(tmp_path / "r", cfg(budget=4), task=task)
    try:
        best = study.run()
    finally:
        study.close()
    trials = study.trials()
    assert best is None and len(trials) == 4
    assert all(t.state == "failed" and "loss became nan" in t.error for t in trials)


def test_a_run_of_failures_stops_the_search_and_a_rerun_resumes_it(tmp_path):
    from nasforge.gates import MAX_FAILED_IN_A_ROW

    broken = nasforge.load_task("iris", seed=0)
    broken.X_train[0, 0] = float("nan")  # every training loss becomes NaN: the data, not the candidates
    study = create_study(tmp_path / "r", cfg(budget=MAX_FAILED_IN_A_ROW + 10), task=broken)
    try:
        with pytest.raises(NasforgeError, match=rf"the last {MAX_FAILED_IN_A_ROW} candidates all failed \(the last: "
                                                r"loss became nan.*run the same command to resume"):
            study.run()
    finally:
        study.close()
    assert [t.state for t in study.trials()] == ["failed"] * MAX_FAILED_IN_A_ROW  # it stopped there
    study = create_study(tmp_path / "r", cfg(budget=MAX_FAILED_IN_A_ROW + 10), task=nasforge.load_task("iris", seed=0))
    try:
        study.run()  # the cause fixed, the same run goes on: the failures stay, the rest train
    finally:
        study.close()
    states = [t.state for t in sorted(study.trials(), key=lambda t: t.number)]
    assert states == ["failed"] * MAX_FAILED_IN_A_ROW + ["complete"] * 10


def test_a_search_called_under_no_grad_still_trains(tmp_path):
    import torch

    with torch.no_grad():
        result = nasforge.search("iris", strategy="random", budget=2, seed=0, out=tmp_path / "g", **FAST)
    assert [t.state for t in result.trials] == ["complete", "complete"]


def test_python_api_search(tmp_path):
    result = nasforge.search("wine", strategy="random", budget=3, seed=1, out=tmp_path / "w", **FAST)
    assert result.best is not None and len(result.trials) == 3
    assert result.best_genome.summary()
    again = nasforge.open_run(tmp_path / "w")
    assert again.best.number == result.best.number
