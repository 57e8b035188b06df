import json

import numpy as np
import pytest
import torch

from nasforge.errors import InvalidGenome
from nasforge.spaces import MLPGenome, MLPSpace, genome_from_dict
from nasforge.spaces.mlp import Dense


def make(*units, act="relu", dropout=0.0):
    return MLPGenome(layers=tuple(Dense(units=u, activation=act) for u in units), dropout=dropout)


def test_round_trip_and_id_stability():
    g = make(64, 32, dropout=0.1)
    again = genome_from_dict(json.loads(g.to_json()))
    assert again == g and again.id == g.id
    assert make(64, 32, dropout=0.1).id == g.id  # equal architectures, equal ids
    assert make(32, 64, dropout=0.1).id != g.id
    assert g.to_json() == json.dumps(json.loads(g.to_json()), sort_keys=True, separators=(",", ":"))


def test_build_has_the_layers_and_parameter_count():
    g = make(16, 8, dropout=0.2)
    model = g.build((4,), 3)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(4, 16), (16, 8), (8, 3)]
    assert sum(isinstance(m, torch.nn.Dropout) for m in model) == 2
    assert sum(p.numel() for p in model.parameters()) == g.n_params(4, 3)
    assert model(torch.zeros(5, 4)).shape == (5, 3)


def test_invalid_genomes_rejected_with_reason():
    with pytest.raises(InvalidGenome, match="activation"):
        genome_from_dict({"family": "mlp", "layers": [{"units": 8, "activation": "swishy"}]})
    with pytest.raises(InvalidGenome, match="family"):
        genome_from_dict({"family": "cnn"})
    space = MLPSpace(4, 3, max_layers=2, max_units=64, max_params=1000)
    with pytest.raises(InvalidGenome, match="hidden layers"):
        space.check(make(8, 8, 8))
    with pytest.raises(InvalidGenome, match="units"):
        space.check(make(128))
    with pytest.raises(InvalidGenome, match="budget"):
        space.check(make(64, 64))


def test_samples_are_valid_and_mutations_valid_and_different():
    space = MLPSpace(64, 10, max_params=20000)
    rng = np.random.default_rng(0)
    seen_ops = set()
    for _ in range(50):
        g = space.sample(rng)
        space.check(g)
        child, op = space.mutate(g, rng)
        space.check(child)
        assert child != g
        seen_ops.add(op)
    assert seen_ops == {"add_layer", "remove_layer", "change_width", "change_activation", "change_dropout"}


def test_each_mutation_operator_does_what_it_says():
    space = MLPSpace(10, 2, max_layers=4)
    rng = np.random.default_rng(1)
    g = make(16, 32, dropout=0.1)
    assert len(space.add_layer(g, rng).layers) == 3
    assert len(space.remove_layer(g, rng).layers) == 1
    wider = space.change_width(g, rng, step=1)
    assert sorted(layer.units for layer in wider.layers) in ([32, 32], [16, 64])
    acts = space.change_activation(g, rng)
    assert [layer.activation for layer in acts.layers].count("relu") == 1
    assert space.change_dropout(g, rng).dropout != 0.1
    assert space.remove_layer(make(8), rng) is None  # min_layers=1
    assert space.add_layer(make(8, 8, 8, 8), rng) is None  # max_layers=4


def test_rule_gene_mutation_only_when_several_rules():
    assert "change_rule" not in MLPSpace(4, 2).mutation_operators()
    space = MLPSpace(4, 2, rules=("backprop", "fa"))
    g = make(8)
    child = space.change_rule(g, np.random.default_rng(0))
    assert child.rules() != g.rules() and set(child.rules()) <= {"backprop", "fa"}
