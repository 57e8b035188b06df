"""Readers for the two classic binary image-dataset formats: IDX (MNIST family) and CIFAR.

Both return :class:`ImageData`: float32 pixels ``[N, C, H, W]`` in ``[0, 1]``, class names
as text, a one-line description and ``is_test``, a boolean mask of the rows that came from
the dataset's own test file, so the split can keep the published test set apart.

CIFAR batches are Python pickles. Unpickling can run arbitrary code, so only open files
from a source you trust; as a second line of defence they are read with
:class:`_CifarUnpickler`, which refuses every global except the few that a dict of numpy
arrays, lists, bytes and ints needs.
"""
from __future__ import annotations

import gzip
import pickle
import re
import struct
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import NasforgeError


class ImageData(NamedTuple):
    """What every image reader returns; unpack it or pass it to ``image_task(name, *data)``."""

    X: np.ndarray  # float32 [N, C, H, W] in [0, 1]
    labels: np.ndarray  # class names as str, [N]
    description: str
    is_test: np.ndarray | None = None  # bool [N]: rows from the dataset's own test file


# ----------------------------------------------------------------------------- IDX

# IDX type byte -> big-endian numpy dtype (the format stores everything most significant byte first).
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# train-images-idx3-ubyte, t10k-labels.idx1-ubyte.gz (Kaggle spelling), emnist-digits-test-images-idx3-ubyte ...
_IDX_NAME = re.compile(
    r"^(?P<prefix>.*?)(?P<split>train|t10k|test)[-_.](?P<kind>images|labels)[-_.]idx\d[-_.]ubyte(?P<gz>\.gz)?$",
    re.IGNORECASE,
)


def _read_maybe_gzipped(path: Path) -> bytes:
    """Whole file, transparently gunzipped when it starts with the gzip magic (not trusting the suffix)."""
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise NasforgeError(f"cannot read {path}: {e}") from None


