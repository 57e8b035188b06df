"""``export_model``: every format loads back and gives the PyTorch model's outputs on test data.

Three real (tiny) runs: an MLP on iris, a conv net on the digit images, and a conv net
whose layers learn with feedback alignment / sign-symmetric rules (RuleConv2d/RuleLinear).
"""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

import nasforge
from nasforge import export as export_mod
from nasforge.errors import NasforgeError
from nasforge.export import FORMATS, TOLERANCE, export_model, load_exported
from nasforge.measure.energy import rapl_readable
from nasforge.measure.onnx import onnx_bytes, onnx_latency, onnx_session, run_session
from nasforge.spaces import genome_from_dict

torch.set_num_threads(1)
needs_ort = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime is not installed")
FORMAT_PARAMS = [pytest.param(f, marks=needs_ort) if f == "onnx" else f for f in FORMATS]


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "iris"
    nasforge.search("iris", strategy="random", budget=3, seed=0, out=out, train={"epochs": 3})
    return out


@pytest.fixture(scope="module")
def conv_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "conv"
    nasforge.search("digits-images", budget=2, space={"family": "net"}, train={"epochs": 2}, out=out)
    return out


@pytest.fixture(scope="module")
def rules_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "rules"
    nasforge.search("digits-images", budget=2, seed=1, space={"family": "net", "learning_rules": ["fa", "usf"]},
                    train={"epochs": 2}, out=out)
    return out


@pytest.mark.parametrize("fmt", FORMAT_PARAMS)
@pytest.mark.parametrize("run_name", ["iris_run", "conv_run", "rules_run"])
def test_export_parity(run_name, fmt, request):
    out = request.getfixturevalue(run_name)
    result = export_model(out, fmt, preprocessing=False)  # the network alone (raw inputs: tests below)
    best = nasforge.open_run(out).best
    assert result.path.parent == out / "export" / f"trial-{best.number:05d}"
    assert result.path.is_file() and result.card_path.is_file() and result.genome_path.is_file()
    assert 0 <= result.max_abs_diff < TOLERANCE
    assert result.checked_rows > 0
    genome = genome_from_dict(json.loads(result.genome_path.read_text()))
    assert genome.to_dict() == best.genome
    # independent check: the loaded file predicts the classes load_model predicts
    model = nasforge.load_model(out)
    X = _test_inputs(out)
    info = {"input_shape": X.shape[1:], "classes": model.classes}
    logits = load_exported(result.path, fmt, genome, info)(X)
    assert [model.classes[i] for i in logits.argmax(1)] == model.predict(X)


def _test_inputs(out):
    from nasforge.final import run_task

    return run_task(out)[1].X_test


@needs_ort
def test_rules_run_really_uses_rules(rules_run):
    genome = nasforge.open_run(rules_run).best_genome
    assert set(genome.rules()) <= {"fa", "usf"}
    modules = {type(m).__name__ for m in nasforge.load_model(rules_run).module.modules()}
    assert modules & {"RuleLinear", "RuleConv2d"}
    card = export_model(rules_run, "onnx").card_path.read_text()
    assert ", ".join(genome.rules()) in card


@needs_ort
def test_onnx_file_runs_in_onnxruntime_directly(iris_run):
    import onnxruntime as ort

    result = export_model(iris_run, "onnx", preprocessing=False)
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    X = _test_inputs(iris_run)
    logits = session.run(["logits"], {"input": X.numpy()})[0]
    with torch.no_grad():
        expected = nasforge.load_model(iris_run).module(X).numpy()
    assert np.abs(logits - expected).max() < TOLERANCE


def test_card_says_what_a_user_needs(iris_run):
    result = export_model(iris_run, "torchscript")
    card = result.card_path.read_text()
    best = nasforge.open_run(iris_run).best
    for text in ("iris", "setosa", "[N, 4]", "standardised", "test accuracy", f"{best.metrics['test_acc']:.4f}",
                 "parameters", "latency", "backprop", "torch.jit.load", "Eq. 4"):
        assert text in card, text
    label = "measured" if rapl_readable() else "estimated"
    assert f"training energy ({label})" in card


def test_explicit_trial_and_output_dir(iris_run, tmp_path):
    result = export_model(iris_run, "state-dict", trial=0, output=tmp_path / "deploy")
    assert result.path == tmp_path / "deploy" / "model.state_dict.pt"
    state = torch.load(result.path, weights_only=True)
    stored = torch.load(iris_run / "models" / "trial-00000.pt", weights_only=True)
    assert all(torch.equal(state[k], stored[k]) for k in stored)


@needs_ort
def test_parity_failure_is_an_error_and_removes_the_file(iris_run, tmp_path, monkeypatch):
    real = export_mod.load_exported

    def perturbed(path, fmt, genome, info):
        run = real(path, fmt, genome, info)
        return lambda x: run(x) + 1e-3

    monkeypatch.setattr(export_mod, "load_exported", perturbed)
    with pytest.raises(NasforgeError, match=r"export check failed: the onnx file.*up to 0\.001"):
        export_model(iris_run, "onnx", output=tmp_path / "bad", preprocessing=False)
    assert not (tmp_path / "bad" / "model.onnx").exists()
    assert not (tmp_path / "bad" / "model_card.md").exists()


def test_wrong_output_shape_or_nan_fails(iris_run, tmp_path, monkeypatch):
    monkeypatch.setattr(export_mod, "load_exported", lambda *a: (lambda x: np.full((len(x), 3), np.nan)))
    with pytest.raises(NasforgeError, match="export check failed"):
        export_model(iris_run, "torchscript", output=tmp_path / "nan")
    monkeypatch.setattr(export_mod, "load_exported", lambda *a: (lambda x: np.zeros((len(x), 2))))
    with pytest.raises(NasforgeError, match="export check failed"):
        export_model(iris_run, "state-dict", output=tmp_path / "shape")


