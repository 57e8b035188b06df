"""HTML reports of real small runs: structure, plots, table, drawings, comparison, browser check."""
from __future__ import annotations

import csv
import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA

import nasforge
from nasforge.errors import NasforgeError
from nasforge.report import (
    RunData,
    dashboard_command,
    plots,
    render_comparison,
    render_report,
    write_comparison,
    write_report,
)
from nasforge.spaces import NB201Genome, NB201Space
from nasforge.storage import TrialRecord
from nasforge.strategies import make_strategy

NB201_CSV = SHARED_DATA / "nb201_12epoch.csv"
CHROMIUM = Path("/usr/bin/chromium")
QUICK = {"train": {"epochs": 3}, "measure": {"repeats": 2, "warmup": 1}}
VOID = {"meta", "link", "br", "img", "input", "hr", "col", "area", "base", "embed", "source", "track", "wbr", "param"}


class Page(HTMLParser):
    """Parses a page strictly: every element we write must be closed in order."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()
        assert not self.stack, f"unclosed elements: {self.stack}"

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-3:]}"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag: str | None = None, **attrs: str | None) -> list[dict[str, str | None]]:
        """Elements with ``tag`` whose attributes include ``attrs`` (value None: present at all)."""
        found = []
        for t, a in self.elements:
            if tag is not None and t != tag:
                continue
            if all(k.replace("_", "-") in a and (v is None or a[k.replace("_", "-")] == v) for k, v in attrs.items()):
                found.append(a)
        return found


def nb201_slice(path: Path, budget: int, n_rows: int = 50) -> Path:
    """A ~50-row table holding every cell a seed-0 evolution run of ``budget`` will ask for
    (found by replaying the strategy against the full table), so every trial completes."""
    with NB201_CSV.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    by_ops = {NB201Genome.from_string(r[1]).ops: r for r in rows}
    strategy = make_strategy("evolution", NB201Space(), np.random.default_rng(0), budget,
                             population_size=None, sample_size=None)
    keep: dict[tuple[str, ...], list[str]] = {}
    for number in range(budget):
        proposal = strategy.ask()
        proposal.trial = number
        row = by_ops[proposal.genome.ops]
        keep[proposal.genome.ops] = row
        strategy.tell(proposal, float(row[2]) / 100, {})
    for row in rows:
        if len(keep) >= n_rows:
            break
        keep.setdefault(NB201Genome.from_string(row[1]).ops, row)
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *keep.values()])
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("report-runs")
    small_population = {"strategy": {"population_size": 2, "sample_size": 2}}
    nasforge.search("iris", strategy="random", budget=5, out=base / "iris-random", **QUICK)
    nasforge.search("iris", strategy="evolution", budget=5, out=base / "iris-evolution", config=small_population, **QUICK)
    nasforge.search("digits-images", strategy="evolution", budget=4, out=base / "digits-net", config=small_population,
                    space={"family": "net"}, train={"epochs": 2}, measure=QUICK["measure"])
    nasforge.search("digits-images", strategy="expert", budget=3, out=base / "expert", space={"family": "net"},
                    train={"epochs": 2}, measure=QUICK["measure"])
    nasforge.search("digits-images", strategy="ts-enas", budget=5, out=base / "ts-enas", train={"epochs": 1},
                    space={"family": "cells", "min_cells": 2, "max_cells": 3, "channels": 4}, measure=QUICK["measure"],
                    config={"strategy": {"population_size": 3, "two_stage": {"inheritance": False}}})
    nasforge.search("iris", strategy="bilevel", budget=4, out=base / "bilevel", config={"strategy": {"population_size": 2}},
                    **QUICK)
    out = {name: base / name for name in ("iris-random", "iris-evolution", "digits-net", "expert", "ts-enas", "bilevel")}
    if NB201_CSV.is_file():
        table = nb201_slice(base / "nb201-slice.csv", 20)
        nasforge.search(strategy="evolution", budget=20, out=base / "nb201",
                        benchmark={"name": "nb201", "file": str(table), "dataset": "cifar10"})
        out["nb201"] = base / "nb201"
    return out


@pytest.fixture(scope="module")
def reports(runs) -> dict[str, Path]:
    return {name: write_report(out) for name, out in runs.items()}


def expected_layers(genome: dict) -> int:
    return {"nb201": 6, "cells": len(genome.get("cells", []))}.get(genome["family"]) or len(genome["layers"])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["iris-random", "iris-evolution", "digits-net", "nb201", "expert", "ts-enas", "bilevel"])
def test_report_of_a_run(name, runs, reports):
    if name not in runs:
        pytest.skip(f"NAS-Bench-201 table not found at {NB201_CSV}")
    path = reports[name]
    assert path == runs[name] / "report.html" and path.is_file()
    text = path.read_text()
    page = Page(text)
    run = nasforge.open_run(runs[name])
    # self-contained: no external fetch of any kind
    assert not re.search(r'(src|href)="(https?:)?//', text) and "<script src" not in text
    extra = {"generations"} if name in ("ts-enas", "bilevel") else set()  # generational: the population per generation
    assert {a["data-plot"] for a in page.find("figure", data_plot=None)} == {"progress", "pareto"} | extra
    assert len(page.find("svg")) >= 4  # two plots, the architecture and the lineage
    # one table row per trial, numbered like the trials
    rows = page.find("tr", data_trial=None)
    assert sorted(int(a["data-trial"]) for a in rows) == sorted(t.number for t in run.trials)
    assert [a for a in rows if a.get("class") == "best"] == [{"data-trial": str(run.best.number), "class": "best"}]
    # the drawing of the best genome has every layer (or every NB201 edge)
    layers = page.find("g", data_layer=None)
    assert sorted(int(a["data-layer"]) for a in layers) == list(range(expected_layers(run.best.genome)))
    if run.best.genome["family"] == "nb201":
        assert [a["data-op"] for a in sorted(layers, key=lambda a: int(a["data-layer"]))] == list(run.best.genome["ops"])
    if run.best.genome["family"] == "net":
        assert len(page.find("path", data_skip=None)) == len(run.best.genome["skips"])
    if run.best.genome["family"] == "cells":
        assert [int(a["data-code"]) for a in sorted(layers, key=lambda a: int(a["data-layer"]))] == [
            c["code"] for c in run.best.genome["cells"]]
    if name == "expert":  # LEMONADE: the instructions of each iteration and what changed
        assert page.find("section", id="designer"), "no designer section"
        assert len(page.find("tr", data_iteration=None)) == len(run.trials)
        assert any(t.info.get("instructions") for t in run.trials)
        text = "".join(page.text)
        assert all(code in text for t in run.trials for code, _ in t.info.get("instructions", []))
    # the lineage runs from a trial without parents to the best one
    chain = [int(a["data-trial"]) for a in page.find("g", data_trial=None)]
    by_number = {t.number: t for t in run.trials}
    assert chain[-1] == run.best.number and not by_number[chain[0]].parents
    assert all(by_number[b].parents[0] == a for a, b in zip(chain, chain[1:]))
    body = "".join(page.text)
    assert all(by_number[b].operator in body for b in chain[1:])
    assert str(runs[name]) in body and "Settings" in body


@pytest.mark.slow
def test_nb201_run_evolved(runs):
    if "nb201" not in runs:
        pytest.skip(f"NAS-Bench-201 table not found at {NB201_CSV}")
    run = nasforge.open_run(runs["nb201"])
    assert len(run.trials) == 20 and all(t.state == "complete" for t in run.trials)
    assert any(t.parents for t in run.trials)


@pytest.mark.slow
def test_comparison_has_a_column_and_a_section_per_run(runs, tmp_path):
    names = list(runs)
    path = write_comparison([runs[n] for n in names], tmp_path / "sub" / "compare.html")
    page = Page(path.read_text())
    headers = page.find("th", data_key=None)
    assert [a["data-key"] for a in headers] == ["quantity"] + [f"run{i}" for i in range(len(names))]
    assert sorted(int(a["data-run"]) for a in page.find("div", data_run=None)) == list(range(len(names)))
    assert {a["data-plot"] for a in page.find("figure", data_plot=None)} == {"progress", "pareto"}
    body = "".join(page.text)
    assert all(n in body for n in names)
    with pytest.raises(NasforgeError):
        write_comparison([], tmp_path / "none.html")


@pytest.mark.slow
def test_dashboard_command_of_a_real_run(runs):
    out = runs["iris-random"]
    command = dashboard_command(out)
    assert Path(command[0]).name == "optuna-dashboard"
    assert command[1] == f"sqlite:///{(out / 'study.db').resolve()}"  # the run directory's own database


def test_dashboard_command_uses_the_stored_url_and_refuses_non_runs(tmp_path):
    url = "postgresql+psycopg2://me@db/nasforge"
    (tmp_path / "run.json").write_text(json.dumps({"storage": url, "study": "wine"}))
    assert dashboard_command(tmp_path)[1:] == [url]
    with pytest.raises(NasforgeError, match="no nasforge run"):
        write_report(tmp_path / "nothing")
    with pytest.raises(NasforgeError, match="no nasforge run"):
        dashboard_command(tmp_path / "nothing")


def test_an_empty_run_and_a_secret_storage_password(tmp_path):
    """A run that has not finished a trial still reports; a shared report never shows a password."""
    running = TrialRecord(0, "running", {"family": "mlp", "layers": []}, None)
    run = RunData(tmp_path, "postgresql+psycopg2://me:hunter2@db/nasforge", "s", {"budget": 3}, None, [running], None)
    text = render_report(run)
    page = Page(text)
    assert "hunter2" not in text and "me:***@db" in text
    assert not page.find("figure", data_plot=None) and len(page.find("tr", data_trial=None)) == 1


def record(number: int, **kw) -> TrialRecord:
    base = dict(number=number, state="complete", genome={"family": "cells", "cells": [{"kind": "normal", "ops": ["a"]}]},
                fitness=0.5 + number / 100, metrics={"val_acc": 0.5 + number / 100, "params": 100 * (number + 1)},
                told_seq=number)
    return TrialRecord(**{**base, **kw})


def test_strategy_views_fallback_drawing_and_escaping(tmp_path):
    """TS-ENAS generations, LEMONADE instructions, an unknown genome family, and hostile text."""
    evil = "<script>alert(1)</script>"
    trials = [record(i, info={"stage": 1 + i // 3, "generation": i % 3}, operator="mutate" if i else "random",
                     parents=[i - 1] if i else [])
              for i in range(6)]
    trials[4].info.update(designer="llm", instructions=[f"ACL {evil}", "ASC"], changes={"added": '<img src=x onerror="x()">'})
    trials.append(record(6, state="failed", fitness=None, metrics={}, error=f"RuntimeError: {evil}", told_seq=6))
    config = {"data": {"dataset": "<b>data</b>"}, "strategy": {"name": "ts-enas"}, "budget": 7}
    run = RunData(tmp_path / "run<1>", "sqlite:///x.db", "s", config, None, trials, trials[5])
    text = render_report(run)
    page = Page(text)
    assert "<script>alert" not in text and "<img src=x" not in text and "<b>data" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "&lt;b&gt;data&lt;/b&gt;" in text
    assert text.count("<script>") == 1  # the page's own sorter only
    assert {a["data-plot"] for a in page.find("figure", data_plot=None)} == {"progress", "pareto", "generations"}
    assert [a["data-iteration"] for a in page.find("tr", data_iteration=None)] == ["4"]  # the designer table
    assert len(page.find("tr", data_trial=None)) == 7  # the trial table: one row per trial
    assert page.find("g", data_layer="0") and page.find("pre", **{"class": "genome-json"})
    assert [int(a["data-trial"]) for a in page.find("g", data_trial=None)] == [0, 1, 2, 3, 4, 5]


def test_genome_error_and_run_name_text_is_escaped_by_the_templates(tmp_path):
    """A genome summary, an error, a run name and a comparison label with markup and "&" in
    them reach the page escaped (autoescaping templates), and read back exactly as written."""
    evil = '<script>alert("x")</script> & co'
    genome = {"family": f"future {evil}", "layers": [{"kind": evil}]}  # unknown family: summary is its JSON
    trials = [record(0, genome=genome, operator="random"),
              record(1, state="failed", fitness=None, metrics={}, error=f"ValueError: {evil}", told_seq=1)]
    run = RunData(tmp_path / "a&b<i>", "sqlite:///x.db", "s", {"budget": 2}, None, trials, trials[0])
    for text in (render_report(run), render_comparison([run])):
        assert "<script>alert" not in text and "& co" not in text and "<i>" not in text
        assert "&lt;script&gt;alert(" in text and "&amp; co" in text
        assert text.count("<script") == 1  # the page's own sorter only
        body = "".join(Page(text).text)
        assert "a&b<i>" in body and str(tmp_path / "a&b<i>") in body
    body = "".join(Page(render_report(run)).text)
    assert json.dumps(genome, sort_keys=True) in body  # the trial table's genome cell and the best model's facts
    assert f"ValueError: {evil}" in body  # the failed trial's error cell


def test_pareto_front_and_progress_order():
    points = [(10.0, 0.5, 0), (5.0, 0.6, 1), (20.0, 0.9, 2), (20.0, 0.8, 3), (30.0, 0.85, 4)]
    assert plots.pareto_front(points) == [(5.0, 0.6, 1), (20.0, 0.9, 2)]
    trials = [record(0, told_seq=1, fitness=0.9, metrics={"val_acc": 0.9, "train_seconds": 2.0}),
              record(1, told_seq=0, fitness=0.7, metrics={"val_acc": 0.7, "train_seconds": 1.0}),
              record(2, told_seq=2, state="failed", fitness=None, metrics={})]
    p = plots.progress(trials)
    assert p.fitness == [0.7, 0.9, 0.9] and p.seconds == [1.0, 3.0, 3.0] and p.fitness_is_accuracy
    svg = plots.progress_figure([("<b>run&1 $x$", p), ("other", p)])  # run names are user text
    assert svg.startswith("<svg") and "<b>" not in svg and "&lt;b&gt;run&amp;1 $x$" in svg


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]
    return subprocess.run([str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=90)


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium not installed (apt-get install -y chromium) for the browser check")
def test_report_in_a_headless_browser(reports, tmp_path):
    from PIL import Image

    url = reports["digits-net"].resolve().as_uri()
    shot = tmp_path / "report.png"
    result = chromium(f"--screenshot={shot}", "--window-size=1280,2400", url, profile=tmp_path / "profile")
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, f"console messages: {console}"
    assert shot.is_file() and shot.stat().st_size > 20_000
    with Image.open(shot) as image:
        assert image.format == "PNG" and image.size == (1280, 2400)
        assert len(image.convert("RGB").getcolors(maxcolors=1_000_000) or []) > 50  # plots and text, not a blank page
    # the sorter runs: a "#sort=" link sorts the trial table by fitness, best first, without errors
    dom = chromium("--dump-dom", url + "#sort=trial-table.fitness.desc", profile=tmp_path / "profile")
    assert not [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    order = [int(n) for n in re.findall(r'<tr data-trial="(\d+)"', dom.stdout)]
    run = nasforge.open_run(reports["digits-net"].parent)
    fitness = {t.number: (t.fitness if t.fitness is not None else -1) for t in run.trials}
    assert order[0] == run.best.number and [fitness[n] for n in order] == sorted(fitness.values(), reverse=True)
