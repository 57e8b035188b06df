"""benchmarks/_results.py: the process pool every benchmark shares, the sections of RESULTS.md
and their table of contents, and the tau ceilings of benchmarks/inheritance_rank.py."""
import os
import sys

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from _results import anchor, starmap, write_section  # noqa: E402
from inheritance_rank import ceilings  # noqa: E402


def _worker(k: int, scale: int) -> tuple[int, int, int]:
    import torch

    return k * scale, torch.get_num_threads(), os.getpid()


def test_starmap_keeps_task_order_and_gives_each_process_one_thread():
    here = starmap(_worker, [(k, 3) for k in range(6)], 1)
    assert [r[0] for r in here] == [0, 3, 6, 9, 12, 15] and {r[2] for r in here} == {os.getpid()}
    pooled = starmap(_worker, [(k, 3) for k in range(6)], 2)
    assert [r[0] for r in pooled] == [0, 3, 6, 9, 12, 15]
    assert {r[1] for r in pooled} == {1} and os.getpid() not in {r[2] for r in pooled}


def test_noise_ceilings_follow_greiner_and_spearman_brown():
    perfect, single = ceilings(1.0)  # noise-free measurements: every ranking that is right agrees fully
    assert perfect == pytest.approx(1.0) and single == pytest.approx(1.0)
    assert ceilings(0.0) == (0.0, 0.0)  # pure noise: nothing can agree with it
    perfect, single = ceilings(0.20)  # the digits-images genomes of the TS-ENAS benchmark
    assert perfect == pytest.approx(0.482, abs=1e-3) and single == pytest.approx(0.250, abs=1e-3)
    assert 0.20 < single < perfect < 1.0  # averaging two seeds raises the ceiling above one seed's agreement


def test_sections_are_replaced_in_place_and_listed_with_the_command_that_wrote_them(tmp_path):
    results = tmp_path / "RESULTS.md"
    write_section("a", "## Search (digits)\n\nCommand: `.venv/bin/python benchmarks/x.py`  \n\n| t |\n|---|\n| 1 |", results)
    write_section("b", "## Search (digits)\n\nCommand: `.venv/bin/python benchmarks/x.py --seeds 5`\n\n### Goals", results)
    write_section("c", "## GPU, ≤ 1 % (`benchmarks/gpu.py`)\n\nNot run: see `benchmarks/gpu.py`.", results)
    text = results.read_text()
    assert text.startswith("# Benchmark results\n")
    assert text.index("<!-- BEGIN contents -->") < text.index("<!-- BEGIN a -->") < text.index("<!-- BEGIN b -->")
    # the same title twice: the second link is the renderer's "-1" anchor; a section without a
    # Command line names the script it mentions
    assert ("| [Search (digits)](#search-digits) | `.venv/bin/python benchmarks/x.py` |\n"
            "| [Search (digits)](#search-digits-1) | `.venv/bin/python benchmarks/x.py --seeds 5` |\n"
            "| [GPU, ≤ 1 % (`benchmarks/gpu.py`)](#gpu--1--benchmarksgpupy) | `benchmarks/gpu.py` |") in text
    write_section("a", "## Search (digits), again\n\nCommand: `.venv/bin/python benchmarks/x.py --quick`", results)
    again = results.read_text()
    assert again.count("<!-- BEGIN contents -->") == 1 and again.count("<!-- BEGIN a -->") == 1
    assert again.index("<!-- BEGIN a -->") < again.index("<!-- BEGIN b -->")  # replaced where it was
    assert "| t |" not in again and "[Search (digits), again](#search-digits-again) | `.venv/bin/python benchmarks/x.py --quick`" in again
    assert "[Search (digits)](#search-digits) | `.venv/bin/python benchmarks/x.py --seeds 5`" in again
    write_section("a", "## Search (digits), again\n\nCommand: `.venv/bin/python benchmarks/x.py --quick`", results)
    assert results.read_text() == again  # writing the same section again changes nothing


def test_anchors_follow_the_renderer_and_count_repeats():
    seen = {}
    assert anchor("CLI start-up (`benchmarks/cli_startup.py`)", seen) == "cli-start-up-benchmarkscli_startuppy"
    assert anchor("Search (net, ≤ 100,000 parameters)", seen) == "search-net--100000-parameters"
    assert [anchor("Goals", seen) for _ in range(3)] == ["goals", "goals-1", "goals-2"]
