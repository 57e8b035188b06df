"""benchmarks/fidelity.py: a short run of every method writes a section with real measurements."""
import math
import os
import sys

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import fidelity  # noqa: E402

import nasforge  # noqa: E402
from nasforge import load_task  # noqa: E402
from nasforge.config import build_config  # noqa: E402
from nasforge.spaces import genome_from_dict  # noqa: E402


@pytest.mark.slow
def test_quick_run_screens_more_with_asha_and_writes_the_section(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n<!-- BEGIN other -->\nkept\n<!-- END other -->\n")
    outcomes = fidelity.main(["--quick", "--seconds", "8", "--max-epochs", "27", "--tau-genomes", "6"], results=results)
    by = {(o.method, o.objectives): o for o in outcomes}
    assert set(by) == {(m, 1) for m in fidelity.SINGLE} | {(m, 2) for m in fidelity.MULTI}
    full, asha = by["full", 1], by["asha", 1]
    # the same seconds each: ASHA screened more candidates, most of them stopped at a rung
    assert asha.screened > full.screened and asha.per_hour > full.per_hour
    assert full.pruned == 0 and asha.pruned > 0 and by["hyperband", 1].pruned > 0
    # Optuna's Hyperband prunes a trial only once a bracket's rung holds several: on a loaded machine
    # 8 s may hold too few trials (seen under xdist: 0 pruned), so only a longer run must have pruned
    tpe = by["tpe-hb", 1]
    assert tpe.pruned > 0 or tpe.complete + tpe.pruned < 10, (tpe.complete, tpe.pruned)
    assert asha.epochs < full.epochs
    for o in outcomes:
        assert 4 <= o.seconds < 30, o.method  # stopped soon after its time
        assert o.params > 0 and 0 < o.epoch_ms < 5000, o.method  # every method saw its candidates' sizes and costs
        if o.objectives == 1:
            assert o.complete > 0 and 0 < o.best_val <= 1 and 0 < o.test_acc <= 1 and o.best_params > 0, o.method
        else:
            assert o.front and all(0 <= acc <= 1 and params > 0 for acc, params in o.front)
    text = results.read_text()
    assert "kept" in text and text.count("<!-- BEGIN fidelity -->") == 1
    for label in fidelity.LABEL.values():
        assert label in text
    tau_line = next(line for line in text.splitlines() if line.startswith("| digits | 6 |"))
    tau = float(tau_line.split("|")[5].split()[0])
    assert -1 <= tau <= 1
    assert "**digits**: candidates per hour x" in text and ("met" in text)


def test_two_objective_searches_alone_write_their_own_section(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n<!-- BEGIN fidelity -->\nkept\n<!-- END fidelity -->\n")
    outcomes = fidelity.main(["--quick", "--seconds", "3", "--tau-genomes", "0", "--objectives", "2",
                              "--section", "fidelity-multi"], results=results)
    assert sorted((o.method, o.objectives) for o in outcomes) == [("asha", 2), ("asha-crowding", 2), ("full", 2),
                                                                   ("hyperband", 2)]
    text = results.read_text()
    assert "kept" in text and text.count("<!-- BEGIN fidelity-multi -->") == 1  # the main section is left alone
    section = text[text.index("<!-- BEGIN fidelity-multi -->"):]
    assert "**Two objectives" in section and "hypervolume" in section
    assert "**One objective" not in section and "**Ranking fidelity" not in section  # nothing it did not run


def test_rank_fidelity_trains_each_genome_through_every_rung():
    f = fidelity.rank_fidelity("digits", 5, 9, 3)
    assert f.epochs == [1, 3, 9] and len(f.accs) + f.failed == 5
    assert all(len(row) == 3 and all(0 <= a <= 1 for a in row) for row in f.accs)
    tau, p = f.tau(0)
    assert -1 <= tau <= 1 and (math.isnan(p) or 0 <= p <= 1)
    assert f.tau(len(f.epochs) - 2)[0] == pytest.approx(fidelity.Fidelity("x", [1, 2], [[r[-2], r[-1]] for r in f.accs], 0, 0).tau(0)[0])


def test_retrain_for_optuna_matches_train_final(tmp_path):
    """Optuna's best is retrained by fidelity.retrain: the same numbers train_final gives a run's best."""
    import nasforge
    from nasforge.final import train_final

    out = tmp_path / "run"
    nasforge.search("digits", strategy="evolution", budget=2, seed=1, out=out, **fidelity.sections("digits", 3, 3),
                    config={"strategy": {"name": "evolution", "population_size": 2}})
    best = nasforge.open_run(out).best
    expected = train_final(out, epochs=3, seed=1)["test_acc"]
    config = build_config({**fidelity.sections("digits", 3, 3), "data": {"dataset": "digits"}, "seed": 1})
    got = fidelity.retrain(config, load_task("digits", seed=1), genome_from_dict(best.genome), 3, 1)
    assert got == pytest.approx(expected, abs=1e-9)


def test_screened_sizes_are_medians_of_params_and_training_time_per_epoch():
    metrics = [{"params": 10, "train_seconds": 1.0, "epochs": 2}, {"params": 30, "train_seconds": 0.3, "epochs": 3},
               {"params": 1000, "train_seconds": 9.0, "epochs": 3}, {"error": "failed before training"}]
    assert fidelity.screened_sizes(metrics) == (pytest.approx(30), pytest.approx(500.0))
    assert all(math.isnan(x) for x in fidelity.screened_sizes([]))


def test_hypervolume_uses_one_reference_per_dataset():
    a = fidelity.Outcome("d", 0, "full", 2, 10.0, 3, 0, 0, front=[(0.9, 1000), (0.5, 10)])
    b = fidelity.Outcome("d", 0, "asha", 2, 10.0, 3, 5, 0, front=[(0.9, 100)])
    ref = fidelity.reference([a, b])
    assert ref == (0.0, -4.0)  # the largest front member has 1000 params
    # staircase above (0, -4): 0.9 * (-3 - -4) + 0.5 * (-1 - -3) = 0.9 + 1.0
    assert fidelity.front_hv(a, ref) == pytest.approx(1.9)
    assert fidelity.front_hv(b, ref) == pytest.approx(0.9 * 2)
    assert fidelity.paired([a, b], "d", 2, "asha", lambda o: fidelity.front_hv(o, ref)) == [pytest.approx(1.8 / 1.9)]


def test_a_missed_rate_goal_says_how_many_candidates_went_past_the_first_rung():
    full = fidelity.Outcome("m", 0, "full", 1, 150.0, 8, 0, 0, epochs=9.0, test_acc=0.95)
    asha = fidelity.Outcome("m", 0, "asha", 1, 150.0, 3, 11, 0, epochs=4.3, past_first=0.5, test_acc=0.95)
    line = fidelity.goal_lines("m", [full, asha], (0.0, -6.0), max_epochs=9, eta=3)
    assert "candidates per hour x1.75: NOT met: epochs per candidate fell only 2.1x" in line
    assert "50 % of ASHA's 14.0 candidates trained past the first rung" in line


def test_the_hypervolume_goal_is_judged_for_asha_and_for_hyperband():
    full = [fidelity.Outcome("m", s, "full", 2, 20.0, 9, 0, 0, front=[(0.90 + s / 100, 1000)]) for s in (0, 1)]
    asha = [fidelity.Outcome("m", s, "asha", 2, 20.0, 4, 30, 0, front=[(0.89 + s / 100, 1000)]) for s in (0, 1)]
    band = [fidelity.Outcome("m", s, "hyperband", 2, 20.0, 6, 20, 0, front=[(0.90 + s / 100, 100)]) for s in (0, 1)]
    # above (0, -4): full 0.905 * 1 on average, ASHA 0.895 * 1, Hyperband 0.905 * 2
    line = fidelity.goal_lines("m", full + asha + band, (0.0, -4.0), max_epochs=9, eta=3)
    assert "hypervolume 0.895 vs 0.905: NOT met: ASHA fully trained 4.0 candidates vs 9.0" in line  # sd 0.007
    assert "Hyperband's hypervolume 1.810 vs 0.905: met." in line
    close = [fidelity.Outcome("m", s, "hyperband", 2, 20.0, 6, 20, 0, front=[(0.906 + s / 100, 1000)]) for s in (0, 1)]
    line = fidelity.goal_lines("m", full + close, (0.0, -4.0), max_epochs=9, eta=3)
    assert line == "- **m**: Hyperband's hypervolume 0.911 vs 0.905: met, by 0.006, within the seed-to-seed sd (0.007)."


def _frames(*files):
    """A fake call stack, innermost first."""
    from types import SimpleNamespace

    frame = None
    for name in reversed(files):
        frame = SimpleNamespace(f_code=SimpleNamespace(co_filename=name), f_back=frame)
    return frame


def test_the_deadline_interrupts_training_but_never_a_store_write():
    site, src = "/x/site-packages", "/x/src/nasforge"
    training = _frames(f"{site}/torch/nn/modules/conv.py", f"{src}/train/trainer.py", f"{src}/evaluators/training.py",
                       f"{src}/loop.py", "/x/benchmarks/fidelity.py")
    assert fidelity._interruptible(training)
    writing = _frames(f"{site}/sqlalchemy/engine/base.py", f"{src}/storage.py", f"{src}/loop.py")
    assert not fidelity._interruptible(writing)
    saving = _frames(f"{site}/torch/serialization.py", f"{src}/files.py", f"{src}/loop.py")
    assert not fidelity._interruptible(saving)
    assert not fidelity._interruptible(_frames(f"{src}/strategies/evolution.py", f"{src}/loop.py"))


def test_the_deadline_rings_again_when_its_interruption_was_swallowed(monkeypatch):
    """A TimeUp lost where Python cannot raise it (here: caught and dropped) is raised again a
    second later, so a timed search cannot run on for ever."""
    import time

    monkeypatch.setattr(fidelity, "INTERRUPTIBLE", (*fidelity.INTERRUPTIBLE, __file__.replace(os.sep, "/")))
    swallowed, start = 0, time.perf_counter()
    with fidelity.deadline(0.05):
        while time.perf_counter() - start < 5.0:
            try:
                sum(range(1000))
            except fidelity.TimeUp:
                swallowed += 1
                if swallowed > 1:
                    raise
    assert swallowed == 2 and 1.0 <= time.perf_counter() - start < 2.0


def test_the_deadline_stops_a_search_on_time_and_keeps_what_finished(tmp_path):
    """A 3 s search of 9-epoch candidates is cut at 3 s: nothing runs on, finished trials are stored."""
    import time

    out, start = tmp_path / "run", time.perf_counter()
    with fidelity.deadline(3.0):
        nasforge.search("digits", strategy="random", budget=10_000, seed=0, out=out, **fidelity.sections("digits", 9, 3))
    elapsed = time.perf_counter() - start
    assert 3.0 <= elapsed < 5.0  # the interrupted trial is stored as such before the search returns
    trials = nasforge.open_run(out).trials
    assert any(t.finished for t in trials) and not all(t.finished for t in trials)  # the last one was cut off