def is_idx_file(path: Path) -> bool:
    """True when the file (gzipped or not) starts with a plausible IDX magic number."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            magic = f.read(4)
    except (OSError, EOFError):
        return False
    return len(magic) == 4 and magic[:2] == b"\0\0" and magic[2] in _IDX_TYPES and magic[3] > 0


def parse_idx(path: str | Path) -> np.ndarray:
    """One IDX file as an array of its declared dtype and shape; any inconsistency is an error."""
    path = Path(path)
    raw = _read_maybe_gzipped(path)
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise NasforgeError(
            f"{path} is not an IDX file: magic number {raw[:4].hex(' ') or 'missing'}, expected "
            "00 00 <type 08/09/0b/0c/0d/0e> <number of dimensions>"
        )
    dtype, ndim = np.dtype(_IDX_TYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise NasforgeError(f"{path} is truncated: the header declares {ndim} dimensions but the file ends first")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    count = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != count * dtype.itemsize:
        raise NasforgeError(
            f"{path}: the header declares shape {dims} of {dtype.name} ({count * dtype.itemsize} bytes) "
            f"but the file holds {len(raw) - header} bytes of data"
        )
    return np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(dims)


def _idx_images(path: Path) -> np.ndarray:
    arr = parse_idx(path)
    if arr.ndim == 3:  # [N, H, W]
        arr = arr[:, None]
    elif arr.ndim == 4 and arr.shape[3] in (1, 3):  # [N, H, W, C]
        arr = arr.transpose(0, 3, 1, 2)
    else:
        raise NasforgeError(f"{path}: expected images of shape [N, H, W] (idx3), got {arr.shape}")
    if arr.dtype == np.uint8:  # the usual case: 0..255
        return arr.astype(np.float32) / 255.0
    lo, hi = float(arr.min()), float(arr.max())  # other types: scale the whole file into [0, 1]
    return ((arr.astype(np.float32) - lo) / (hi - lo if hi > lo else 1.0)).astype(np.float32)


def _idx_pairs(files: Sequence[Path], where: str, need_train: bool = True) -> dict[str, dict[str, Path]]:
    """{split: {kind: path}} for one dataset prefix; plain files win over their .gz twins."""
    found: dict[str, dict[tuple[str, str], Path]] = {}
    for f in sorted(files, key=lambda p: (p.name.lower().endswith(".gz"), p.name)):
        m = _IDX_NAME.match(f.name)
        if m and f.is_file():
            split = "test" if m["split"].lower() in ("t10k", "test") else "train"
            found.setdefault(m["prefix"], {}).setdefault((split, m["kind"].lower()), f)
    if not found:
        raise NasforgeError(
            f"no IDX files in {where}: expected train-images-idx3-ubyte and train-labels-idx1-ubyte "
            "(optionally .gz, plus t10k-* for the test split)"
        )
    if len(found) > 1:
        names = ", ".join(map(repr, sorted(found)))
        raise NasforgeError(f"{where} holds several IDX datasets (prefixes {names}); pass one of their files")
    (prefix, parts), = found.items()
    pairs: dict[str, dict[str, Path]] = {}
    for split, kind in parts:
        pairs.setdefault(split, {})[kind] = parts[split, kind]
    for split, kinds in pairs.items():
        for want, ndim in (("images", 3), ("labels", 1)):
            if want not in kinds:
                have = next(iter(kinds.values()))
                stem = _IDX_NAME.match(have.name)["split"]  # type: ignore[index]
                raise NasforgeError(
                    f"missing {prefix}{stem}-{want}-idx{ndim}-ubyte (or .gz) in {have.parent}, next to {have.name}"
                )
    if need_train and "train" not in pairs:
        raise NasforgeError(f"{where} has only test IDX files; expected {prefix}train-images-idx3-ubyte as well")
    return pairs


def read_idx(source: str | Path | Sequence[str | Path]) -> ImageData:
    """Images and labels from IDX files (MNIST, Fashion-MNIST, KMNIST, EMNIST layout).

    ``source`` is a directory (train-* and, if present, t10k-*/test-* pairs are read and
    concatenated), one images or labels file (its partner is looked up beside it), or a list
    of files. Rows from the test files are flagged in ``is_test`` so the published test set
    can stay the test split instead of being merged into the random split.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise NasforgeError(f"no such file or directory: {path}")
        if path.is_dir():
            pairs = _idx_pairs(list(path.iterdir()), str(path))
        else:
            m = _IDX_NAME.match(path.name)
            if not m:
                raise NasforgeError(f"{path}: an IDX file name must look like train-images-idx3-ubyte[.gz]")
            same = [p for p in path.parent.iterdir() if (n := _IDX_NAME.match(p.name))
                    and n["prefix"] == m["prefix"] and n["split"].lower() == m["split"].lower()]
            pairs = {"train": _idx_pairs(same, str(path.parent), need_train=False).popitem()[1]}
        where = str(path)
    else:
        files = [Path(p) for p in source]
        missing = [str(p) for p in files if not p.is_file()]
        if missing:
            raise NasforgeError(f"no such file: {missing[0]}")
        pairs, where = _idx_pairs(files, "the given files"), ", ".join(p.name for p in files)
    X_parts, y_parts, test_parts = [], [], []
    for split in ("train", "test"):
        if split not in pairs:
            continue
        images, labels = _idx_images(pairs[split]["images"]), parse_idx(pairs[split]["labels"])
        if labels.ndim != 1 or len(labels) != len(images):
            raise NasforgeError(
                f"{pairs[split]['labels']}: expected {len(images)} labels (one per image), got shape {labels.shape}"
            )
        X_parts.append(images)
        y_parts.append(labels.astype(np.int64).astype(str))
        test_parts.append(np.full(len(images), split == "test"))
    if len({x.shape[1:] for x in X_parts}) > 1:
        raise NasforgeError(f"{where}: train and test images differ in shape ({[x.shape[1:] for x in X_parts]})")
    X = np.concatenate(X_parts) if len(X_parts) > 1 else X_parts[0]
    labels, is_test = np.concatenate(y_parts), np.concatenate(test_parts)
    c, h, w = X.shape[1:]
    sizes = f"train {int((~is_test).sum())} + test {int(is_test.sum())}" if is_test.any() else "train only"
    desc = f"IDX images from {where}: {len(X)} images ({sizes}), {c}x{h}x{w}, {len(set(labels))} classes"
    return ImageData(X, labels, desc, is_test if is_test.any() else None)


# ----------------------------------------------------------------------------- CIFAR

_CIFAR10 = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]
_CIFAR100 = ["train", "test", "meta"]
_CIFAR_SUBDIRS = ("cifar-10-batches-py", "cifar-100-python")


