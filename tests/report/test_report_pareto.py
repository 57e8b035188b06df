"""Reports of Pareto (``--objectives``) runs: a front per pair of objectives with the knee
starred and the genome on hover, hypervolume over evaluations, no fitness left over as
None/nan, and a comparison of Pareto runs with one hypervolume reference."""
from __future__ import annotations

import html as htmllib
import re
from itertools import combinations
from pathlib import Path

import pytest
from test_report import Page

import nasforge
from nasforge import pareto
from nasforge.report import RunData, fronts, load_run, render_report, write_comparison, write_report
from nasforge.report.drawing import summary
from nasforge.runs import best_trial, pareto_trials
from nasforge.storage import TrialRecord

TINY = {"train": {"epochs": 2, "patience": 0}, "space": {"max_layers": 2, "max_units": 32},
        "measure": {"repeats": 2, "warmup": 1}}


@pytest.fixture(scope="module")
def mo_runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("pareto-runs")
    nasforge.search("iris", objectives=["accuracy", "params"], budget=7, out=base / "two", **TINY)
    nasforge.search("iris", objectives=["accuracy", "params"], strategy="random", seed=1, budget=5, out=base / "two-b",
                    **TINY)
    nasforge.search("iris", objectives=["accuracy", "params", "latency"], budget=7, out=base / "three", **TINY)
    return {name: base / name for name in ("two", "two-b", "three")}


def cells(text: str, quantity: str) -> list[str]:
    """The comparison table's cells (text) in the row of ``quantity``."""
    row = re.search(rf'<tr data-quantity="{re.escape(quantity)}">(.*?)</tr>', text, flags=re.S)
    assert row, f"no row {quantity!r}"
    return [htmllib.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)]


@pytest.mark.parametrize("name, objectives", [("two", ["accuracy", "params"]), ("three", ["accuracy", "params", "latency"])])
def test_report_of_a_pareto_run(mo_runs, name, objectives):
    text = write_report(mo_runs[name]).read_text()
    page = Page(text)
    run = load_run(mo_runs[name])
    assert run.objectives == objectives and all(t.fitness is None for t in run.trials)
    chosen, front = best_trial(run.trials), pareto_trials(run.trials)
    assert chosen is not None and run.best.number == chosen.number and front
    plots = {a["data-plot"] for a in page.find("figure", data_plot=None)}
    assert {"fronts", "hypervolume"} <= plots and "progress" not in plots  # no best-fitness curve: there is no fitness

    # one panel per pair of objectives, each naming both with their directions
    panels = {a["id"] for a in page.find("g", id=None) if a["id"].startswith("pair-")}
    assert len(panels) == {2: 1, 3: 3}[len(objectives)]
    assert {frozenset(p.removeprefix("pair-").split("-")) for p in panels} == {frozenset(c) for c in combinations(objectives, 2)}
    assert "accuracy (max): validation accuracy" in text and "params (min): parameters" in text
    # the chosen trial (the knee of the full front) is starred once in every panel
    stars = page.find("g", **{"class": "point chosen"})
    assert [a["data-point"] for a in stars] == [str(chosen.number)] * len(panels)
    # every completed trial is a point in every panel, and each point's tooltip names its genome
    points = page.find("g", **{"class": None, "data-point": None})
    drawn = {int(a["data-point"]) for a in points if a["class"] in ("point trial", "point over-limit")}
    assert drawn == {t.number for t in run.trials if t.state == "complete"}
    for t in front:
        tip = f"trial {t.number}: {summary(t)}"
        assert re.search(rf'<g class="point [a-z-]+" data-point="{t.number}"><title>{re.escape(str(htmllib.escape(tip, False)))}\n'
                         rf'accuracy = ', text), f"no tooltip for front trial {t.number}"
        assert tip in "".join(page.text)
    # the facts say how the model was chosen and how big the front is
    body = htmllib.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<svg.*?</svg>|<script>.*?</script>", "", text, flags=re.S)))
    assert "the knee of the Pareto front" in body
    assert re.search(rf"Pareto front size\s+{len(front)}\b", body)
    assert re.search(rf"Pareto front trials\s+{', '.join(str(t.number) for t in front)}\b", body)
    assert "None" not in body and not re.search(r"\bnan\b", body, flags=re.I)
    # the table: a column per objective instead of fitness, and which trials are on the front
    keys = [a["data-key"] for a in page.find("th", data_key=None)]
    assert "fitness" not in keys and [k for k in keys if k.startswith("objective-")] == [f"objective-{n}" for n in objectives]
    best_row = page.find("tr", **{"class": "best"})
    assert [a["data-trial"] for a in best_row] == [str(chosen.number)]


