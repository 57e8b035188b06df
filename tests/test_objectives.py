import math

import pytest

from nasforge.errors import NasforgeError
from nasforge.objectives import Objective, normalise, parse_weights

M = {"train_acc": 0.9, "val_acc": 0.8, "fps": 14000.0, "train_energy_kwh": 1e-3, "infer_energy_kwh": 3e-5,
     "params": 100_000}


def test_default_fitness_is_validation_accuracy():
    assert Objective().fitness(M) == 0.8
    assert Objective().describe() == "validation accuracy"


def test_combined_metric_by_hand():
    obj = Objective(accuracy=0.7, fps=0.2, energy=0.1, size=0.05)
    # NF = 14000/(14000+14000) = 0.5; TNE = 0.5; VNE = 3e-5/(3e-5+1e-5) = 0.75; NS = 0.5
    expected = 0.7 * 1.7 + 0.2 * 0.5 - 0.1 * (0.5 + 0.75) - 0.05 * 0.5
    assert obj.fitness(M) == pytest.approx(expected)


def test_normalise_is_bounded_and_monotone():
    assert normalise(0, 1) == 0 and normalise(1, 1) == 0.5 and normalise(math.inf, 1) == 1
    assert normalise(2, 1) < normalise(3, 1) < 1


def test_parse_weights():
    assert parse_weights("accuracy=0.7, fps=0.3") == {"accuracy": 0.7, "fps": 0.3}
    for bad in ("speed=1", "accuracy", "accuracy=x", "fps=-1"):
        with pytest.raises(NasforgeError):
            parse_weights(bad)
