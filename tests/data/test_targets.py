"""The metrics every evaluation records: the macro-F1 counted in torch is scikit-learn's."""
import numpy as np
import torch
from sklearn.metrics import f1_score

from nasforge.data.targets import classification_metrics


def test_macro_f1_equals_scikit_learns_on_random_predictions():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n, k = int(rng.integers(1, 60)), int(rng.integers(2, 12))
        y = torch.as_tensor(rng.integers(0, k, n))
        logits = torch.as_tensor(rng.normal(size=(n, k)))
        if rng.random() < 0.3:  # predictions of a class absent from y, and y's classes never predicted
            logits[:, 0] += 5
        pred = logits.argmax(1).numpy()
        m = classification_metrics(logits, y)
        assert abs(m["f1"] - f1_score(y.numpy(), pred, average="macro", zero_division=0)) < 1e-12
        assert m["acc"] == float((pred == y.numpy()).mean())
