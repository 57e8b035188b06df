import json

import numpy as np
import pytest
import torch

from nasforge.errors import InvalidGenome
from nasforge.learning_rules import RuleConv2d, RuleLinear
from nasforge.spaces.base import parse_genome
from nasforge.spaces.net import INSTRUCTION_OPERATORS, REGULARIZATIONS, NetGenome
from nasforge.spaces.net_layers import (
    WIDTHS,
    ConvLayer,
    DenseLayer,
    DropoutLayer,
    GlobalPoolLayer,
    PoolLayer,
    Skip,
)  # fmt: skip
from nasforge.spaces.net_space import NetSpace

torch.set_num_threads(1)
IMAGE_SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]


def conv(ch, **kw):
    return ConvLayer(channels=ch, **kw)


def net(*layers, skips=(), **kw):
    return NetGenome(layers=tuple(layers), skips=tuple(Skip(src=i, dst=j) for i, j in skips), **kw)


def forward_ok(g, shape, n_classes=5):
    model = g.build(shape, n_classes)
    out = model(torch.randn(3, *shape))
    assert out.shape == (3, n_classes) and torch.isfinite(out).all()
    assert sum(p.numel() for p in model.parameters()) == g.n_params(shape, n_classes)
    return model


# Every layer kind, a stride-2 conv, both pools, a 1x1 and a 5x5 kernel, a projected skip.
ALL_KINDS = net(
    conv(8, kernel=5, batch_norm=True), conv(16, stride=2, activation="none"), PoolLayer(op="avg"),
    DropoutLayer(rate=0.1), conv(32, kernel=1), GlobalPoolLayer(), DenseLayer(units=32, activation="gelu"),
    DropoutLayer(rate=0.5), DenseLayer(units=16), skips=[(2, 4), (2, 3), (6, 8)],
)  # fmt: skip


@pytest.mark.parametrize("shape", IMAGE_SHAPES)
def test_every_layer_kind_builds_and_runs_on_images(shape):
    forward_ok(ALL_KINDS, shape)
    no_global_pool = net(conv(8), PoolLayer(), conv(4, stride=2), DenseLayer(units=8))  # implied flatten
    forward_ok(no_global_pool, shape)
    forward_ok(net(conv(4)), shape)  # the classifier flattens too
    NetSpace(shape, 5).check(ALL_KINDS)


def test_flat_inputs_take_dense_only_genomes():
    g = net(DenseLayer(units=32), DropoutLayer(rate=0.2), DenseLayer(units=64, activation="none"), skips=[(0, 2)])
    forward_ok(g, (20,))
    forward_ok(net(), (20,))
    space = NetSpace((20,), 5)
    space.check(g)
    with pytest.raises(InvalidGenome, match="needs an image"):
        space.check(net(conv(8)))
    with pytest.raises(ValueError, match="needs an image"):
        net(conv(8)).build((20,), 5)
    assert space.add_conv(g, np.random.default_rng(0)) is None


def test_two_dimensional_input_is_one_channel():
    forward_ok(net(conv(4), GlobalPoolLayer()), (8, 8))


def test_json_round_trip_and_id_stability():
    g = ALL_KINDS.model_copy(update={"init": "kaiming", "regularization": 1e-4, "output_rule": "fa"})
    text = g.to_json()
    assert '"skips":[{"from":2,"to":3},{"from":2,"to":4},{"from":6,"to":8}]' in text  # as the schema says, sorted
    again = parse_genome(NetGenome, text)
    assert again == g and again.id == g.id and again.to_json() == text
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    shuffled = dict(reversed(list(json.loads(text).items())))
    assert parse_genome(NetGenome, shuffled).id == g.id
    assert net(conv(8), conv(16)).id == net(conv(8), conv(16)).id != net(conv(16), conv(8)).id
    two = (conv(8), conv(8), conv(8))
    assert net(*two, skips=[(1, 2), (0, 1)]).id == net(*two, skips=[(0, 1), (1, 2)]).id  # order is no identity
    assert g.weight_decay == 1e-4


