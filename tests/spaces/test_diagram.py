"""Genomes describe their drawing as data (nasforge.spaces.diagram); the report draws the
shapes, so a family registered anywhere draws itself without an edit of the report."""
from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest

from nasforge.report.drawing import draw_genome
from nasforge.spaces import SPACES
from nasforge.spaces.base import Genome
from nasforge.spaces.diagram import CellGraph, Edge, Stack, StackItem

TASK = SimpleNamespace(name="diagram", input_shape=(1, 8, 8), n_classes=3, n_outputs=3)


class ToyGenome(Genome):
    """A family the report has never heard of: blocks in a chain, the first skipping to the last."""

    family = "toy"
    blocks: tuple[str, ...] = ()
    graph: bool = False
    plain: bool = False

    def diagram(self) -> Stack | CellGraph | None:
        if self.plain:
            return None
        if self.graph:  # a 5-node cell: every node reads every earlier one
            edges = tuple(Edge(i, j, f"e{i}{j}", faint=(j - i) % 2 == 0, attrs={"data-layer": k, "data-op": f"op{k}"})
                          for k, (i, j) in enumerate((i, j) for j in range(5) for i in range(j)))
            return CellGraph(tuple(f"n{n}" for n in range(5)), edges, label="toy cell")
        items = tuple(StackItem("conv", text, "fa", {"data-layer": i, "data-kind": "block"})
                      for i, text in enumerate(self.blocks))
        return Stack(items, skips=((0, len(items) - 1),), footer=("toy footer",), label="toy <net>")


@pytest.fixture
def toy_family(monkeypatch):
    SPACES.names()  # discover the real families first, then add the toy one for this test only
    monkeypatch.setitem(SPACES._entries, "toy", SimpleNamespace(name="toy", genome_type=ToyGenome))


def test_a_registered_family_draws_its_own_stack(toy_family):
    svg = str(draw_genome(ToyGenome(blocks=("a", "<b>bold</b>", "c")).to_dict()))
    assert svg.startswith("<svg") and 'aria-label="toy &lt;net&gt;"' in svg
    assert re.findall(r'data-layer="(\d+)" data-kind="block"', svg) == ["0", "1", "2"]
    assert svg.count('data-skip="0-2"') == 1 and svg.count(">fa</text>") == 3 and ">toy footer</text>" in svg
    assert "<b>" not in svg and "&lt;b&gt;bold&lt;/b&gt;" in svg  # the report escapes what spaces hand it


def test_a_registered_family_draws_its_own_cell_graph(toy_family):
    svg = str(draw_genome(ToyGenome(graph=True).to_dict()))
    assert svg.count('<g class="edge"') == 10 and svg.count('<g class="node">') == 5
    assert re.findall(r'data-layer="(\d+)" data-op="op\d+"', svg) == [str(k) for k in range(10)]
    assert svg.count('stroke-dasharray="4 4"') == 4  # the edges over 2 and 4 nodes are faint
    assert ">n4</text>" in svg and 'aria-label="toy cell"' in svg


def test_no_diagram_or_a_broken_genome_falls_back_to_the_json(toy_family):
    for genome in (ToyGenome(plain=True).to_dict(), {"family": "toy", "blocks": 3}, {"family": "nobody"}):
        html = str(draw_genome(genome))
        assert '<pre class="genome-json">' in html


@pytest.mark.parametrize("family", SPACES.names())
def test_every_family_returns_a_diagram_that_is_drawn(family):
    cls = SPACES.get(family)
    space = cls.from_settings(cls.Settings(family=family), TASK)
    rng = np.random.default_rng(0)
    for _ in range(3):
        genome = space.sample(rng)
        diagram = genome.diagram()
        assert isinstance(diagram, (Stack, CellGraph))
        svg = str(draw_genome(genome.to_dict()))
        assert svg.startswith("<svg") and "genome-json" not in svg
        layers = re.findall(r'<g class="(?:layer|edge)" data-layer="(\d+)"', svg)
        if isinstance(diagram, Stack):
            expected = sum("data-layer" in item.attrs for item in diagram.items)
            assert svg.count("data-skip=") == len(diagram.skips)
        else:
            expected = len(diagram.edges)
        assert layers == [str(i) for i in range(expected)]
        assert expected == len(getattr(genome, "layers", None) or getattr(genome, "cells", None) or genome.ops)
