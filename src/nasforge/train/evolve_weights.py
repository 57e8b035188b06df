"""Differential evolution (DE) over the weights of a small MLP: the lower level of EB-LNAST.

The upper level of EB-LNAST evolves MLP architectures; for each candidate this module optimises
the weights without gradients. DE needs many fitness evaluations, so the whole population is
evaluated at once: the P weight vectors are unflattened into a [P, out, in] stack per layer and
the network runs as batched matrix products (torch.baddbmm), one forward pass per generation
(or per chunk of the population when P x N x width would not fit in memory), never a Python
loop over individuals.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["BatchedMLP", "DEConfig", "DEResult", "differential_evolution", "evolve_weights"]

# Activations are elementwise and stateless, so the module itself runs on a [P, N, H] tensor.
# Dropout is skipped: DE evaluates deterministically, as in eval mode.
_ACTIVATIONS = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.ELU, nn.LeakyReLU, nn.SiLU)
_SKIPPED = (nn.Identity, nn.Dropout, nn.Flatten)  # Flatten: inputs are already [N, F]


def _walk(module: nn.Module) -> list[nn.Module]:
    """The leaf modules of a (possibly nested) Sequential in forward order; rejects the rest."""
    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in _walk(child)]
    if isinstance(module, (nn.Linear, *_ACTIVATIONS, *_SKIPPED)):
        return [module]
    raise TypeError(
        f"{type(module).__name__} is not supported by BatchedMLP: use nn.Sequential of "
        "nn.Linear, elementwise activations, nn.Dropout and nn.Identity"
    )


class BatchedMLP:
    """A population-wide, functional view of an MLP architecture.

    Flat vector order (D = ``dim`` entries): for each Linear layer in forward order, its weight
    [out, in] in row-major order, then its bias [out] when it has one. This is the order of
    ``torch.nn.utils.parameters_to_vector(seq.parameters())`` for such a Sequential.
    Subclasses of nn.Linear are treated as plain ``x @ W.T + b``: any extra logic in their own
    forward is not reproduced.
    """

    def __init__(self, layers: list[tuple[int, int, bool]], ops: list[nn.Module | int]) -> None:
        self.layers = layers  # (in_features, out_features, has_bias) per Linear
        self.ops = ops  # int = index into layers, module = activation
        self.offsets: list[int] = [0]
        for fan_in, fan_out, has_bias in layers:
            self.offsets.append(self.offsets[-1] + fan_out * (fan_in + int(has_bias)))
        self.dim = self.offsets[-1]
        self.max_width = max([layers[0][0]] + [out for _, out, _ in layers])

    @classmethod
    def from_module(cls, seq: nn.Module) -> BatchedMLP:
        """Read layer shapes and activations from a Sequential (the weights are not kept)."""
        layers: list[tuple[int, int, bool]] = []
        ops: list[nn.Module | int] = []
        for leaf in _walk(seq):
            if isinstance(leaf, nn.Linear):
                ops.append(len(layers))
                layers.append((leaf.in_features, leaf.out_features, leaf.bias is not None))
            elif isinstance(leaf, _ACTIVATIONS):
                ops.append(leaf)
        if not layers:
            raise ValueError("the module has no nn.Linear layer")
        return cls(layers, ops)

    def _linears(self, module: nn.Module) -> list[nn.Linear]:
        """The module's Linear layers, checked against this architecture."""
        linears = [m for m in _walk(module) if isinstance(m, nn.Linear)]
        shapes = [(m.in_features, m.out_features, m.bias is not None) for m in linears]
        if shapes != self.layers:
            raise ValueError(f"module layers {shapes} do not match this BatchedMLP {self.layers}")
        return linears

    def flatten(self, module: nn.Module) -> Tensor:
        """The module's parameters as one detached vector [D] in the documented order."""
        params = [p for lin in self._linears(module) for p in (lin.weight, lin.bias)]
        return torch.cat([p.detach().reshape(-1) for p in params if p is not None]).clone()

    @torch.no_grad()
    def load_into(self, module: nn.Module, vector: Tensor) -> None:
        """Copy a flat vector [D] into the module's Linear layers in place."""
        if vector.shape != (self.dim,):
            raise ValueError(f"expected a vector of shape ({self.dim},), got {tuple(vector.shape)}")
        for lin, (fan_in, fan_out, has_bias), start in zip(
            self._linears(module), self.layers, self.offsets[:-1], strict=True
        ):
            lin.weight.copy_(vector[start : start + fan_out * fan_in].view(fan_out, fan_in))
            if has_bias:
                lin.bias.copy_(vector[start + fan_out * fan_in : start + fan_out * (fan_in + 1)])

    def init_std(self, scale: float) -> Tensor:
        """Per-coordinate std ``scale / sqrt(fan_in)`` (Linear's init scale): fits any width."""
        stds = [torch.full((o * (i + int(b)),), scale / math.sqrt(i)) for i, o, b in self.layers]
        return torch.cat(stds)

    def forward(self, pop: Tensor, X: Tensor) -> Tensor:
        """Logits [P, N, C] of every individual of ``pop`` [P, D] on the shared inputs X [N, F]."""
        P = pop.shape[0]
        h = X.unsqueeze(0).expand(P, *X.shape)
        for op in self.ops:
            if not isinstance(op, int):
                h = op(h)
                continue
            fan_in, fan_out, has_bias = self.layers[op]
            start, mid = self.offsets[op], self.offsets[op] + fan_out * fan_in
            w_t = pop[:, start:mid].view(P, fan_out, fan_in).transpose(1, 2)  # [P, in, out]
            if has_bias:
                h = torch.baddbmm(pop[:, mid : mid + fan_out].unsqueeze(1), h, w_t)
            else:
                h = torch.bmm(h, w_t)
        return h

    def chunk_size(self, n_samples: int, max_batch_elements: int) -> int:
        """How many individuals fit in one forward under the activation-size budget."""
        return max(1, max_batch_elements // max(1, n_samples * self.max_width))

    @torch.no_grad()
    def loss(self, pop: Tensor, X: Tensor, y: Tensor, max_batch_elements: int) -> Tensor:
        """Mean loss [P] of each individual on (X, y), one forward per chunk: cross-entropy for
        class indices (integer ``y``), squared error for a standardised number (float ``y``)."""
        step = self.chunk_size(X.shape[0], max_batch_elements)
        losses = []
        for chunk in pop.split(step):
            out = self.forward(chunk, X)
            if y.is_floating_point():
                losses.append(((out.squeeze(-1) - y.unsqueeze(0)) ** 2).mean(dim=1))
                continue
            logp = torch.log_softmax(out, dim=-1)
            idx = y.view(1, -1, 1).expand(chunk.shape[0], -1, 1)
            losses.append(-logp.gather(-1, idx).squeeze(-1).mean(dim=1))
        return torch.cat(losses)


@dataclass(frozen=True)
class DEConfig:
    """Settings of differential evolution.

    init_scale: std of the Gaussian noise that spreads the initial population around x0. DE steps
        are differences of population members, so this spread sets the first step sizes.
        ``evolve_weights`` scales it per layer by 1/sqrt(fan_in) (see BatchedMLP.init_std).
    seed: seeds a fresh torch.Generator when none is passed, so runs are reproducible.
    patience: stop after this many generations without the monitored loss (validation loss
        when given, else the best training loss) improving by more than ``min_delta``; None
        runs all generations.
    max_batch_elements: budget of activation floats (P_chunk x N x widest layer) per forward;
        the population is split into chunks that fit.
    """

    population: int = 32
    generations: int = 100
    F: float = 0.5
    CR: float = 0.9
    strategy: Literal["rand/1/bin", "best/1/bin"] = "rand/1/bin"
    init_scale: float = 0.5
    seed: int = 0
    patience: int | None = 20
    min_delta: float = 0.0
    max_batch_elements: int = 2**24

    def __post_init__(self) -> None:
        if self.population < 4:
            raise ValueError("population must be >= 4 (each mutant needs 3 other members)")
        if self.generations < 0 or not 0.0 < self.F <= 2.0 or not 0.0 <= self.CR <= 1.0:
            raise ValueError("need generations >= 0, 0 < F <= 2 and 0 <= CR <= 1")
        if self.strategy not in ("rand/1/bin", "best/1/bin"):
            raise ValueError(f"unknown DE strategy {self.strategy!r}")


@dataclass
class DEResult:
    """Outcome of a DE run.

    best_loss: training loss (objective) of the returned individual; with validation data that
        individual is the one with the lowest validation loss, not necessarily the lowest
        training loss. best_val_loss: its validation loss, None without validation data.
    evaluations: individuals evaluated on the objective (validation checks not counted).
    history: best training loss of the population, initial population first, then one entry
        per generation run (len = generations_run + 1).
    """

    best_loss: float
    best_val_loss: float | None
    generations_run: int
    evaluations: int
    history: list[float]
    best_x: Tensor | None = field(default=None, repr=False)


def _finite(f: Tensor) -> Tensor:
    return torch.where(torch.isfinite(f), f, torch.full_like(f, math.inf))


@torch.no_grad()
def differential_evolution(
    objective_batched: Callable[[Tensor], Tensor],
    x0: Tensor,
    config: DEConfig = DEConfig(),
    generator: torch.Generator | None = None,
    *,
    init_std: Tensor | None = None,
    monitor: Callable[[Tensor], float] | None = None,
) -> DEResult:
    """Minimise ``objective_batched(pop [P, D]) -> [P]`` by DE, starting around x0 [D].

    x0 itself is member 0 of the initial population, so the result is never worse than x0 on
    the monitored loss. ``init_std`` (scalar or [D]) overrides ``config.init_scale``.
    ``monitor(x [D]) -> float`` scores the population's best member whenever it changes (e.g. a
    validation loss); the returned individual is the best by that score. Random numbers come
    only from ``generator`` (CPU), so a seeded run is reproducible. Non-finite fitness is +inf.
    """
    gen = generator if generator is not None else torch.Generator().manual_seed(config.seed)
    P, D = config.population, x0.numel()
    x0 = x0.detach().reshape(-1)
    std = torch.as_tensor(config.init_scale if init_std is None else init_std, dtype=x0.dtype)
    noise = (torch.randn(P - 1, D, generator=gen, dtype=x0.dtype) * std).to(x0.device)
    pop = torch.cat([x0.unsqueeze(0), x0.unsqueeze(0) + noise])
    fit = _finite(objective_batched(pop))
    evaluations = P

    b = int(fit.argmin())
    history = [float(fit[b])]
    best_x, best_fit = pop[b].clone(), float(fit[b])
    best_score = monitor(best_x) if monitor is not None else best_fit
    stale = 0
    for _ in range(config.generations):
        keys = torch.rand(P, P, generator=gen)
        keys.fill_diagonal_(2.0)  # never pick yourself
        r = keys.argsort(dim=1)[:, :3].to(pop.device)
        if config.strategy == "best/1/bin":
            mutant = pop[b] + config.F * (pop[r[:, 0]] - pop[r[:, 1]])
        else:
            mutant = pop[r[:, 0]] + config.F * (pop[r[:, 1]] - pop[r[:, 2]])
        cross = torch.rand(P, D, generator=gen) < config.CR
        cross[torch.arange(P), torch.randint(D, (P,), generator=gen)] = True  # >= 1 gene mutates
        trial = torch.where(cross.to(pop.device), mutant, pop)
        trial_fit = _finite(objective_batched(trial))
        evaluations += P
        better = trial_fit <= fit
        pop = torch.where(better.unsqueeze(1), trial, pop)
        fit = torch.where(better, trial_fit, fit)

        new_b = int(fit.argmin())
        changed = new_b != b or bool(better[new_b])
        b = new_b
        history.append(float(fit[b]))
        score = (monitor(pop[b]) if changed else math.inf) if monitor is not None else float(fit[b])
        stale = 0 if score < best_score - config.min_delta else stale + 1
        if score < best_score:  # kept even when within min_delta (that only counts as stale)
            best_x, best_fit, best_score = pop[b].clone(), float(fit[b]), score
        if config.patience is not None and stale >= config.patience:
            break

    val = best_score if monitor is not None else None
    return DEResult(best_fit, val, len(history) - 1, evaluations, history, best_x)


def evolve_weights(
    module: nn.Module,
    X_train: Tensor,
    y_train: Tensor,
    X_val: Tensor | None = None,
    y_val: Tensor | None = None,
    config: DEConfig = DEConfig(),
    generator: torch.Generator | None = None,
) -> DEResult:
    """Optimise an MLP's weights by DE on the training loss (cross-entropy, or squared error for a
    regression's float target); load the best in place.

    The population starts at the module's current weights plus Gaussian noise (std
    ``config.init_scale / sqrt(fan_in)`` per layer). With validation data, the individual kept
    is the one with the lowest validation loss seen, and patience counts generations without
    a validation improvement (early stopping against overfitting the training set).
    """
    if (X_val is None) != (y_val is None):
        raise ValueError("give both X_val and y_val, or neither")
    net = BatchedMLP.from_module(module)
    x0 = net.flatten(module)
    dev, dtype = x0.device, x0.dtype
    Xt = torch.as_tensor(X_train).to(dev, dtype)
    target_type = dtype if torch.as_tensor(y_train).is_floating_point() else torch.long  # regression / classes
    yt = torch.as_tensor(y_train).to(dev, target_type)
    budget = config.max_batch_elements
    monitor = None
    if X_val is not None and y_val is not None:
        Xv = torch.as_tensor(X_val).to(dev, dtype)
        yv = torch.as_tensor(y_val).to(dev, target_type)

        def monitor(x: Tensor) -> float:
            return float(_finite(net.loss(x.unsqueeze(0), Xv, yv, budget))[0])

    result = differential_evolution(
        lambda pop: net.loss(pop, Xt, yt, budget),
        x0, config, generator, init_std=net.init_std(config.init_scale), monitor=monitor,
    )
    assert result.best_x is not None
    net.load_into(module, result.best_x)
    return result