def test_summary_line():
    g = net(conv(16), conv(32, stride=2, batch_norm=True), GlobalPoolLayer(), DenseLayer(units=64, rule="fa"),
            skips=[(0, 1)], regularization=1e-4)  # fmt: skip
    assert g.summary() == "c16k3-c32k3s2b-gp-d64:fa +1skip wd0.0001"
    assert net().summary() == "linear"


def test_json_schema_accepts_good_and_rejects_bad_genomes():
    schema = NetGenome.json_schema()
    assert json.loads(NetGenome.schema_json()) == schema
    assert schema["properties"]["family"]["const"] == "net" and "family" in schema["required"]
    assert schema["$defs"]["ConvLayer"]["properties"]["channels"]["enum"] == list(WIDTHS)
    assert schema["$defs"]["DenseLayer"]["properties"]["units"]["enum"] == list(WIDTHS)
    assert schema["properties"]["regularization"]["enum"] == list(REGULARIZATIONS)
    assert all("kind" in d["required"] for n, d in schema["$defs"].items() if n != "Skip")
    assert schema["$defs"]["Skip"]["required"] == ["from", "to"]
    good = ALL_KINDS.to_dict()
    bad_layer = {"kind": "conv", "channels": 12}
    bads = [
        {**good, "layers": [bad_layer]},  # channels off the grid
        {**good, "layers": [{"kind": "attention", "heads": 2}]},
        {**good, "layers": [{"channels": 8}]},  # no kind
        {**good, "regularization": 0.5},
        {**good, "skips": [{"from": -1, "to": 2}]},
        {**good, "colour": "blue"},
    ]
    try:
        import jsonschema
    except ImportError:  # not in the venv: pydantic enforces the same schema
        jsonschema = None
    if jsonschema is not None:
        jsonschema.validate(good, schema)
        for bad in bads:
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate(bad, schema)
    assert parse_genome(NetGenome, good) == ALL_KINDS
    for bad in bads:
        with pytest.raises(InvalidGenome):
            parse_genome(NetGenome, bad)
    assert bad_layer["channels"] not in schema["$defs"]["ConvLayer"]["properties"]["channels"]["enum"]


SKIP_BASE = (conv(8), conv(8), PoolLayer(), conv(16), GlobalPoolLayer(), DenseLayer(units=16))


@pytest.mark.parametrize(
    "skips, reason",
    [
        ([(1, 0)], "must go forward"),
        ([(1, 1)], "must go forward"),
        ([(0, 9)], "does not exist"),
        ([(0, 1), (0, 1)], "appears twice"),
        ([(0, 3)], "spatial sizes differ"),  # 8x8 -> 4x4 across the pool
        ([(3, 5)], "crosses the flatten/global_pool boundary"),
    ],
)
def test_impossible_skips_rejected_with_reason(skips, reason):
    g = net(*SKIP_BASE, skips=skips)
    with pytest.raises(InvalidGenome, match=reason):
        NetSpace((1, 8, 8), 3).check(g)
    with pytest.raises(ValueError, match=reason):
        g.build((1, 8, 8), 3)


def test_skip_across_implied_flatten_and_stride_rejected():
    space = NetSpace((1, 8, 8), 3)
    with pytest.raises(InvalidGenome, match="boundary"):
        space.check(net(conv(8), DenseLayer(units=16), skips=[(0, 1)]))
    with pytest.raises(InvalidGenome, match="spatial"):
        space.check(net(conv(8), conv(8, stride=2), skips=[(0, 1)]))