def _latin1_encode(text: object, encoding: str = "utf-8") -> bytes:
    """Stand-in for ``_codecs.encode``, which Python 3 pickles (protocol < 3) use for bytes."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("_codecs.encode is only allowed as the latin1 encoding of bytes")
    return text.encode("latin1")


def _allowed_globals() -> dict[tuple[str, str], object]:
    core = getattr(np, "_core", None) or np.core  # numpy 2 renamed numpy.core to numpy._core
    allowed: dict[tuple[str, str], object] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                                              ("_codecs", "encode"): _latin1_encode}
    for pkg in ("numpy.core", "numpy._core"):  # pickles name whichever numpy wrote them
        allowed[pkg + ".multiarray", "_reconstruct"] = core.multiarray._reconstruct
        allowed[pkg + ".multiarray", "scalar"] = core.multiarray.scalar
        allowed[pkg + ".numeric", "_frombuffer"] = core.numeric._frombuffer  # protocol 5 arrays
    for name in ("dict", "list", "tuple", "bytes", "bytearray", "str", "int", "float", "bool"):
        allowed["builtins", name] = getattr(__import__("builtins"), name)
    return allowed


class _CifarUnpickler(pickle.Unpickler):
    """Only reconstructs plain containers and numpy arrays; any other global aborts the load."""

    allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> object:
        module = "builtins" if module == "__builtin__" else module  # Python 2 spelling (protocol < 3)
        try:
            return self.allowed[module, name]
        except KeyError:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}") from None


def load_cifar_pickle(path: str | Path) -> dict:
    """A CIFAR batch as a dict with bytes keys; refuses pickles that reference anything else.

    Damaged bytes reach numpy's reconstructors, which can build an array whose dtype is broken:
    freeing it prints a traceback from a destructor. So the load runs with such messages caught,
    every array's dtype is checked against a fresh one of the same type, and whatever was
    refused is freed before the one-line error is raised."""
    path = Path(path)
    problem, obj = None, None
    with _destructor_errors() as printed:
        try:
            with open(path, "rb") as f:
                obj = _CifarUnpickler(f, encoding="bytes").load()
            _check_dtypes(obj)
        except pickle.UnpicklingError as e:
            problem = f"refusing {path}: {e} (not a CIFAR batch; only open pickles you trust)"
        except OSError as e:
            problem = f"cannot read CIFAR batch {path}: {e.strerror or e}"
        except Exception as e:  # noqa: BLE001 - damaged bytes make numpy raise anything (MemoryError, RuntimeError)
            problem = f"cannot read CIFAR batch {path}: damaged ({type(e).__name__}: {_brief(e)})"
        if problem is not None:
            obj = None  # what the refused load built is freed here (by reference count), under the catch
    if problem is None and printed:
        problem = f"cannot read CIFAR batch {path}: damaged ({_brief(printed[0].exc_value)})"
    if problem is not None:
        raise NasforgeError(problem)
    if not isinstance(obj, dict):
        raise NasforgeError(f"{path}: expected a pickled dict (a CIFAR batch), got {type(obj).__name__}")
    return obj


def _brief(exc: BaseException | None) -> str:
    """An exception's message on one short line (damaged bytes can put anything in it)."""
    text = " ".join(str(exc).split())
    return (text[:80] + "...") if len(text) > 80 else text or "no detail"


@contextmanager
def _destructor_errors() -> Iterator[list]:
    """Collect what Python would print for exceptions in destructors, instead of printing it."""
    caught: list = []
    hook, sys.unraisablehook = sys.unraisablehook, caught.append
    try:
        yield caught
    finally:
        sys.unraisablehook = hook


