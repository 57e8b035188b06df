"""Golden trial sequences: what every strategy proposes under seed 0, recorded once and
asserted forever after, so refactors of the search core cannot change a search's choices.

Two kinds of record, both in ``tests/golden/``:
- ``strategies.json``: each (strategy, family) pair driven through ask/tell with a synthetic,
  deterministic evaluation (metrics derived from the genome's id, with ties in fitness and
  some failures on purpose), serially and with asks running one ahead of tells. No training,
  so the record does not depend on floating-point details of the machine.
- ``study_nb201.json``: whole searches through the Study (config, storage, loop, replay) in
  NAS-Bench-201 table mode, where evaluations are table look-ups.

To re-record after a deliberate change of behaviour (say why in the commit):
``NASFORGE_GOLDEN_WRITE=1 .venv/bin/python -m pytest tests/test_golden.py``.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA

from nasforge.spaces import CellsSpace, MLPSpace, NB201Space, NetSpace

GOLDEN = Path(__file__).parent / "golden"
WRITE = os.environ.get("NASFORGE_GOLDEN_WRITE") == "1"
ASKS = 24

PAIRS = [
    ("random", "mlp"), ("random", "net"), ("random", "cells"), ("random", "nb201"),
    ("evolution", "mlp"), ("evolution", "net"), ("evolution", "cells"), ("evolution", "nb201"),
    ("expert", "mlp"), ("expert", "net"),
    ("ts-enas", "cells"),
    ("bilevel", "mlp"),
]
OPTIONS = {  # small populations so that selection acts within ASKS asks
    "evolution": {"population_size": 5, "sample_size": 2},
    "ts-enas": {"population_size": 4, "rough_fraction": 0.3},
    "bilevel": {"population_size": 4},
    "expert": {"rulebook": "paper"},  # the published Algorithm 1, unchanged; the adaptive one is tested in tests/strategies/expert
    "random": {},
}


def make_space(family: str):
    if family == "mlp":
        return MLPSpace(10, 3, max_layers=3, max_units=64)
    if family == "net":
        return NetSpace((1, 8, 8), 10, max_params=100_000)
    if family == "cells":
        return CellsSpace((1, 8, 8), 10, min_cells=2, max_cells=4, channels=4)
    return NB201Space()


def synthetic_metrics(genome) -> dict | None:
    """Deterministic stand-in for an evaluation; ``None`` for a failed trial (1 in 9)."""
    h = int(hashlib.sha256(genome.id.encode()).hexdigest()[:12], 16)
    if h % 9 == 0:
        return None
    val = round(0.5 + (h % 25) / 50, 2)  # 25 levels: ties in fitness happen
    train = min(1.0, round(val + ((h >> 8) % 15) / 100, 2))
    params = 50 * len(genome.to_json()) + (h >> 16) % 500
    return {"train_acc": train, "val_acc": val, "val_f1": val, "test_acc": val, "params": params,
            "flops": 2 * params, "size_bytes": 4 * params, "latency_ms": params / 1e4, "fps": 1e7 / params,
            "train_energy_kwh": params * 1e-9, "infer_energy_kwh": params * 1e-12, "train_seconds": 1.0}


def drive(strategy_name: str, family: str, ahead: int) -> list[dict]:
    """Ask/tell with ``ahead`` asks outstanding before the oldest is told; the sequence of asks."""
    from nasforge.strategies import make_strategy

    strategy = make_strategy(strategy_name, make_space(family), np.random.default_rng(0), 40, **OPTIONS[strategy_name])
    out, outstanding = [], []
    for number in range(ASKS):
        proposal = strategy.ask()
        proposal.trial = number
        out.append({"id": proposal.genome.id, "summary": proposal.genome.summary(),
                    "parents": list(proposal.parents), "operator": proposal.operator})
        outstanding.append(proposal)
        if len(outstanding) > ahead:
            told = outstanding.pop(0)
            metrics = synthetic_metrics(told.genome)
            strategy.tell(told, None if metrics is None else metrics["val_acc"], metrics)
    return out


def check(name: str, actual: dict) -> None:
    path = GOLDEN / name
    if WRITE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n")
        pytest.skip(f"recorded {path}")
    expected = json.loads(path.read_text())
    for key in sorted(set(expected) | set(actual)):
        assert actual.get(key) == expected.get(key), f"{name}: {key} differs from the recorded golden sequence"


def test_every_strategy_proposes_the_recorded_sequence():
    check("strategies.json", {f"{s}/{f}/ahead{a}": drive(s, f, a) for s, f in PAIRS for a in (0, 1)})


def test_study_in_table_mode_makes_the_recorded_trials(tmp_path):
    from nasforge.config import build_config
    from nasforge.study import create_study

    runs = {}
    for strategy in ("random", "evolution"):
        table = {"name": strategy, **({"population_size": 8, "sample_size": 3} if strategy == "evolution" else {})}
        cfg = build_config({"budget": 30, "seed": 0, "strategy": table, "repeats": True,  # recorded before no-repeats
                            "benchmark": {"file": str(SHARED_DATA / "nb201_12epoch.csv"), "dataset": "cifar10"}})
        study = create_study(tmp_path / strategy, cfg)
        try:
            study.run()
            runs[strategy] = [{"number": t.number, "genome": t.genome, "fitness": t.fitness, "parents": t.parents,
                               "operator": t.operator} for t in study.trials()]
        finally:
            study.close()
    check("study_nb201.json", runs)