def test_projection_skip_and_identity_skip_add_outputs():
    torch.manual_seed(0)
    g = net(conv(8), conv(16), conv(16, activation="none"), GlobalPoolLayer(), skips=[(0, 1), (1, 2)])
    NetSpace((1, 8, 8), 3).check(g)
    model = forward_ok(g, (1, 8, 8), 3)
    proj = model.projections["0_1"]
    assert isinstance(proj, torch.nn.Conv2d) and proj.kernel_size == (1, 1) and proj.bias is None
    assert isinstance(model.projections["1_2"], torch.nn.Identity)
    with torch.no_grad():  # a silent layer 2 leaves exactly its skip input
        model.blocks[2][0].weight.zero_()
        model.blocks[2][0].bias.zero_()
        x = torch.randn(2, 1, 8, 8)
        h0 = model.blocks[0](x)
        h1 = model.blocks[1](h0) + proj(h0)
        assert torch.allclose(model(x), model.head(model.blocks[3](h1)), atol=1e-6)
    dense = net(DenseLayer(units=32), DenseLayer(units=16), skips=[(0, 1)])
    lin = forward_ok(dense, (6,)).projections["0_1"]
    assert isinstance(lin, torch.nn.Linear) and lin.bias is None and lin.weight.shape == (16, 32)


def test_spatial_size_must_stay_positive():
    space = NetSpace((1, 8, 8), 3)
    space.check(net(conv(8), PoolLayer(), PoolLayer(), PoolLayer()))  # 8 -> 1
    with pytest.raises(InvalidGenome, match="too many reductions"):
        space.check(net(conv(8), PoolLayer(), PoolLayer(), PoolLayer(), PoolLayer()))
    NetSpace((1, 28, 28), 3).check(net(conv(8), PoolLayer(), PoolLayer(), PoolLayer(), PoolLayer()))
    with pytest.raises(InvalidGenome, match="needs an image"):
        space.check(net(conv(8), GlobalPoolLayer(), conv(8)))


def test_params_budget_and_space_bounds():
    big = net(conv(128), conv(128), DenseLayer(units=256))
    with pytest.raises(InvalidGenome, match="budget"):
        NetSpace((1, 8, 8), 3, max_params=20000).check(big)
    small = NetSpace((1, 8, 8), 3, max_params=5000, max_conv=3, max_dense=1)
    rng = np.random.default_rng(3)
    for _ in range(10):
        g = small.sample(rng)
        assert g.n_params((1, 8, 8), 3) <= 5000
    with pytest.raises(InvalidGenome, match="conv layers"):
        small.check(net(*[conv(8)] * 4))
    with pytest.raises(InvalidGenome, match="channels"):
        small.check(net(conv(512)))
    with pytest.raises(InvalidGenome, match="learning rules"):
        small.check(net(conv(8, rule="fa")))
    with pytest.raises(InvalidGenome, match="subset"):
        NetSpace((1, 8, 8), 3, channels=(12,))


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28)])
def test_sampled_and_mutated_genomes_are_valid_and_build(shape):
    space = NetSpace(shape, 4, rules=("backprop", "fa"))
    rng = np.random.default_rng(7)
    for _ in range(12):
        g = space.sample(rng)
        assert space.is_valid(g) and g.count("conv") >= 1
        child, name = space.mutate(g, rng)
        assert space.is_valid(child) and child != g and name in space.mutation_operators()
        assert parse_genome(NetGenome, child.to_json()) == child  # operators keep the canonical form
        forward_ok(child, shape, 4)


# --- LEMONADE instructions -------------------------------------------------------------
BASE = net(
    conv(8), conv(16), conv(16), PoolLayer(), conv(32), GlobalPoolLayer(), DenseLayer(units=32),
    DropoutLayer(rate=0.2), skips=[(0, 2), (3, 4)], regularization=1e-4,
)  # fmt: skip
SHAPE = (1, 28, 28)


def changed_layers(a, b):
    return [i for i, (x, y) in enumerate(zip(a.layers, b.layers)) if x != y]


COUNT_DELTAS = {
    "ACL": ("conv", +1), "RCL": ("conv", -1), "ADL": ("dense", +1), "RDL": ("dense", -1),
    "AD": ("dropout", +1), "RD": ("dropout", -1),
}  # fmt: skip


