"""Zero-cost proxies (issue #20): scores of untrained networks that pick a search's first candidates."""
from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, cli

from nasforge.config import build_config
from nasforge.errors import NasforgeError
from nasforge.proxies import PROXIES, Proxy, ProxyScorer
from nasforge.proxies.naswot import Naswot
from nasforge.runs import read_stored_config
from nasforge.strategies import make_strategy
from nasforge.study import build_parts

TABLE = {"benchmark": {"file": str(SHARED_DATA / "nb201_12epoch.csv")}}
RUNS = {  # a data source and family per space, with the proxies that run on it
    "mlp": ({"data": {"dataset": "iris"}, "space": {"family": "mlp"}}, ["synflow", "naswot", "jacob_cov", "params"]),
    "net": ({"data": {"dataset": "digits-images"}, "space": {"family": "net"}}, ["synflow", "naswot", "jacob_cov",
                                                                               "params"]),
    "cells": ({"data": {"dataset": "digits-images"}, "space": {"family": "cells"}}, ["synflow", "naswot", "params"]),
    "nb201-table": (TABLE, ["synflow", "params"]),
}


def scorer(settings: dict, proxy: str, tmp_path, seed: int = 0):
    parts = build_parts(build_config({**settings, "proxy": proxy, "seed": seed}), tmp_path)
    return parts.proxy, parts.space


def has_relu(genome) -> bool:
    shape = (3, 16, 16) if genome.family == "nb201" else (1, 8, 8) if genome.family in ("net", "cells") else (4,)
    return any(isinstance(m, torch.nn.ReLU) for m in genome.build(shape, 3).modules())


@pytest.mark.parametrize("family", list(RUNS))
def test_each_proxy_gives_finite_deterministic_scores_that_tell_networks_apart(family, tmp_path):
    settings, names = RUNS[family]
    for name in names:
        first, space = scorer(settings, name, tmp_path)
        again, _ = scorer(settings, name, tmp_path)
        rng = np.random.default_rng(5)
        genomes = [space.sample(rng) for _ in range(30)]
        if name == "naswot":  # it reads ReLUs: the others score NaN, ranked worst
            without = [g for g in genomes if not has_relu(g)]
            assert all(math.isnan(first(g)) and "no ReLU" in first.note(g)["note"] for g in without)
            genomes = [g for g in genomes if has_relu(g)]
        genomes = genomes[:4]
        scores = [first(g) for g in genomes]
        torch.manual_seed(123)  # the search's global torch state must not matter ...
        assert [again(g) for g in reversed(genomes)][::-1] == scores, (family, name)  # ... nor the order scored
        assert all(math.isfinite(s) for s in scores), (family, name, scores)
        assert len(set(scores)) > 1, (family, name, scores)


def test_synflow_in_table_mode_scores_the_real_nas_bench_201_network(tmp_path):
    from nasforge.proxies import make_scorer
    from nasforge.spaces.nb201 import NB201Genome, NB201Space

    synflow, _ = scorer(TABLE, "synflow", tmp_path)
    params, _ = scorer(TABLE, "params", tmp_path)
    convs = NB201Genome(ops=("nor_conv_3x3",) * 6)
    assert params(convs) == convs.n_params(3, 10) == 1_531_546  # C=16, N=5: the benchmark's network
    imagenet = make_scorer("params", NB201Space(), None, 0, table_dataset="ImageNet16-120")  # an alias
    assert imagenet(convs) == convs.n_params(3, 120)
    pools = NB201Genome(ops=("avg_pool_3x3",) * 6)
    assert synflow(convs) > synflow(pools) > 0  # convolutions carry more flow than parameter-free cells


def test_a_proxy_that_cannot_run_is_one_line_and_writes_nothing(tmp_path):
    with pytest.raises(NasforgeError, match="needs training data"):
        scorer(TABLE, "naswot", tmp_path)
    with pytest.raises(NasforgeError, match="have none"):
        Naswot().check([torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh())], "mlp")
    r = cli("search", "--benchmark", "nb201", "--bench-file", SHARED_DATA / "nb201_12epoch.csv", "--proxy", "jacob_cov",
            "--out", tmp_path / "run")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "jacob_cov proxy needs training data" in r.stderr
    assert not (tmp_path / "run").exists()
    r = cli("search", "--dataset", "iris", "--proxy", "bogus", "--out", tmp_path / "run")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "unknown proxy 'bogus'" in r.stderr
    assert not (tmp_path / "run").exists()


def test_the_first_candidates_are_the_pools_best_and_nan_ranks_last(tmp_path):
    _, space = scorer(RUNS["mlp"][0], "params", tmp_path)

    def units(g) -> float:  # a stand-in proxy: NaN for genomes with an odd total width
        total = sum(layer.units for layer in g.layers)
        return math.nan if total % 2 else float(total)

    def first(n: int):
        strategy = make_strategy("evolution", space, np.random.default_rng(0), 40, proxy=units, proxy_pool=30)
        return [strategy.ask().genome for _ in range(n)]

    picks = first(10)
    assert [g.id for g in picks] == [g.id for g in first(10)]  # deterministic
    pool_rng = np.random.default_rng(0)
    plain = make_strategy("evolution", space, pool_rng, 40)
    pool = [plain.ask().genome for _ in range(30)]  # the same 30 draws the proxy saw
    finite = sorted((units(g) for g in pool if not math.isnan(units(g))), reverse=True)
    assert [units(g) for g in picks[: len(finite[:10])]] == finite[:10]
    ranked = [units(g) for g in first(30)]
    assert not any(math.isnan(x) for x in ranked[: len(finite)]) and all(math.isnan(x) for x in ranked[len(finite):])


