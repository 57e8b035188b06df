"""Tests for per-layer learning rules: exact gradients, feedback lifetimes, training."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.learning_rules import RULES, RuleConv2d, RuleLinear

BIO_RULES = [r for r in RULES if r != "backprop"]
CONV_CONFIGS = [
    dict(kernel_size=3, stride=1, padding=1),
    dict(kernel_size=3, stride=2, padding=0, dilation=2),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), groups=2),
    dict(kernel_size=3, padding=1, groups=4),  # depthwise (in = groups = 4)
    dict(kernel_size=4, padding="same"),  # even kernel: asymmetric padding
    dict(kernel_size=3, padding=1, padding_mode="reflect"),
]


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """These nets are tiny: on a shared 2-core box extra threads only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _plain_linear(layer: nn.Linear) -> nn.Linear:
    plain = nn.Linear(layer.in_features, layer.out_features, layer.bias is not None)
    plain.load_state_dict(layer.state_dict())
    return plain


def _conv_out_channels(cfg: dict) -> int:
    return 4 if cfg.get("groups", 1) > 1 else 3


def _plain_conv(layer: nn.Conv2d, weight: torch.Tensor | None = None) -> nn.Conv2d:
    plain = nn.Conv2d(
        layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
        layer.padding, layer.dilation, layer.groups, layer.bias is not None,
        layer.padding_mode,
    )  # fmt: skip
    plain.load_state_dict(layer.state_dict())
    if weight is not None:
        with torch.no_grad():
            plain.weight.copy_(weight)
    return plain


def test_rules_and_unknown_rule() -> None:
    assert RULES == ("backprop", "fa", "usf", "brsf", "frsf")
    for make in (lambda: RuleLinear(4, 3, rule="dfa"), lambda: RuleConv2d(2, 2, 3, rule="dfa")):
        with pytest.raises(ValueError, match="backprop, fa, usf, brsf, frsf"):
            make()
    assert "rule=usf, scale=True" in repr(RuleLinear(4, 3, rule="usf", scale=True))
    assert "rule=frsf" in repr(RuleConv2d(2, 2, 3, rule="frsf"))


@pytest.mark.parametrize("scale", [False, True])
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4)])
def test_linear_gradients_follow_definition(rule: str, scale: bool, shape: tuple) -> None:
    layer = RuleLinear(4, 3, rule=rule, scale=scale)
    plain = _plain_linear(layer)
    x = torch.randn(*shape, requires_grad=True)
    xp = x.detach().clone().requires_grad_()
    delta = torch.randn(*shape[:-1], 3)
    layer(x).backward(delta)
    b = layer.feedback()
    plain(xp).backward(delta)
    torch.testing.assert_close(x.grad, delta @ b)
    torch.testing.assert_close(layer.weight.grad, plain.weight.grad)
    torch.testing.assert_close(layer.bias.grad, plain.bias.grad)
    torch.testing.assert_close(
        layer.weight.grad, delta.reshape(-1, 3).t() @ x.detach().reshape(-1, 4)
    )
    if rule != "backprop":
        assert not torch.allclose(b, layer.weight)  # really a different feedback path


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("cfg", CONV_CONFIGS, ids=lambda c: "-".join(map(str, c.values())))
def test_conv_gradients_follow_definition(rule: str, cfg: dict) -> None:
    layer = RuleConv2d(4, _conv_out_channels(cfg), rule=rule, **cfg)
    x = torch.randn(2, 4, 7, 6, requires_grad=True)
    out = layer(x)
    delta = torch.randn_like(out)
    out.backward(delta)
    b = layer.feedback()
    # Definition: the input gradient of the same conv with B in place of W ...
    xb = x.detach().clone().requires_grad_()
    _plain_conv(layer, weight=b)(xb).backward(delta)
    torch.testing.assert_close(x.grad, xb.grad)
    if isinstance(cfg.get("padding", 0), int | tuple) and "padding_mode" not in cfg:
        expected = torch.nn.grad.conv2d_input(
            x.shape, b, delta, layer.stride, layer.padding, layer.dilation, layer.groups
        )
        torch.testing.assert_close(x.grad, expected)
    # ... and the usual weight and bias gradients.
    plain = _plain_conv(layer)
    plain(x.detach()).backward(delta)
    torch.testing.assert_close(layer.weight.grad, plain.weight.grad)
    torch.testing.assert_close(layer.bias.grad, plain.bias.grad)