@pytest.mark.parametrize("code", sorted(COUNT_DELTAS))
def test_layer_count_instructions(code):
    kind, delta = COUNT_DELTAS[code]
    space = NetSpace(SHAPE, 3, max_dense=3)
    for seed in range(6):
        child = space.mutation_operators()[INSTRUCTION_OPERATORS[code]](BASE, np.random.default_rng(seed))
        assert child.count(kind) == BASE.count(kind) + delta
        assert len(child.layers) == len(BASE.layers) + delta
        space.check(child)
        forward_ok(child, SHAPE, 3)
        kinds = [layer.kind for layer in child.layers]
        assert not any(a == b == "dropout" for a, b in zip(kinds, kinds[1:]))
        if delta > 0:  # an insertion keeps every skip on the same two layers
            assert len(child.skips) == len(BASE.skips)
            for old, new in zip(BASE.skips, child.skips):
                assert (child.layers[new.src], child.layers[new.dst]) == (BASE.layers[old.src], BASE.layers[old.dst])


def test_add_dense_goes_after_the_image_part_and_remove_conv_drops_skips():
    space = NetSpace(SHAPE, 3, max_dense=3)
    for seed in range(6):
        child = space.add_dense(BASE, np.random.default_rng(seed))
        first_dense = min(i for i, layer in enumerate(child.layers) if layer.kind == "dense")
        assert first_dense > 5  # after the global_pool
    # 8 -> 4 -> 2 -> 1 -> 1 (stride 2 on 1x1 changes nothing) -> 1: skip 3->5 joins two 1x1 maps.
    s2 = conv(8, stride=2)
    g = net(s2, s2, s2, conv(8), s2, conv(8), skips=[(3, 5)])
    small = NetSpace((1, 8, 8), 3)
    small.check(g)
    outcomes = set()
    for seed in range(30):
        child = small.remove_conv(g, np.random.default_rng(seed))
        small.check(child)  # skips that touch the removed layer or no longer fit are gone
        if child.layers == g.layers[:4] + g.layers[5:]:  # only the no-op stride was removed
            assert child.skips == (Skip(src=3, dst=4),)
        else:  # the skip touched the removed layer, or now joins 2x2 to 1x1
            assert child.skips == ()
        outcomes.add(bool(child.skips))
    assert outcomes == {True, False}


def test_skip_instructions():
    space = NetSpace(SHAPE, 3)
    for seed in range(6):
        child = space.add_skip(BASE, np.random.default_rng(seed))
        assert len(child.skips) == 3 and set(BASE.skips) < set(child.skips)
        space.check(child)
        forward_ok(child, SHAPE, 3)
        fewer = space.remove_skip(BASE, np.random.default_rng(seed))
        assert len(fewer.skips) == 1 and set(fewer.skips) < set(BASE.skips)
    assert space.remove_skip(net(conv(8)), np.random.default_rng(0)) is None
    assert NetSpace(SHAPE, 3, max_skips=2).add_skip(BASE, np.random.default_rng(0)) is None


@pytest.mark.parametrize("code, kind, up", [("AMK", "conv", True), ("RK", "conv", False),
                                            ("AMN", "dense", True), ("RN", "dense", False)])  # fmt: skip
