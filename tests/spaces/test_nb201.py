"""NAS-Bench-201 family (nasforge.spaces.nb201) and benchmark mode (nasforge.evaluators.table)."""
from __future__ import annotations

import csv
import importlib
import itertools
import re
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, SHARED_DATA

from nasforge.errors import InvalidGenome, NasforgeError, TrialFailed
from nasforge.evaluators.table import NB201Table, TabularEvaluator, dataset_name
from nasforge.spaces.base import parse_genome
from nasforge.spaces.nb201 import EDGES, OPS, NB201Genome, NB201Space
from nasforge.strategies.evolution import EvolutionSettings, RegularizedEvolution
from nasforge.strategies.random import RandomSearch

torch.set_num_threads(1)
REAL = SHARED_DATA / "nb201_12epoch.csv"
HEADER = ["index", "arch", "cifar10-val", "cifar10-test", "cifar100-val", "cifar100-test", "imagenet-val", "imagenet-test"]
LITERAL_ROWS = [  # the first rows of the real file, used when it is absent
    ["0", "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
     "63.3640", "69.5500", "31.8400", "31.2600", "18.4667", "17.0000"],
    ["1", "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
     "82.8340", "88.2200", "57.8000", "58.2600", "35.4333", "33.8000"],
    ["2", "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|",
     "63.5600", "69.9500", "29.4200", "29.9200", "18.4667", "17.8667"],
    ["3", "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|",
     "73.5600", "78.5100", "44.3800", "43.9800", "23.8333", "23.2667"],
]
needs_real = pytest.mark.skipif(not REAL.is_file(), reason=f"NAS-Bench-201 table not found at {REAL}")


def slice_rows(n: int = 8) -> list[list[str]]:
    if REAL.is_file():
        with REAL.open() as f:
            return [row for _, row in zip(range(n), itertools.islice(csv.reader(f), 1, None))]
    return LITERAL_ROWS


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


# --- genome -----------------------------------------------------------------------------
def test_string_round_trip():
    rng = np.random.default_rng(0)
    space = NB201Space()
    for _ in range(50):
        g = space.sample(rng)
        assert NB201Genome.from_string(g.to_string()) == g
        assert parse_genome(NB201Genome, g.to_json()) == g
        assert g.summary() == g.to_string()
    for row in slice_rows():
        g = NB201Genome.from_string(row[1])
        assert g.to_string() == row[1]
    g = NB201Genome.from_string(LITERAL_ROWS[3][1])
    assert g.ops == ("avg_pool_3x3", "skip_connect", "none", "none", "none", "skip_connect")


@pytest.mark.parametrize("text, reason", [
    ("", "3 '+'-separated"),
    ("|none~0|+|none~0|none~1|", "3 '+'-separated"),
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "wrapped in '|'"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs 2 inputs"),
    ("|none~0|+|none~1|none~0|+|none~0|none~1|none~2|", "should read 'OP~0'"),
    ("|none|+|none~0|none~1|+|none~0|none~1|none~2|", "should read 'OP~0'"),
    ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv_5x5'"),
])
def test_malformed_strings_are_rejected_with_a_reason(text, reason):
    with pytest.raises(InvalidGenome, match=re.escape(reason)):
        NB201Genome.from_string(text)


def test_genome_validation():
    with pytest.raises(InvalidGenome, match="ops"):
        parse_genome(NB201Genome, {"ops": ["none"] * 5})
    with pytest.raises(InvalidGenome):
        parse_genome(NB201Genome, {"ops": ["max_pool"] * 6})


def test_mutation_changes_exactly_one_edge():
    rng = np.random.default_rng(1)
    space = NB201Space()
    assert set(space.mutation_operators()) == {"op"}
    for _ in range(200):
        parent = space.sample(rng)
        child, operator = space.mutate(parent, rng)
        assert operator == "op"
        assert sum(a != b for a, b in zip(parent.ops, child.ops)) == 1