def test_backprop_is_exactly_autograd() -> None:
    lin = RuleLinear(4, 3)
    conv = RuleConv2d(2, 3, 3, stride=2, padding=1)
    for layer, plain, x in (
        (lin, _plain_linear(lin), torch.randn(5, 4)),
        (conv, _plain_conv(conv), torch.randn(2, 2, 6, 6)),
    ):
        xa, xp = x.clone().requires_grad_(), x.clone().requires_grad_()
        out, ref = layer(xa), plain(xp)
        assert torch.equal(out, ref)
        delta = torch.randn_like(out)
        out.backward(delta)
        ref.backward(delta)
        assert torch.equal(xa.grad, xp.grad)
        assert torch.equal(layer.weight.grad, plain.weight.grad)
        assert torch.equal(layer.bias.grad, plain.bias.grad)
        assert torch.equal(layer.feedback(), layer.weight.detach())


def _sgd_steps(layer: nn.Module, x: torch.Tensor, steps: int = 3) -> None:
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    for _ in range(steps):
        opt.zero_grad()
        layer(x).pow(2).sum().backward()
        opt.step()


@pytest.mark.parametrize(
    "make",
    [lambda r: RuleLinear(6, 5, rule=r), lambda r: RuleConv2d(2, 3, 3, rule=r)],
    ids=["linear", "conv"],
)
def test_feedback_lifetimes(make: Callable[[str], nn.Module]) -> None:
    x = torch.randn(8, 6) if isinstance(make("usf"), nn.Linear) else torch.randn(4, 2, 5, 5)
    fa, usf, frsf, brsf = (make(r) for r in ("fa", "usf", "frsf", "brsf"))
    b0, w0 = fa.feedback().clone(), fa.weight.detach().clone()
    _sgd_steps(fa, x)
    assert not torch.equal(fa.weight, w0)
    assert torch.equal(fa.feedback(), b0)  # fa: B fixed for the run

    _sgd_steps(usf, x)
    assert torch.equal(usf.feedback(), torch.sign(usf.weight.detach()))

    m0 = frsf.feedback().abs().clone()
    _sgd_steps(frsf, x)
    b1 = frsf.feedback()
    assert torch.equal(b1.abs(), m0)  # frsf: |M| fixed, ...
    assert torch.equal(torch.sign(b1), torch.sign(frsf.weight.detach()))  # ... signs track W

    brsf.train()
    brsf(x)
    b_first = brsf.feedback().clone()
    brsf(x)  # same W, new mini-batch: new magnitudes
    b_second = brsf.feedback().clone()
    assert not torch.equal(b_first, b_second)
    assert torch.equal(torch.sign(b_second), torch.sign(brsf.weight.detach()))
    brsf.eval()
    brsf(x)  # no training forward, no redraw
    assert torch.equal(brsf.feedback(), b_second)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_scale_multiplies_feedback(rule: str, kind: str) -> None:
    def make(scale: bool) -> nn.Module:
        torch.manual_seed(1)  # same W and same random draws for both layers
        if kind == "linear":
            return RuleLinear(4, 3, rule=rule, scale=scale)
        return RuleConv2d(2, 4, 3, rule=rule, scale=scale)

    fan_in, fan_out = (4, 3) if kind == "linear" else (2 * 9, 4 * 9)  # kernel size counts
    factor = math.sqrt(2 / (fan_in + fan_out))
    if rule == "backprop":
        factor = 1.0  # backprop stays the true gradient
    unscaled, scaled = make(False), make(True)
    torch.testing.assert_close(scaled.feedback(), unscaled.feedback() * factor)


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")
@pytest.mark.parametrize("rule", RULES)
def test_state_dict_and_plain_forward(rule: str) -> None:
    lin, conv = RuleLinear(4, 3, rule=rule), RuleConv2d(2, 3, 3, padding=1, rule=rule)
    plain_lin, plain_conv = nn.Linear(4, 3), nn.Conv2d(2, 3, 3, padding=1)
    assert list(lin.state_dict()) == list(plain_lin.state_dict())
    assert list(conv.state_dict()) == list(plain_conv.state_dict())
    plain_lin.load_state_dict(lin.state_dict())
    plain_conv.load_state_dict(conv.state_dict())
    for layer, plain, x in ((lin, plain_lin, torch.randn(5, 4)),
                            (conv, plain_conv, torch.randn(2, 2, 5, 5))):  # fmt: skip
        assert torch.equal(layer(x), plain(x))  # training forward uses W unchanged
        with torch.no_grad():
            assert torch.equal(layer(x), plain(x))
        layer.eval()
        assert torch.equal(layer(x), plain(x))
        traced = torch.jit.trace(layer, x)  # eval: an ordinary graph, no Python op
        assert "PythonOp" not in str(traced.inlined_graph)
        assert torch.equal(traced(x), plain(x))


