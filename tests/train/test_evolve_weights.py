"""Differential evolution over MLP weights: convergence, batched forward, determinism."""

import copy

import pytest
import torch
from sklearn.datasets import make_classification
from torch import nn

from nasforge.train.evolve_weights import (
    BatchedMLP,
    DEConfig,
    DEResult,
    differential_evolution,
    evolve_weights,
)


@pytest.fixture(autouse=True)
def one_thread():
    """These problems are tiny: on a shared 2-core machine, intra-op threads only add waiting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_classification(
        n_samples=300, n_features=5, n_informative=3, n_redundant=0,
        n_clusters_per_class=1, class_sep=1.0, random_state=0,
    )  # fmt: skip
    X = (X - X.mean(0)) / X.std(0)
    return torch.tensor(X, dtype=torch.float32), torch.tensor(y)


class MyLinear(nn.Linear):
    """Subclasses of nn.Linear count as Linear layers."""


def small_mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))


def varied_mlp() -> nn.Sequential:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Linear(4, 6), nn.Tanh(), nn.Dropout(0.5),
        nn.Sequential(MyLinear(6, 5, bias=False), nn.GELU()),
        nn.Linear(5, 7), nn.LeakyReLU(0.1), nn.Identity(),
        nn.Linear(7, 6), nn.ELU(), nn.Linear(6, 5), nn.SiLU(), nn.Linear(5, 4), nn.Sigmoid(),
        nn.Linear(4, 3),
    )  # fmt: skip


def test_de_converges_on_shifted_sphere():
    shift = torch.linspace(-2.0, 2.0, 10)
    cfg = DEConfig(population=30, generations=300, init_scale=1.0, patience=None)
    res = differential_evolution(
        lambda pop: ((pop - shift) ** 2).sum(dim=1), torch.zeros(10), cfg,
        torch.Generator().manual_seed(1),
    )  # fmt: skip
    assert isinstance(res, DEResult) and res.best_x is not None
    assert torch.linalg.vector_norm(res.best_x - shift) < 1e-3
    assert res.generations_run == 300 and res.evaluations == 30 * 301
    assert len(res.history) == 301
    assert all(a >= b for a, b in zip(res.history, res.history[1:], strict=False))  # elitist: never worse


def test_de_treats_non_finite_fitness_as_infinite():
    def objective(pop):
        f = (pop**2).sum(dim=1)
        return torch.where(pop[:, 0] > 0, torch.full_like(f, float("nan")), f)

    x0 = torch.full((3,), -1.0)
    res = differential_evolution(objective, x0, DEConfig(population=8, generations=20))
    assert res.best_x is not None and res.best_x[0] <= 0 and res.best_loss <= 3.0
    assert all(h == h for h in res.history)  # no NaN


def test_flatten_load_round_trip():
    mlp = varied_mlp()
    net = BatchedMLP.from_module(mlp)
    n_params = sum(p.numel() for p in mlp.parameters())
    assert net.dim == n_params
    vec = net.flatten(mlp)
    assert torch.equal(vec, nn.utils.parameters_to_vector(mlp.parameters()))  # documented order
    new = torch.randn(net.dim)
    net.load_into(mlp, new)
    assert torch.equal(net.flatten(mlp), new)
    net.load_into(mlp, vec)
    assert torch.equal(net.flatten(mlp), vec)
    with pytest.raises(ValueError):
        net.load_into(mlp, torch.zeros(net.dim + 1))


def test_batched_forward_matches_loop_over_individuals():
    mlp = varied_mlp().eval()  # eval: dropout off, as in DE
    net = BatchedMLP.from_module(mlp)
    X = torch.randn(17, 4)
    pop = net.flatten(mlp) + 0.3 * torch.randn(6, net.dim)
    batched = net.forward(pop, X)
    assert batched.shape == (6, 17, 3)
    module = copy.deepcopy(mlp)
    with torch.no_grad():
        for p in range(6):
            net.load_into(module, pop[p])
            torch.testing.assert_close(batched[p], module(X), rtol=1e-5, atol=1e-6)


def test_unsupported_layers_are_rejected():
    with pytest.raises(TypeError):
        BatchedMLP.from_module(nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Linear(3, 2)))


def _accuracy(mlp, X, y):
    with torch.no_grad():
        return (mlp(X).argmax(dim=1) == y).float().mean().item()


def test_evolve_weights_learns_and_is_deterministic(blobs):
    X, y = blobs
    cfg = DEConfig(population=32, generations=100, patience=None)
    runs = []
    for _ in range(2):
        mlp = small_mlp()
        with torch.no_grad():
            loss0 = nn.functional.cross_entropy(mlp(X), y).item()
        res = evolve_weights(mlp, X, y, config=cfg, generator=torch.Generator().manual_seed(7))
        with torch.no_grad():
            loss1 = nn.functional.cross_entropy(mlp(X), y).item()
        runs.append((res, BatchedMLP.from_module(mlp).flatten(mlp)))
    assert loss1 < loss0 and res.history[-1] < res.history[0]
    assert loss1 == pytest.approx(res.best_loss, abs=1e-5)  # best loaded in place
    assert _accuracy(mlp, X, y) > 0.9
    (r1, w1), (r2, w2) = runs
    assert torch.equal(w1, w2) and r1.history == r2.history and r1.best_loss == r2.best_loss


def test_evolve_weights_with_validation_early_stops(blobs):
    X, y = blobs
    mlp = small_mlp()
    cfg = DEConfig(population=16, generations=400, patience=10, seed=3)
    res = evolve_weights(mlp, X[:200], y[:200], X[200:], y[200:], config=cfg)
    assert res.best_val_loss is not None and res.generations_run < 400
    with torch.no_grad():
        val = nn.functional.cross_entropy(mlp(X[200:]), y[200:]).item()
    assert val == pytest.approx(res.best_val_loss, abs=1e-5)  # the validation-best is loaded
    assert _accuracy(mlp, X[200:], y[200:]) > 0.8


@pytest.mark.parametrize("budget, chunks", [(2**24, 1), (4 * 300 * 8, 4)])
def test_forward_is_batched_once_per_generation_per_chunk(blobs, monkeypatch, budget, chunks):
    X, y = blobs
    calls: list[int] = []
    original = BatchedMLP.forward

    def counting(self, pop, X_):
        calls.append(pop.shape[0])
        return original(self, pop, X_)

    monkeypatch.setattr(BatchedMLP, "forward", counting)
    cfg = DEConfig(population=16, generations=5, patience=None, max_batch_elements=budget)
    res = evolve_weights(small_mlp(), X, y, config=cfg)
    assert res.generations_run == 5 and res.evaluations == 16 * 6
    assert len(calls) == 6 * chunks  # initial population + 5 generations
    assert sum(calls) == 16 * 6 and set(calls) == {16 // chunks}
