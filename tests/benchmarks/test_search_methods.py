"""benchmarks/search_methods.py: equal wall time (--seconds) stops each search after its
seconds, and expert-paper runs the published rule book."""
import argparse
import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import search_methods  # noqa: E402


def args(**kw) -> argparse.Namespace:
    base = dict(space=None, max_params=None, epochs=3, weights=None, budget=1000, seconds=None, llm_local=None,
                llm_timeout=60.0, repair_attempts=2)
    return argparse.Namespace(**{**base, **kw})


def test_seconds_stop_a_search_with_a_large_budget_and_expert_paper_is_the_published_rule_book(tmp_path):
    result, seconds, _ = search_methods.run_one(args(seconds=2.0), "iris", "random", 0, tmp_path / "random")
    finished = [t for t in result.trials if t.finished]
    assert 2.0 <= seconds < 30 and 0 < len(finished) < 1000 and result.best is not None
    result, _, _ = search_methods.run_one(args(budget=4), "iris", "expert-paper", 0, tmp_path / "paper")
    assert len([t for t in result.trials if t.finished]) == 4
    assert result.trials[0].operator == "initial:small"  # one small start, as published
    assert all("rulebook" not in t.info for t in result.trials)  # no adaptive bookkeeping
    result, _, _ = search_methods.run_one(args(budget=8), "iris", "expert", 0, tmp_path / "adaptive")
    assert [t.operator for t in result.trials[:2]] == ["initial:sample"] * 2  # a quarter of the budget: random starts
    assert all(t.info.get("rulebook") == "adaptive" for t in result.trials[2:])