@needs_ort
def test_unloadable_file_is_an_error(iris_run, tmp_path, monkeypatch):
    monkeypatch.setattr(export_mod, "write_model", lambda module, fmt, path, x: path.write_bytes(b"not a model"))
    for fmt in ("onnx", "torchscript"):
        with pytest.raises(NasforgeError, match=f"the {fmt} export failed its check"):
            export_model(iris_run, fmt, output=tmp_path / "junk", preprocessing=False)
        assert not (tmp_path / "junk" / export_mod.FILE_NAMES[fmt]).exists()
    # the raw-input graph: a file onnxruntime cannot load is the same one-line error, and no file
    monkeypatch.setattr(export_mod, "write_raw_onnx", lambda module, info, task, path, rows: (
        path.write_bytes(b"not a model"), __import__("onnxruntime").InferenceSession(str(path)))[1])
    with pytest.raises(NasforgeError, match="the onnx export failed its check"):
        export_model(iris_run, "onnx", output=tmp_path / "junk")
    assert not (tmp_path / "junk" / "model.onnx").exists()


def test_user_errors(iris_run, tmp_path):
    with pytest.raises(NasforgeError, match="unknown export format"):
        export_model(iris_run, "tflite")
    with pytest.raises(NasforgeError, match="nasforge train"):
        export_model(iris_run, "onnx", final=True)
    with pytest.raises(NasforgeError, match="not both"):
        export_model(iris_run, "onnx", trial=0, final=True)
    with pytest.raises(NasforgeError, match="no trial 99"):
        export_model(iris_run, "onnx", trial=99)
    with pytest.raises(NasforgeError):
        export_model(tmp_path / "nothing-here", "onnx")


@needs_ort
def test_onnx_latency_single_thread(conv_run):
    module = nasforge.load_model(conv_run).module
    X = _test_inputs(conv_run)[:16]
    figures = onnx_latency(module, X, warmup=1, repeats=3)
    assert set(figures) == {"latency_ms", "batch_latency_ms", "fps"}
    assert all(np.isfinite(v) and v > 0 for v in figures.values())
    assert figures["fps"] == pytest.approx(16 / (figures["batch_latency_ms"] / 1e3))
    session = onnx_session(onnx_bytes(module, X))
    assert session.get_session_options().intra_op_num_threads == 1
    with torch.no_grad():
        assert np.abs(run_session(session, X) - module(X).numpy()).max() < TOLERANCE


def _csv_run(tmp_path):
    """A tiny run on a CSV with a numeric column, a text column and missing values in both."""
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 160
    frame = pd.DataFrame({"size cm": rng.normal(10, 3, size=n), "colour": rng.choice(["red", "green", "blue"], size=n)})
    frame["label"] = np.where((frame["colour"] == "red") | (frame["size cm"] > 12), "yes", "no")
    frame.loc[::9, "size cm"] = np.nan
    frame.loc[::7, "colour"] = None
    path = tmp_path / "plants.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "run"
    nasforge.search(csv=str(path), target="label", strategy="random", budget=2, out=out, train={"epochs": 5})
    return path, out


@needs_ort
def test_onnx_takes_raw_csv_rows(tmp_path):
    """The default ONNX export reads the CSV's raw columns (text, empty cells, an unseen category)
    and predicts what load_model predicts from the same raw rows."""
    import onnxruntime as ort
    import pandas as pd

    path, out = _csv_run(tmp_path)
    result = export_model(out, "onnx")
    assert result.max_abs_diff < TOLERANCE
    card = result.card_path.read_text()
    assert "raw columns" in card and "fillna('')" in card
    rows = pd.read_csv(path).drop(columns=["label"])
    rows.loc[0, "colour"] = "purple"  # never seen in training: all zeros, as in scikit-learn
    session = ort.InferenceSession(str(result.path))
    assert {(i.name, i.type) for i in session.get_inputs()} == {("size cm", "tensor(float)"), ("colour", "tensor(string)")}
    feed = {i.name: rows[[i.name]].to_numpy(np.float32) if i.type == "tensor(float)"
            else rows[[i.name]].fillna("").astype(str).to_numpy() for i in session.get_inputs()}  # the card's recipe
    logits = session.run(None, feed)[0]
    model = nasforge.load_model(out)
    proba = torch.softmax(torch.as_tensor(logits), dim=1).numpy()
    np.testing.assert_allclose(proba, model.predict_proba(rows), atol=1e-4)
    assert [model.classes[i] for i in logits.argmax(1)] == model.predict(rows)
    plain = export_model(out, "onnx", preprocessing=False, output=tmp_path / "plain")  # today's behaviour
    assert [i.name for i in ort.InferenceSession(str(plain.path)).get_inputs()] == ["input"]


@needs_ort
def test_onnx_takes_raw_uint8_images(conv_run):
    import onnxruntime as ort

    from nasforge.raw_inputs import raw_images

    result = export_model(conv_run, "onnx")
    model = nasforge.load_model(conv_run)
    images = raw_images(_test_inputs(conv_run).numpy(), model.preprocessor)
    assert images.dtype == np.uint8 and images.shape[1:] == (8, 8, 1)
    session = ort.InferenceSession(str(result.path))
    logits = session.run(None, {"input": images})[0]
    proba = torch.softmax(torch.as_tensor(logits), dim=1).numpy()
    np.testing.assert_allclose(proba, model.predict_proba(images), atol=1e-4)
    assert "uint8" in result.card_path.read_text()
