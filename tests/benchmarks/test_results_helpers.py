"""benchmarks/_results.py: the process pool every benchmark shares, and the tau ceilings of
benchmarks/inheritance_rank.py."""
import os
import sys

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from _results import starmap  # noqa: E402
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
