"""benchmarks/nb201.py: runs without repeats pay only for new cells; every method's run has its curve."""
import sys

import numpy as np
from conftest import REPO, SHARED_DATA

sys.path.insert(0, str(REPO / "benchmarks"))
import nb201  # noqa: E402
from nb201 import Method, best_so_far, methods  # noqa: E402

from nasforge.evaluators.table import NB201Table, TabularEvaluator  # noqa: E402


def test_without_repeats_every_query_is_a_new_cell_and_with_them_not():
    evaluator = TabularEvaluator(NB201Table(SHARED_DATA / "nb201_12epoch.csv"), "cifar10")
    again = best_so_far(evaluator, Method("rea", "rea", (5, 3)), 0, 60)
    fresh = best_so_far(evaluator, Method("rea", "rea", (5, 3), no_repeats=True), 0, 60)
    assert again.distinct[-1] < 60 and fresh.distinct == list(range(1, 61))
    assert len(fresh.curve) == len(fresh.ask_seconds) == 60
    assert all(b[0] >= a[0] for a, b in zip(fresh.curve, fresh.curve[1:]))  # best so far never drops
    guided = best_so_far(evaluator, Method("predictor", "predictor"), 0, 15)
    assert guided.distinct[-1] == 15 and guided.ask_seconds[-1] > guided.ask_seconds[9] > 0


def test_methods_keep_random_search_and_pick_the_rest_by_kind():
    assert [m.kind for m in methods(nb201.PAPER, ["predictor"])] == ["random", "predictor"]
    everything = methods((10, 5), [])
    assert [m.no_repeats for m in everything] == [False, False, False, True] + [False] * 6
    assert [m.kind for m in everything[-5:]] == ["predictor-synflow", "predictor-gp", "predictor-synflow-feature",
                                                 "predictor-synflow-ranks", "predictor-synflow-pool"]
    ranked = nb201.make(everything[-2], 0, 20, "cifar10")
    assert (ranked.settings.targets, ranked.settings.proxy_feature, ranked.proxy_pool) == ("ranks", True, 100)
    pooled = nb201.make(everything[-1], 0, 20, "cifar10")  # the same predictor, its first cells picked from 1000
    assert pooled.settings == ranked.settings and pooled.proxy_pool == 1000


def test_the_gp_method_is_the_predictor_with_its_gaussian_process_settings():
    strategy = nb201.make(Method("p", "predictor-gp", settings=nb201.GP_SETTINGS), 0, 30, "cifar10")
    s = strategy.settings
    assert (s.surrogate, s.acquisition, s.beta, s.initial) == ("gp", "ucb", 2.0, 20)
    assert type(strategy.model).__name__ == "GaussianProcess"


def test_the_predictor_with_synflow_starts_from_the_cells_synflow_ranks_first():
    strategy = nb201.make(Method("p", "predictor-synflow", proxy="synflow"), 0, 20, "cifar10")
    firsts = [strategy.ask().genome for _ in range(10)]
    scores = [strategy.proxy(g) for g in firsts]
    assert scores == sorted(scores, reverse=True) and len({g.id for g in firsts}) == 10
    plain = nb201.make(Method("p", "predictor"), 0, 20, "cifar10")
    unpicked = [strategy.proxy(plain.ask().genome) for _ in range(10)]
    assert sum(scores) > sum(unpicked)  # the best of 100 beat ten plain samples


def test_kept_synflow_scores_are_loaded_by_cell_id_instead_of_scored_again(tmp_path, monkeypatch):
    bench = NB201Table(SHARED_DATA / "nb201_12epoch.csv")
    ids = np.array([g.id for g in bench.archs[:10]])
    kept = np.arange(10, dtype=float)
    kept[3] = np.nan  # a cell the proxy failed on stays a failure
    np.savez(tmp_path / "scores.npz", ids=ids[::-1], scores=kept[::-1])  # any order: matched by id
    monkeypatch.setattr(nb201, "cache_file", lambda proxy, dataset: tmp_path / "scores.npz")
    monkeypatch.setattr(nb201, "SCORERS", {})
    strategy = nb201.make(methods((10, 5), ["predictor-synflow-feature"])[-1], 0, 20, "cifar100")
    assert strategy.settings.proxy_feature and strategy.proxy is nb201.SCORERS["cifar100"]
    assert strategy.proxy(bench.archs[7]) == 7.0 and np.isnan(strategy.proxy(bench.archs[3]))
    assert len(strategy.proxy.scores) == 10
    fresh = strategy.proxy(bench.archs[11])  # not kept: scored on the real network
    assert np.isfinite(fresh) and len(strategy.proxy.scores) == 11