def _blobs(n: int = 200, dim: int = 8, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    centres = 2.0 * torch.randn(classes, dim, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return centres[y] + torch.randn(n, dim, generator=g), y


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> tuple[float, float]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    with torch.no_grad():
        first = F.cross_entropy(model(x), y).item()
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        return first, F.cross_entropy(model(x), y).item()


@pytest.mark.parametrize("rule", RULES)
def test_mlp_trains_with_each_rule(rule: str) -> None:
    x, y = _blobs()
    model = nn.Sequential(
        RuleLinear(8, 32, rule=rule), nn.ReLU(),
        RuleLinear(32, 32, rule=rule), nn.ReLU(),
        RuleLinear(32, 3, rule=rule),
    )  # fmt: skip
    first, last = _train(model, x, y, steps=100)
    assert last < 0.7 * first


class _MixedNet(nn.Module):
    """Different rule per layer, with BatchNorm, Dropout and a residual add."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = RuleLinear(8, 32, rule="fa")
        self.bn = nn.BatchNorm1d(32)
        self.block = nn.Sequential(RuleLinear(32, 32, rule="brsf", scale=True), nn.ReLU(),
                                   nn.Dropout(0.1), RuleLinear(32, 32, rule="usf"))  # fmt: skip
        self.out = RuleLinear(32, 3, rule="frsf")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn(self.inp(x)))
        return self.out(F.relu(h + self.block(h)))


def test_mixed_rule_network_trains() -> None:
    x, y = _blobs()
    first, last = _train(_MixedNet(), x, y, steps=100)
    assert last < 0.7 * first


class _TinyConvNet(nn.Module):
    def __init__(self, rule: str) -> None:
        super().__init__()
        self.stem = nn.Sequential(RuleConv2d(2, 8, 3, padding=1, rule=rule), nn.BatchNorm2d(8))
        self.res = nn.Sequential(RuleConv2d(8, 8, 3, padding=1, rule=rule), nn.BatchNorm2d(8))
        self.head = RuleLinear(8, 2, rule=rule)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.stem(x))
        h = F.relu(h + self.res(h))
        return self.head(h.mean(dim=(2, 3)))


@pytest.mark.parametrize("rule", RULES)
def test_conv_net_trains_with_each_rule(rule: str) -> None:
    g = torch.Generator().manual_seed(7)
    x = torch.randn(64, 2, 8, 8, generator=g)
    y = (x[:, 0].mean(dim=(1, 2)) > x[:, 1].mean(dim=(1, 2))).long()
    x[:, 0] += (2 * y.float() - 1)[:, None, None] * 0.5  # make the classes separable
    first, last = _train(_TinyConvNet(rule), x, y, steps=60)
    assert last < 0.7 * first