def test_connectivity_flag():
    cut = NB201Genome(ops=("nor_conv_3x3", "none", "none", "none", "none", "avg_pool_3x3"))
    assert not cut.connected()  # node 3 reads only node 2, and node 2 reads nothing
    linked = NB201Genome(ops=("none", "none", "none", "skip_connect", "none", "none"))
    assert linked.connected()
    NB201Space().check(cut)  # the benchmark scores such cells, so they are in by default
    strict = NB201Space(reject_disconnected=True)
    with pytest.raises(InvalidGenome, match="no path"):
        strict.check(cut)
    rng = np.random.default_rng(2)
    assert all(strict.sample(rng).connected() for _ in range(50))


# --- network ----------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_network_builds_runs_and_trains(shape):
    torch.manual_seed(0)
    g = NB201Genome(ops=("nor_conv_3x3", "avg_pool_3x3", "nor_conv_1x1", "skip_connect", "none", "nor_conv_3x3"))
    model = g.build(shape, 10)
    assert sum(p.numel() for p in model.parameters()) == g.n_params(shape[0], 10, channels=8, cells_per_stage=1)
    x, y = torch.randn(4, *shape), torch.randint(0, 10, (4,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    model.eval()
    assert model(x).shape == (4, 10)


def test_all_none_cell_and_build_options():
    g = NB201Genome(ops=("none",) * 6)
    assert g.build((1, 8, 8), 3)(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    bigger = g.build((1, 8, 8), 3, channels=4, cells_per_stage=2)
    assert sum(p.numel() for p in bigger.parameters()) == g.n_params(1, 3, 4, 2)
    with pytest.raises(ValueError, match="images"):
        g.build((64,), 10)


def test_param_count_matches_benchmark_network():
    convs = NB201Genome(ops=("nor_conv_3x3",) * 6)
    assert convs.n_params() == 1_531_546  # NAS-Bench-201's 1.53 MB for its largest cell
    mixed = NB201Genome(ops=("nor_conv_1x1", "skip_connect", "nor_conv_3x3", "none", "avg_pool_3x3", "nor_conv_3x3"))
    assert mixed.n_params(3, 100) == sum(p.numel() for p in mixed.build((3, 32, 32), 100, 16, 5).parameters())


# --- table and evaluator ----------------------------------------------------------------
def test_table_lookup_on_a_slice(tmp_path):
    rows = slice_rows()
    table = NB201Table(write_csv(tmp_path / "slice.csv", rows))
    assert len(table) == len(rows) and table.datasets == ["cifar10", "cifar100", "imagenet"]
    for row in rows:
        g = NB201Genome.from_string(row[1])
        assert table.lookup(g, "cifar10") == (float(row[2]), float(row[3]))
        assert table.lookup(g, "cifar100") == (float(row[4]), float(row[5]))
        assert table.lookup(g, "ImageNet16-120") == (float(row[6]), float(row[7]))
    best_row = max(rows, key=lambda r: float(r[3]))
    assert table.best("cifar10") == (NB201Genome.from_string(best_row[1]), float(best_row[3]))
    assert dataset_name("imagenet16-120") == "imagenet"

    evaluator = TabularEvaluator(table, "cifar100", seconds_per_query=2.5)
    g = NB201Genome.from_string(rows[1][1])
    m = evaluator.evaluate(g, seed=0).metrics
    assert m["val_acc"] == pytest.approx(float(rows[1][4]) / 100) and m["test_acc"] == pytest.approx(float(rows[1][5]) / 100)
    assert 0 <= m["val_acc"] <= 1 and m["params"] == g.n_params(3, 100) and m["simulated_seconds"] == 2.5
    assert evaluator.evaluate(g, seed=1).metrics["queries"] == 2
    assert evaluator.evaluate(g, seed=1).state_dict == {}
    absent = next(c for c in (NB201Genome(ops=(op,) * 6) for op in OPS) if c.ops not in table.rows)
    with pytest.raises(TrialFailed, match="not in benchmark table"):
        evaluator.evaluate(absent, seed=0)


def test_table_errors(tmp_path):
    rows = slice_rows(4)
    with pytest.raises(NasforgeError, match="does not exist"):
        NB201Table(tmp_path / "nope.csv")
    with pytest.raises(NasforgeError, match="no 'arch' column"):
        NB201Table(write_csv(tmp_path / "a.csv", rows, ["index", "cell", *HEADER[2:]]))
    with pytest.raises(NasforgeError, match="cifar10-val but no cifar10-test"):
        NB201Table(write_csv(tmp_path / "b.csv", [r[:3] for r in rows], HEADER[:3]))
    with pytest.raises(NasforgeError, match="line 3: .*unknown op"):
        NB201Table(write_csv(tmp_path / "c.csv", [rows[0], [rows[1][0], rows[1][1].replace("nor_conv", "sep_conv"), *rows[1][2:]]]))
    with pytest.raises(NasforgeError, match="appears twice"):
        NB201Table(write_csv(tmp_path / "d.csv", [rows[0], rows[0]]))
    with pytest.raises(NasforgeError, match="percentage"):
        NB201Table(write_csv(tmp_path / "e.csv", [[*rows[0][:2], "high", *rows[0][3:]]]))
    only_c10 = NB201Table(write_csv(tmp_path / "f.csv", [r[:4] for r in rows], HEADER[:4]))
    assert only_c10.datasets == ["cifar10"]
    with pytest.raises(NasforgeError, match="no cifar100 columns"):
        TabularEvaluator(only_c10, "cifar100")
    with pytest.raises(NasforgeError, match="unknown benchmark dataset"):
        only_c10.lookup(NB201Genome.from_string(rows[0][1]), "mnist")


# --- search on a table ------------------------------------------------------------------
def load_benchmark():
    """The benchmark module, imported as tests/benchmarks imports it (its dataclasses need it in sys.modules)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        return importlib.import_module("nb201")
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def test_selection_never_reads_test(tmp_path):
    """A full synthetic table whose test ranking is the reverse of its validation ranking:
    selecting on validation must pick the cell with the lowest test accuracy seen."""
    rng = np.random.default_rng(3)
    cells = list(itertools.product(OPS, repeat=len(EDGES)))
    val = rng.permutation(len(cells)) * (90 / len(cells)) + 5
    rows = [[str(i), NB201Genome(ops=c).to_string(), f"{v:.4f}", f"{100 - v:.4f}"] for i, (c, v) in enumerate(zip(cells, val))]
    table = NB201Table(write_csv(tmp_path / "inverted.csv", rows, HEADER[:4]))
    evaluator = TabularEvaluator(table, "cifar10")
    bench = load_benchmark()
    for config in (None, (10, 3)):
        for seed in range(3):
            result = bench.run(evaluator, config, seed, [50, 100])
            for selected_val, selected_test in result.values():
                assert selected_test == pytest.approx(100 - selected_val)
            assert result[100][0] >= result[50][0] and result[100][1] <= result[50][1]
    # and the strategies themselves only ever hold validation fitness
    strategy = RegularizedEvolution(NB201Space(), np.random.default_rng(0), 60, EvolutionSettings(population_size=10, sample_size=3))
    for i in range(60):
        p = strategy.ask()
        p.trial = i
        strategy.tell(p, evaluator.evaluate(p.genome, 0).metrics["val_acc"])
    assert all(m.fitness == pytest.approx(table.lookup(m.genome, "cifar10")[0] / 100) for m in strategy.population)


@needs_real
def test_evolution_beats_random_on_the_real_table():
    table = NB201Table(REAL)
    assert table.best("cifar10")[1] == pytest.approx(89.16)
    evaluator = TabularEvaluator(table, "cifar10")
    bench = load_benchmark()
    seeds = range(20)
    rea = [bench.run(evaluator, (10, 3), s, [100])[100][1] for s in seeds]
    rnd = [bench.run(evaluator, None, s, [100])[100][1] for s in seeds]
    assert statistics.mean(rea) >= statistics.mean(rnd), (statistics.mean(rea), statistics.mean(rnd))
    assert isinstance(RandomSearch(NB201Space(), np.random.default_rng(0), 1).ask().genome, NB201Genome)
