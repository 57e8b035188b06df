"""Learning rules through the whole stack: search space, training, storage, model loading, CLI."""
import subprocess
import sys

import pytest
import torch

import nasforge
from nasforge.learning_rules import RuleLinear
from nasforge.spaces import genome_from_dict

RULES = {"fa", "usf"}


def _learnable(module: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in module.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]


def test_search_with_two_bio_rules_trains_genomes_and_models_using_only_them(tmp_path):
    result = nasforge.search("iris", strategy="evolution", budget=4, seed=0, out=tmp_path / "run",
                             space={"learning_rules": sorted(RULES)}, train={"epochs": 3},
                             measure={"warmup": 0, "repeats": 1})
    assert len(result.trials) == 4
    assert [t.state for t in result.trials] == ["complete"] * 4, [t.error for t in result.trials]
    assert result.best is not None and result.best.metrics["test_acc"] == result.best.metrics["test_acc"]  # not NaN
    seen: set[str] = set()
    for trial in result.trials:
        genome = genome_from_dict(trial.genome)
        rules = genome.rules()  # hidden layers, then the output layer
        assert len(rules) == len(genome.layers) + 1
        assert set(rules) <= RULES, (trial.number, rules)
        seen |= set(rules)
        # The stored, trained weights load into a network whose every Linear is a RuleLinear
        # with the genome's rule, in order (hidden layers first, output layer last).
        model = nasforge.load_model(result.out, trial.number).module
        layers = _learnable(model)
        assert layers and all(isinstance(layer, RuleLinear) for layer in layers)
        assert [layer.rule for layer in layers] == rules
        assert "rule=" in repr(model)
    assert seen <= RULES and seen


@pytest.fixture(scope="module")
def fa_run(tmp_path_factory):
    """One search through the real command line, every layer fixed to fa."""
    out = tmp_path_factory.mktemp("cli") / "fa"
    cmd = [sys.executable, "-m", "nasforge.cli", "search", "--dataset", "iris", "--learning-rules", "fa",
           "--budget", "3", "--epochs", "3", "--seed", "1", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


def test_cli_learning_rules_fa_fixes_every_layer(fa_run):
    run = nasforge.open_run(fa_run)
    assert len(run.trials) == 3 and all(t.state == "complete" for t in run.trials)
    for trial in run.trials:
        genome = genome_from_dict(trial.genome)
        assert genome.layers and all(layer.rule == "fa" for layer in genome.layers)
        assert genome.output_rule == "fa"
    model = nasforge.load_model(fa_run).module
    assert all(isinstance(m, RuleLinear) and m.rule == "fa" for m in _learnable(model))


def test_cli_show_displays_the_rules_of_an_mlp_genome(fa_run, capsys):
    from nasforge.cli import main

    assert main(["show", str(fa_run)]) == 0
    assert "[fa," in capsys.readouterr().out