def _check_dtypes(obj: object, depth: int = 0) -> None:
    """ValueError if an array or scalar in ``obj`` has a dtype unlike a fresh one of its type
    (damaged pickled state) or holds Python objects."""
    if depth > 20:
        raise ValueError("nested too deep")
    if isinstance(obj, dict):
        for value in obj.values():
            _check_dtypes(value, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            _check_dtypes(value, depth + 1)
    elif isinstance(obj, (np.ndarray, np.generic, np.dtype)):
        dtype = obj if isinstance(obj, np.dtype) else obj.dtype
        if dtype.hasobject or dtype.fields is not None or dtype.flags != np.dtype(dtype.str).flags:
            raise ValueError(f"an array of an unusable type {dtype.str}")


def cifar_root(path: Path) -> Path | None:
    """The directory holding CIFAR batches: ``path`` itself or its extracted cifar-*-py subfolder."""
    for d in (path, *(path / s for s in _CIFAR_SUBDIRS)):
        if (d / "batches.meta").is_file() or (d / "data_batch_1").is_file() or (d / "meta").is_file():
            return d
    return None


def _field(batch: dict, key: bytes, path: Path) -> object:
    if key not in batch:
        raise NasforgeError(f"{path}: no {key.decode()!r} entry (has {sorted(k.decode('latin1') for k in batch)})")
    return batch[key]


def read_cifar(path: str | Path) -> ImageData:
    """CIFAR-10 or CIFAR-100 "python version" batches as 3x32x32 RGB images.

    Each 3072-byte row holds the 1024 red, then green, then blue values of a 32x32 image,
    row-major. CIFAR-100 uses its 100 fine labels. ``is_test`` marks the test batch.
    Only open batches from a trusted source (they are pickles; see the module docstring).
    """
    path = Path(path)
    if not path.is_dir():
        raise NasforgeError(f"no such directory: {path}" if not path.exists() else f"{path}: CIFAR needs a directory")
    root = cifar_root(path)
    if root is None:
        raise NasforgeError(
            f"no CIFAR batches in {path}: expected {', '.join(_CIFAR10)} (CIFAR-10) "
            f"or {', '.join(_CIFAR100)} (CIFAR-100)"
        )
    ten = (root / "batches.meta").is_file() or (root / "data_batch_1").is_file()
    if ten:
        names, label_key, names_key, meta = _CIFAR10, b"labels", b"label_names", "batches.meta"
    else:
        names, label_key, names_key, meta = _CIFAR100, b"fine_labels", b"fine_label_names", "meta"
    for n in names:
        if not (root / n).is_file():
            raise NasforgeError(f"missing CIFAR-{10 if ten else 100} file {n} in {root} (expected {', '.join(names)})")
    names_found = _field(load_cifar_pickle(root / meta), names_key, root / meta)
    if not (isinstance(names_found, (list, tuple)) and names_found and all(isinstance(c, (bytes, str)) for c in names_found)):
        raise NasforgeError(f"{root / meta}: {names_key.decode()!r} must be a non-empty list of class names")
    classes = [c.decode("utf-8", "replace") if isinstance(c, bytes) else c for c in names_found]
    X_parts, y_parts, test_parts = [], [], []
    for n in names:
        if n == meta:
            continue
        batch = load_cifar_pickle(root / n)
        data, labels = _field(batch, b"data", root / n), _field(batch, label_key, root / n)
        try:
            y = np.asarray(labels) if isinstance(labels, (list, tuple, np.ndarray)) else np.zeros((0, 0))
        except (ValueError, TypeError):  # ragged or odd objects
            y = np.zeros((0, 0))
        if y.size == 0 and y.ndim == 1:
            y = y.astype(np.int64)  # an empty batch: no labels, of no type
        if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072):
            raise NasforgeError(f"{root / n}: 'data' must be a uint8 array of shape [N, 3072], got "
                                f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')}")
        in_range = y.dtype.kind in "iu" and (not len(y) or 0 <= y.min() <= y.max() < len(classes))
        if y.shape != (len(data),) or not in_range:
            raise NasforgeError(f"{root / n}: expected {len(data)} integer labels in 0..{len(classes) - 1}")
        X_parts.append(data.reshape(-1, 3, 32, 32))  # R plane, G plane, B plane -> channels first
        y_parts.append(np.asarray(classes, dtype=str)[y])
        test_parts.append(np.full(len(data), n in ("test_batch", "test")))
    X = np.concatenate(X_parts).astype(np.float32)
    X /= 255.0
    labels, is_test = np.concatenate(y_parts), np.concatenate(test_parts)
    desc = (f"CIFAR-{10 if ten else 100} from {root}: {len(X)} images (train {int((~is_test).sum())} + "
            f"test {int(is_test.sum())}), 3x32x32, {len(classes)} classes")
    return ImageData(X, labels, desc, is_test)
