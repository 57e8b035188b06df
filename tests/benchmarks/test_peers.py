"""benchmarks/run_peers.py: every peer method runs, the hypervolume, the Optuna-to-genome mapping."""
import math
import sys

import optuna
import pytest
import torch
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import run_peers  # noqa: E402
from run_peers import Candidate  # noqa: E402

from nasforge import load_task  # noqa: E402
from nasforge.spaces import MLPGenome, MLPSpace  # noqa: E402

# shorter training and timing than the benchmark's defaults: the test checks plumbing, not accuracy
FAST = {"train": {"epochs": 5, "patience": 0}, "measure": {"repeats": 2, "warmup": 1}}
TINY_GRID = {"hidden_layer_sizes": [(8,), (16, 16)], "activation": ["relu"], "alpha": [1e-4]}


@pytest.fixture(scope="module")
def iris():
    return load_task("iris", seed=0)


def test_every_method_returns_a_chosen_model(tmp_path, iris):
    torch.set_num_threads(1)
    results = []
    for key, run in run_peers.methods(tmp_path, FAST).items():
        if key == "sklearn":
            results.append(run_peers.run_sklearn_grid("iris", 0, iris, grid=TINY_GRID))
        else:
            results.append(run("iris", 0, 3))
    names = [r.method for r in results]
    assert {"nasforge evolution", "nasforge random", "Optuna TPE", "sklearn MLP grid"} <= set(names)
    assert any(n.startswith("Optuna NSGA-II") for n in names)
    max_params = run_peers.max_space_params(run_peers.nasforge_space(iris))
    for r in results:
        expected = 2 if r.method == "sklearn MLP grid" else 3
        assert r.budget == expected and len(r.candidates) + r.failed == expected, r.method
        chosen = r.chosen
        assert 0.0 <= chosen.test_acc <= 1.0 and 0.0 <= chosen.val_acc <= 1.0, r.method
        assert chosen.params > 0, r.method
        assert chosen.val_acc == max(c.val_acc for c in r.candidates)
        assert r.seconds > 0
        assert run_peers.hypervolume(r.candidates, max_params) > 0


def test_hypervolume_of_a_hand_made_front():
    cands = [Candidate(0.9, 0.8, 100), Candidate(0.5, 0.5, 10), Candidate(0.4, 0.9, 1000),  # last one dominated
             Candidate(0.9, 0.1, 1000)]  # dominated by the first (same accuracy, more parameters)
    assert run_peers.reference_point(1000) == (0.0, -4.0)
    assert sorted(run_peers.front_points(cands)) == [(0.5, -1.0), (0.9, -2.0)]
    # staircase above (0, -4): 0.9 * (-2 - -4) + 0.5 * (-1 - -2) = 1.8 + 0.5
    assert run_peers.hypervolume(cands, 1000) == pytest.approx(2.3)
    assert run_peers.hypervolume(cands[:1], 1000) == pytest.approx(1.8)
    assert run_peers.hypervolume([Candidate(0.0, 0.0, 10)], 1000) == 0.0  # on the reference line: no area


def test_selection_uses_validation_then_fewer_params():
    cands = [Candidate(0.9, 0.1, 500), Candidate(0.95, 0.2, 900), Candidate(0.95, 0.3, 300), Candidate(0.95, 0.9, 300)]
    assert run_peers.select(cands) is cands[2]  # best val, fewest params, earliest; test acc plays no part


def test_max_space_params_is_the_widest_deepest_network(iris):
    space = run_peers.nasforge_space(iris)
    assert (space.min_layers, space.max_layers, space.widths[0], space.widths[-1]) == (1, 4, 8, 256)
    net = MLPGenome(layers=tuple({"units": 256} for _ in range(4))).build(iris.input_shape, iris.n_classes)
    assert run_peers.max_space_params(space) == sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("conditional", [True, False])
def test_optuna_params_map_to_valid_genomes_of_the_space(iris, conditional):
    space = run_peers.nasforge_space(iris)
    seen_depths, seen_widths, seen_acts, seen_drops = set(), set(), set(), set()

    def objective(trial):
        params = run_peers.suggest_params(trial, space, conditional=conditional)
        genome = run_peers.genome_from_params(params)
        assert isinstance(genome, MLPGenome)
        space.check(genome)  # raises InvalidGenome otherwise
        assert len(genome.layers) == params["n_layers"]
        assert genome.dropout == params["dropout"]
        for i, layer in enumerate(genome.layers):
            assert (layer.units, layer.activation) == (params[f"units_{i}"], params[f"activation_{i}"])
        seen_depths.add(len(genome.layers))
        seen_widths.update(layer.units for layer in genome.layers)
        seen_acts.update(layer.activation for layer in genome.layers)
        seen_drops.add(genome.dropout)
        return 0.0

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=200)
    assert seen_depths == set(range(space.min_layers, space.max_layers + 1))
    assert seen_widths == set(space.widths)
    assert seen_acts == set(space.activations)
    assert seen_drops == set(space.dropouts)


def test_layers_beyond_n_layers_are_ignored():
    params = {"n_layers": 1, "units_0": 64, "activation_0": "gelu", "units_1": 8, "activation_1": "tanh",
              "dropout": 0.3}
    genome = run_peers.genome_from_params(params)
    assert genome.summary() == "64gelu d0.3"
    MLPSpace(4, 3).check(genome)
    assert math.isclose(genome.dropout, 0.3)
