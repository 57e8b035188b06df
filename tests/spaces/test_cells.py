"""The ``cells`` family (TS-ENAS): published cells, encodings, networks, operators."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA

from nasforge.errors import InvalidGenome, NasforgeError
from nasforge.spaces.base import parse_genome
from nasforge.spaces.cell_plan import CELL_CODES, PUBLISHED_FILE
from nasforge.spaces.cells import CellGene, CellsGenome, CellsSpace, is_reduction, published_cells
from nasforge.spaces.vocabulary import CELL_OPS as OPS

torch.set_num_threads(1)
SHARED_CELLS = SHARED_DATA / "published_cells.json"


def space(**kw) -> CellsSpace:
    return CellsSpace((1, 8, 8), 10, **kw)


def samples(n: int = 30, seed: int = 0, **kw) -> list[CellsGenome]:
    rng, sp = np.random.default_rng(seed), space(**kw)
    return [sp.sample(rng) for _ in range(n)]


def kinds(g: CellsGenome) -> list[bool]:
    return [c.reduction for c in g.cells]


def test_package_copy_matches_the_shared_file_and_keeps_attribution():
    if not SHARED_CELLS.is_file():
        pytest.skip(f"shared published cells not found at {SHARED_CELLS}")
    assert json.loads(PUBLISHED_FILE.read_text()) == json.loads(SHARED_CELLS.read_text())
    assert "_about" in json.loads(PUBLISHED_FILE.read_text())


def test_published_cells_decode_to_their_genotypes_and_concat_lists():
    data = json.loads(PUBLISHED_FILE.read_text())["cells"]
    cells = published_cells()
    assert sorted(cells) == list(range(1, 9))
    for code, cell in cells.items():
        name, kind = CELL_CODES[code]
        assert cell.reduction == (code >= 5) == is_reduction(code)
        flat = [(OPS[n[2]], n[0]) for n in cell.nodes for _ in (0,)] + [(OPS[n[3]], n[1]) for n in cell.nodes]
        pairs = [tuple(p) for p in data[name][kind]]
        assert sorted(flat) == sorted((op, i) for op, i in pairs)
        gene = CellGene(code=code, inputs=(0, 0), nodes=cell.nodes)
        assert list(gene.concat()) == data[name][f"{kind}_concat"]
        assert not gene.modified


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 7, 5)])
def test_each_published_cell_builds_and_runs(shape):
    for code in range(1, 9):
        g = CellsGenome.from_codes([(0, 0, 2), (1, 0, code), (2, 1, 3)], channels=4)
        space_ = CellsSpace(shape, 10, channels=4)
        space_.check(g)
        model = g.build(shape, 10)
        out = model(torch.randn(2, *shape))
        assert out.shape == (2, 10) and torch.isfinite(out).all()
        assert g.n_params(shape, 10) == sum(p.numel() for p in model.parameters())


def test_the_counted_parameters_are_the_built_networks_for_sampled_and_mutated_genomes():
    """n_params sums cells counted once each (the predictor counts every candidate): it must
    equal the built network's count whatever the cells, edits, reductions and input shape."""
    rng = np.random.default_rng(3)
    for shape in [(1, 8, 8), (3, 9, 7)]:
        space_ = CellsSpace(shape, 7, channels=4, max_cells=6)
        genomes = [space_.sample(rng) for _ in range(12)]
        genomes += [space_.mutate(g, rng)[0] for g in genomes]
        for g in genomes:
            assert g.n_params(shape, 7) == sum(p.numel() for p in g.build(shape, 7).parameters())


def test_reductions_keep_working_down_to_a_1x1_map():
    # 8x8 -> 4 -> 2 -> 1 -> 1: four reductions among nine cells (fewer than half)
    code = [(0, 0, 2), (1, 0, 5), (2, 0, 1), (3, 1, 6), (4, 2, 3), (5, 0, 7), (6, 5, 4), (7, 3, 8), (8, 8, 2)]
    g = CellsGenome.from_codes(code, channels=4)
    CellsSpace((1, 8, 8), 10, max_cells=9, channels=4).check(g)
    model = g.build((1, 8, 8), 10)
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    loss = model(torch.randn(3, 1, 8, 8)).sum()
    loss.backward()  # trains too


def test_encoding_round_trips_json_and_both_levels():
    sp = space()
    for g in samples(10) + [sp.prune_node(samples(1, seed=5)[0], np.random.default_rng(0))]:
        again = parse_genome(CellsGenome, g.to_json())
        assert again == g and again.id == g.id and again.to_json() == g.to_json()
        assert CellsGenome.from_codes(g.level1(), g.level2()) == g
        assert all(a1 == j for j, (a1, _, _) in enumerate(g.level1()))
    rough = samples(1, seed=3)[0]
    assert CellsGenome.from_codes(rough.level1()) == rough  # level 1 alone: published insides


