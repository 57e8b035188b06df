"""Property-based: every reader of user input either loads it or says no in nasforge's own
one-line error, for a few hundred Hypothesis inputs each (benchmarks/fuzz.py runs 10,000)."""
from __future__ import annotations

import sys

import pytest
from conftest import REPO
from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(REPO / "benchmarks"))
import fuzz  # noqa: E402


@pytest.mark.parametrize("name", list(fuzz.READERS))
def test_a_reader_loads_or_refuses_in_one_line(name):
    reader, inputs = fuzz.READERS[name]

    @settings(max_examples=150, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(inputs)
    def check(data):
        result = fuzz.outcome(reader, data)
        assert not result.startswith("escaped"), result

    check()