def test_hypervolume_over_evaluations_of_a_real_run(mo_runs):
    run = load_run(mo_runs["three"])
    ref = fronts.reference([run.trials], 3)
    xs, hv = fronts.hypervolume_series(run.trials, ref)
    finished = [t for t in run.trials if t.finished]
    assert xs == list(range(1, len(finished) + 1))
    assert all(b >= a for a, b in zip(hv, hv[1:])) and 0 < hv[-1] <= 1  # never shrinks; a share of the unit box
    # the last value is the hypervolume of the front itself, and dominated trials add nothing to it
    scaled = [ref.scale(t.point) for t in pareto_trials(run.trials)]
    assert hv[-1] == pytest.approx(pareto.hypervolume(scaled, (0, 0, 0)))
    # the reference lies beyond the worst value of each objective, so every trial counts
    for k in range(3):
        assert ref.low[k] < min(t.point[k] for t in fronts.scored(run.trials, 3))
    text = htmllib.unescape(write_report(mo_runs["three"]).read_text())
    assert "Reference point: each objective's worst value over all completed trials" in text
    assert ref.describe(fronts.measures(run.objectives)) in text


def test_comparing_pareto_runs_shares_one_hypervolume_reference(mo_runs, tmp_path):
    paths = [mo_runs["two"], mo_runs["two-b"], mo_runs["three"]]
    text = write_comparison(paths, tmp_path / "compare.html").read_text()
    page = Page(text)
    assert {"hypervolume", "progress", "pareto"} <= {a["data-plot"] for a in page.find("figure", data_plot=None)}
    runs = [load_run(p) for p in paths]
    ref = fronts.reference([runs[0].trials, runs[1].trials], 2)  # the runs on accuracy, params; not the third
    expected = [f"{fronts.hypervolume(r.trials, ref):.4f}" for r in runs[:2]]
    assert cells(text, "front hypervolume") == ["front hypervolume", *expected, "–"]
    assert cells(text, "chosen as") == ["chosen as"] + ["the knee of the Pareto front"] * 3
    assert cells(text, "Pareto front size") == ["Pareto front size"] + [str(len(pareto_trials(r.trials))) for r in runs]
    best = cells(text, "best fitness / chosen objectives")
    assert all(re.match(r"accuracy [\d.]+ · params [\d,]+", c) for c in best[1:]), best
    assert "None" not in "".join(page.text) and not re.search(r"\bnan\b", "".join(page.text))


def mo_record(number: int, values: tuple[float, float], violation: float = 0.0) -> TrialRecord:
    acc, params = values
    return TrialRecord(number, "complete", {"family": "mlp", "layers": [{"units": 8 * (number + 1), "activation": "relu"}],
                                            "dropout": 0.0}, None,
                       metrics={"val_acc": acc, "params": int(params)}, told_seq=number, values=[acc, params],
                       point=(acc, -params), violation=violation)


def test_over_limit_and_skipped_trials_are_drawn_apart_and_hostile_text_is_escaped(tmp_path):
    trials = [mo_record(0, (0.6, 100)), mo_record(1, (0.9, 1000)), mo_record(2, (0.95, 50), violation=2.0),
              mo_record(3, (0.8, 300)),
              TrialRecord(4, "skipped", {"family": "mlp", "layers": []}, None, told_seq=4),
              mo_record(5, (0.7, 400))]  # dominated by trial 3
    trials[3].genome = {"family": "<script>x</script>", "layers": []}  # unknown family: the summary is its JSON
    config = {"objectives": ["accuracy", "params"], "budget": 6}
    run = RunData(tmp_path / "run", "sqlite:///x.db", "s", config, None, trials, best_trial(trials))
    text = render_report(run)
    page = Page(text)
    assert "<script>x" not in text and text.count("<script") == 1
    over = page.find("g", **{"class": "point over-limit"})
    assert [a["data-point"] for a in over] == ["2"]  # hollow red, apart from the grey trials
    assert "2" not in {a["data-point"] for a in page.find("g", **{"class": "point front"})}  # the front is within limits
    assert {a["data-point"] for a in page.find("g", **{"class": "point front"})} == {"0", "1", "3"}
    assert "4" not in {a["data-point"] for a in page.find("g", data_point=None)}  # skipped: never measured
    assert "over a limit (violation 2)" in "".join(page.text)
    body = "".join(page.text)
    assert "hollow red, one over a limit" in body and "skipped (over a limit before training)" in body
    # hypervolume: only the trials within the limits; reference 10% of the range beyond the worst
    ref = fronts.reference([trials], 2)
    assert ref.low == pytest.approx((0.6 - 0.035, -1000 - 95)) and ref.high == pytest.approx((0.95, -50))
    xs, hv = fronts.hypervolume_series(trials, ref)
    assert xs == [1, 2, 3, 4, 5]  # the skipped trial is no evaluation
    assert hv[2] == hv[1]  # the over-limit trial 2, though it dominates everything, adds nothing