def test_invalid_genomes_are_rejected_with_a_reason():
    with pytest.raises(InvalidGenome, match="inputs"):
        parse_genome(CellsGenome, {"cells": [{"code": 1, "inputs": [1, 0], "nodes": [[0, 1, 1, 1]]}]})
    with pytest.raises(InvalidGenome, match="reads"):
        parse_genome(CellsGenome, {"cells": [{"code": 1, "inputs": [0, 0], "nodes": [[0, 2, 1, 1]]}]})
    with pytest.raises(InvalidGenome, match="op codes"):
        parse_genome(CellsGenome, {"cells": [{"code": 1, "inputs": [0, 0], "nodes": [[0, 1, 1, 99]]}]})
    with pytest.raises(InvalidGenome, match="fewer reductions than half"):
        space().check(CellsGenome.from_codes([(0, 0, 1), (1, 0, 5), (2, 0, 1), (3, 0, 6)]))
    with pytest.raises(InvalidGenome, match="cells; this space"):
        space(min_cells=3).check(CellsGenome.from_codes([(0, 0, 1), (1, 0, 2)]))
    with pytest.raises(InvalidGenome, match="parameters"):
        space(max_params=1000).check(CellsGenome.from_codes([(0, 0, 1), (1, 0, 2), (2, 0, 3)]))
    with pytest.raises(NasforgeError, match="images"):
        CellsSpace((64,), 10)


def test_random_genomes_follow_algorithm_3():
    gs = samples(200, min_cells=2, max_cells=7)
    assert {g.depth for g in gs} == set(range(2, 8))
    assert {c.code for g in gs for c in g.cells} == set(range(1, 9))
    for g in gs:
        assert 2 * g.reductions < g.depth and not any(c.modified for c in g.cells)
        assert all(c.inputs[0] == j and 0 <= c.inputs[1] <= j for j, c in enumerate(g.cells))


def test_crossover_swaps_normal_with_normal_and_reduction_with_reduction():
    sp, rng = space(), np.random.default_rng(1)
    gs = samples(40, seed=1)
    changed = 0
    for a, b in zip(gs[::2], gs[1::2]):
        c1, c2 = sp.crossover(a, b, rng)
        assert kinds(c1) == kinds(a) and kinds(c2) == kinds(b)
        assert [c.inputs for c in c1.cells] == [c.inputs for c in a.cells]  # connections stay in place
        assert sp.is_valid(c1) and sp.is_valid(c2)
        codes = sorted(c.code for c in a.cells + b.cells)
        assert sorted(c.code for c in c1.cells + c2.cells) == codes  # cells are exchanged, not invented
        changed += c1 != a
    assert changed >= 15


@pytest.mark.parametrize("name", ["cell", "connection", "edge", "node_input", "prune"])
def test_each_operator_makes_a_valid_different_genome(name):
    sp, rng = space(min_cells=2), np.random.default_rng(2)
    op = sp.mutation_operators()[name]
    for k, g in enumerate(samples(25, seed=2, min_cells=2)):
        child = op(g, rng)
        assert child is not None and child != g and sp.is_valid(child), name
        if k < 4:  # building is the slow part; the structure checks below cover the rest
            small = child.model_copy(update={"channels": 2})
            assert small.build((1, 8, 8), 10)(torch.randn(2, 1, 8, 8)).shape == (2, 10)
        diff = [i for i, (x, y) in enumerate(zip(g.cells, child.cells)) if x != y]
        if name == "cell":
            assert kinds(child) == kinds(g) and all(not child.cells[i].modified for i in diff)
        elif name == "connection":
            assert all(child.cells[i].code == g.cells[i].code and child.cells[i].nodes == g.cells[i].nodes for i in diff)
        elif name in ("edge", "node_input"):
            assert len(diff) == 1
            i = diff[0]
            changed = [(n, m) for n, m in zip(g.cells[i].nodes, child.cells[i].nodes) if n != m]
            assert len(changed) == 1
            n, m = changed[0]
            same = slice(0, 2) if name == "edge" else slice(2, 4)
            assert n[same] == m[same] and sum(a != b for a, b in zip(n, m)) == 1
        else:
            assert len(diff) == 1 and len(child.cells[diff[0]].nodes) == len(g.cells[diff[0]].nodes) - 1


def test_pruning_rewires_readers_and_stops_at_one_node():
    sp = space()
    one = CellsGenome.from_codes([(0, 0, 1), (1, 0, 2)], [[(1, 0, 11, 6)], [(0, 1, 1, 1)]])
    assert sp.prune_node(one, np.random.default_rng(0)) is None
    g = CellsGenome.from_codes([(0, 0, 3)], [[(0, 1, 11, 11), (2, 1, 12, 1), (3, 2, 6, 5)]])
    seen = set()
    for seed in range(30):
        child = sp.prune_node(g, np.random.default_rng(seed))
        seen.add(child.cells[0].nodes)
    # pruning node 2 (first input 0): its readers read node 0 and node 4 becomes node 3
    assert ((0, 1, 12, 1), (2, 0, 6, 5)) in seen and len(seen) == 3


def test_fine_mutation_touches_every_cell_and_summary_marks_edits():
    sp = space()
    g = samples(1, seed=4)[0]
    child = sp.fine_mutation(g, np.random.default_rng(0))
    assert all(a != b for a, b in zip(g.cells, child.cells)) and sp.is_valid(child)
    assert child.summary().count("*") == g.depth and "*" not in g.summary()


def test_generic_mutate_is_usable_by_other_strategies():
    sp, rng = space(), np.random.default_rng(3)
    for g in samples(10, seed=3):
        child, name = sp.mutate(g, rng)
        assert child != g and name in sp.mutation_operators()