def test_width_instructions_move_one_layer_one_grid_step(code, kind, up):
    space = NetSpace(SHAPE, 3, channels=(8, 16, 32, 64), units=(16, 32, 64))
    op = space.mutation_operators()[INSTRUCTION_OPERATORS[code]]
    for seed in range(6):
        child = op(BASE, np.random.default_rng(seed))
        (at,) = changed_layers(BASE, child)
        field = "channels" if kind == "conv" else "units"
        assert child.layers[at].kind == kind
        old, new = getattr(BASE.layers[at], field), getattr(child.layers[at], field)
        assert new == (old * 2 if up else old // 2)  # the next step of a power-of-two grid
        space.check(child)
        forward_ok(child, SHAPE, 3)
    edge = net(conv(64), GlobalPoolLayer(), DenseLayer(units=64)) if up else net(conv(8), DenseLayer(units=16))
    assert op(edge, np.random.default_rng(0)) is None


def test_regularization_and_init_instructions():
    space = NetSpace(SHAPE, 3)
    rng = np.random.default_rng(0)
    up = space.mutation_operators()[INSTRUCTION_OPERATORS["AR"]](BASE, rng)
    down = space.mutation_operators()[INSTRUCTION_OPERATORS["RR"]](BASE, rng)
    assert (up.regularization, down.regularization) == (1e-3, 1e-5) and up.weight_decay == 1e-3
    assert up.layers == BASE.layers and down.layers == BASE.layers
    assert space.add_regularization(BASE.model_copy(update={"regularization": 1e-2}), rng) is None
    assert space.reduce_regularization(BASE.model_copy(update={"regularization": 0.0}), rng) is None
    for seed in range(4):
        child = space.mutation_operators()[INSTRUCTION_OPERATORS["AWI"]](BASE, np.random.default_rng(seed))
        assert child.init != BASE.init and child.model_copy(update={"init": "default"}) == BASE
        model = child.build(SHAPE, 3)
        biases = [m.bias for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        assert all(torch.count_nonzero(b.detach()) == 0 for b in biases if b is not None)
    with pytest.raises(InvalidGenome, match="regularization"):
        parse_genome(NetGenome, {"regularization": 3e-4})


def test_orthogonal_init_is_applied():
    model = net(DenseLayer(units=8), init="orthogonal").build((32,), 3)
    w = model.blocks[0][0].weight
    assert torch.allclose(w @ w.T, torch.eye(8), atol=1e-5)


def test_instruction_table_and_operator_names():
    assert set(INSTRUCTION_OPERATORS) == {"ACL", "RCL", "ASC", "RSC", "ADL", "RDL", "AD", "RD",
                                          "AMK", "RK", "AMN", "RN", "AR", "RR", "AWI"}  # fmt: skip
    assert set(NetSpace(SHAPE, 3).mutation_operators()) == set(INSTRUCTION_OPERATORS.values())
    space = NetSpace(SHAPE, 3, rules=("backprop", "fa"))
    assert set(space.mutation_operators()) == {*INSTRUCTION_OPERATORS.values(), "change_rule"}
    child = space.apply_instruction(BASE, "ACL", np.random.default_rng(0))
    assert child.count("conv") == BASE.count("conv") + 1 and space.is_valid(child)
    assert space.apply_instruction(net(conv(8)), "RSC", np.random.default_rng(0)) is None
    assert NetSpace(SHAPE, 3).apply_instruction(BASE, "change_rule", np.random.default_rng(0)) is None
    with pytest.raises(InvalidGenome, match="unknown instruction"):
        space.apply_instruction(BASE, "XYZ", np.random.default_rng(0))


def test_change_rule_changes_exactly_one_rule():
    space = NetSpace(SHAPE, 3, rules=("backprop", "fa", "usf"))
    for seed in range(8):
        child = space.change_rule(BASE, np.random.default_rng(seed))
        diffs = [(a, b) for a, b in zip(BASE.rules(), child.rules()) if a != b]
        assert len(diffs) == 1 and diffs[0][1] in ("fa", "usf")


def test_bio_learning_rules_build_rule_layers_and_train():
    torch.manual_seed(0)
    g = net(conv(8, rule="fa"), conv(16, rule="usf", batch_norm=True), GlobalPoolLayer(),
            DenseLayer(units=16, rule="frsf"), skips=[(0, 1)], output_rule="brsf")  # fmt: skip
    NetSpace((1, 8, 8), 3, rules=("backprop", "fa", "usf", "frsf", "brsf")).check(g)
    model = forward_ok(g, (1, 8, 8), 3)
    convs = [m for m in model.modules() if isinstance(m, RuleConv2d)]
    assert [m.rule for m in convs] == ["fa", "usf", "usf"]  # the projection follows its destination
    assert [m.rule for m in model.modules() if isinstance(m, RuleLinear)] == ["frsf", "brsf"]
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))
    before = convs[0].weight.detach().clone()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert convs[0].weight.grad is not None and convs[0].weight.grad.abs().sum() > 0
    opt.step()
    assert not torch.equal(before, convs[0].weight)