class _Broken(Proxy):
    name = "broken"

    def score(self, model, batch):
        raise RuntimeError("no gradient\nsecond line")


def test_a_proxy_that_fails_on_a_network_scores_nan_and_says_so(tmp_path):
    _, space = scorer(RUNS["mlp"][0], "params", tmp_path)
    broken = ProxyScorer(_Broken(), lambda g: g.build((4,), 3), torch.zeros(2, 4), seed=0)
    g = space.sample(np.random.default_rng(0))
    assert math.isnan(broken(g))
    note = broken.note(g)
    assert note["score"] is None and "ranked worst" in note["note"] and "RuntimeError: no gradient" in note["note"]
    assert "\n" not in note["note"]
    assert "broken" not in PROXIES  # a proxy defined elsewhere does not register itself


@pytest.mark.slow
def test_a_cli_search_with_a_proxy_stores_its_scores_and_continues_exactly(tmp_path):
    fast = ["--dataset", "iris", "--epochs", 2, "--patience", 0, "--max-layers", 2, "--max-units", 32,
            "--proxy", "synflow", "--proxy-pool", 20, "--seed", 3]
    out = tmp_path / "run"
    r = cli("search", *fast, "--budget", 6, "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    trials = json.loads(cli("show", out, "--json").stdout)
    scores = [t["info"]["proxy"]["score"] for t in trials if "proxy" in t["info"]]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True)  # evolution's first population, best first
    assert all(t["info"]["proxy"]["name"] == "synflow" for t in trials if "proxy" in t["info"])
    stored = read_stored_config(out)
    assert (stored["proxy"], stored["proxy_pool"]) == ("synflow", 20)  # a resume scores with the same proxy
    # a larger budget replays the stored asks (the proxy must pick the same genomes) and goes on
    r = cli("resume", out, "--budget", 9, "--quiet")
    assert r.returncode == 0, r.stderr
    more = json.loads(cli("show", out, "--json").stdout)
    assert [t["genome"] for t in more[: len(trials)]] == [t["genome"] for t in trials]
    assert sum(t["state"] == "complete" for t in more) == 9


def test_the_predictor_can_read_the_proxy_score_as_one_more_feature(tmp_path):
    from test_golden import synthetic_metrics

    from nasforge.spaces.encodings import encode
    from nasforge.spaces.nb201 import NB201Space

    convs = {"nor_conv_3x3": 2.0, "nor_conv_1x1": 1.0}

    def proxy(g) -> float:  # a stand-in: NaN for cells without any conv
        total = sum(convs.get(op, 0.0) for op in g.ops)
        return total * 1e20 if total else math.nan

    def run(feature: bool):
        strategy = make_strategy("predictor", NB201Space(), np.random.default_rng(2), 30,
                                 {"initial": 4, "candidates": 20, "ensemble": 2, "proxy_feature": feature}, proxy=proxy)
        asked = []
        for number in range(10):
            p = strategy.ask()
            p.trial = number
            metrics = synthetic_metrics(p.genome)
            strategy.tell(p, None if metrics is None else metrics["val_acc"], metrics)
            asked.append(p.genome.id)
        return strategy, asked

    with_feature, asked = run(True)
    genomes = [m.genome for m in with_feature.members]
    features = with_feature._features(genomes)
    assert features.shape[1] == encode(NB201Space(), genomes).shape[1] + 1
    column = features[:, -1]
    assert np.isfinite(column).all()
    nan_rows = [i for i, g in enumerate(genomes) if math.isnan(proxy(g))]
    if nan_rows:  # not a number: below every finite score
        assert column[nan_rows].max() < min(np.delete(column, nan_rows), default=np.inf)
    assert run(True)[1] == asked  # deterministic
    assert run(False)[0]._features(genomes).shape[1] == features.shape[1] - 1
    with pytest.raises(NasforgeError, match="name one with --proxy"):
        build_config({"data": {"dataset": "iris"}, "strategy": {"name": "predictor", "proxy_feature": True}})


@pytest.mark.parametrize("name", ["random", "evolution", "ts-enas", "bilevel", "predictor"])
def test_every_sampling_strategy_starts_from_the_proxys_best_pick(name):
    from test_contracts import space_for

    space = space_for(name)
    scored: dict[str, float] = {}

    def score(g) -> float:  # any deterministic score that differs between genomes
        scored[g.id] = float(int(hashlib.sha256(g.id.encode()).hexdigest()[:8], 16))
        return scored[g.id]

    strategy = make_strategy(name, space, np.random.default_rng(0), 30, proxy=score, proxy_pool=12)
    first = strategy.ask().genome
    assert len(scored) >= 2 and scored[first.id] == max(scored.values()), name


def test_a_proxy_with_the_expert_strategy_is_one_line(tmp_path):
    r = cli("search", "--dataset", "iris", "--strategy", "expert", "--proxy", "params", "--out", tmp_path / "run")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "does not start from sampled genomes" in r.stderr
    assert not (tmp_path / "run").exists()
