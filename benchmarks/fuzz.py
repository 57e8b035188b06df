"""Fuzz every reader of user input: the only outcomes allowed are a loaded object or
nasforge's own one-line error (a NasforgeError, or ReplyRejected for an LLM reply).

    .venv/bin/python benchmarks/fuzz.py [--examples 10000]

Readers: CSV files (random bytes and random tables of awkward cells and delimiters), run
configurations (random nested tables over the real keys), genome JSON (random JSON and
mutated real genomes), LLM replies (random text and mutated genome JSON, checked against
the mlp and net spaces), IDX image files and CIFAR batch folders (random bytes under the
real file names, and real pickled batches, then damaged). Inputs come from Hypothesis; an input that escapes any other way is
counted and its first example printed. ``tests/test_fuzz.py`` runs the same readers with a
few hundred examples each, and fails on the first escape (Hypothesis then shrinks it).
"""
from __future__ import annotations

import argparse
import json
import string
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nasforge.errors import NasforgeError  # noqa: E402

TOKENS = ["", " ", "nan", "NaN", "inf", "-inf", "1e400", "1e307", "-0", "1,5", "0.5", "12kg", "True", "False",
          "é", "\x00", '"', '""', "'", "\\", "a;b", "x\ty", "\ufeff", "1e-400", "0x1F", "∞", "None"]
CONFIG_KEYS = ["data", "space", "strategy", "train", "measure", "objective", "budget", "seed", "threads", "executor",
               "benchmark", "dataset", "csv", "target", "family", "name", "population_size", "sample_size",
               "max_layers", "min_layers", "max_units", "epochs", "lr", "accuracy", "fps", "workers", "kind",
               "two_stage", "bilevel", "expert", "designer", "thresholds", "learning_rules", "file", "power"]
FAMILIES = ["mlp", "net", "cells", "nb201", "MLP", "", "zzz"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=8), st.sampled_from(TOKENS))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(CONFIG_KEYS), st.text(max_size=6)),
                                                 inner, max_size=5)), max_leaves=25)


@st.composite
def csv_tables(draw: st.DrawFn) -> bytes:
    delimiter = draw(st.sampled_from([",", ";", "\t", "|", " "]))
    columns = draw(st.integers(1, 5))
    header = ["y"] + [draw(st.one_of(st.sampled_from(TOKENS), st.text(string.ascii_letters, max_size=4)))
                      for _ in range(columns - 1)]
    cell = st.one_of(st.sampled_from(TOKENS), st.integers(-5, 5).map(str), st.floats().map(repr), st.text(max_size=4))
    # half the tables have a usable target (two classes, enough rows), so the loaders past it are reached too
    label = st.sampled_from(["0", "1"]) if draw(st.booleans()) else cell
    n_rows = draw(st.integers(12, 40) if label is not cell else st.integers(0, 40))
    rows = [[str(i % 2) if label is not cell else draw(cell)] + [draw(cell) for _ in range(columns - 1)]
            for i in range(n_rows)]
    text = "\n".join(delimiter.join(r) for r in [header, *rows])
    return text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1"])), errors="replace")


csv_inputs = st.one_of(st.binary(max_size=400), csv_tables())
config_inputs = st.dictionaries(st.sampled_from(CONFIG_KEYS), json_values, max_size=6)


def _real_genomes() -> list[dict[str, Any]]:
    import numpy as np

    from nasforge.spaces import SPACES

    task = type("T", (), {"input_shape": (1, 8, 8), "n_classes": 3, "n_outputs": 3, "name": "fuzz"})()
    rng = np.random.default_rng(0)
    return [SPACES.get(f).from_settings(SPACES.get(f).Settings(family=f), task).sample(rng).to_dict()
            for f in SPACES.names() for _ in range(3)]


@st.composite
def mutated_genomes(draw: st.DrawFn) -> Any:
    genome = json.loads(json.dumps(draw(st.sampled_from(_real_genomes()))))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(genome)))
        action = draw(st.sampled_from(["drop", "replace", "family"]))
        if action == "drop":
            genome.pop(key)
        elif action == "replace":
            genome[key] = draw(json_values)
        else:
            genome["family"] = draw(st.sampled_from(FAMILIES))
        if not genome:
            break
    return genome


@st.composite
def idx_pairs(draw: st.DrawFn) -> bytes:
    """A real IDX images+labels pair (uint8, N x H x W and N), then maybe damaged: the readers
    past the magic number and the shape checks get exercised, not only the first test."""
    import struct

    n, h, w = draw(st.integers(0, 12)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    images = struct.pack(">I3I", 0x00000803, n, h, w) + draw(st.binary(min_size=n * h * w, max_size=n * h * w))
    labels = struct.pack(">II", 0x00000801, draw(st.sampled_from([n, n + 1, max(n - 1, 0)])))
    labels += bytes(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    cut = draw(st.integers(0, 4))
    images = images[: len(images) - cut] if draw(st.booleans()) else images
    return struct.pack(">I", len(images)) + images + labels


CIFAR_FILES = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]


@st.composite
def cifar_folders(draw: st.DrawFn) -> dict[str, bytes]:
    """A real CIFAR-10 folder (pickled dicts of uint8 [N, 3072] rows and labels, and the meta
    file), then maybe damaged: a field of the wrong type or shape, labels out of range, a key
    missing, a file truncated or with flipped bytes, a pickle of something else."""
    import pickle

    import numpy as np

    names = [b"airplane", b"car", b"bird"]
    batches: dict[str, Any] = {"batches.meta": {b"label_names": names}}
    pixels = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))  # cheap to draw: the pixels' values do not matter
    for name in CIFAR_FILES[:-1]:
        n = draw(st.integers(0, 3))
        rows = pixels.integers(0, 256, (n, 3072), dtype=np.uint8)
        batches[name] = {b"data": rows, b"labels": draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))}
    victim = draw(st.sampled_from(CIFAR_FILES))
    entry = batches[victim]
    damage = draw(st.sampled_from(["none", "field", "labels", "drop key", "truncate", "flip", "other object"]))
    if damage == "field":
        key = draw(st.sampled_from(sorted(entry)))
        entry[key] = draw(st.one_of(scalars, st.lists(scalars, max_size=3), st.just(np.zeros((2, 5), np.float32)),
                                    st.just(np.zeros((1, 3072), np.int64)), st.just([b"x", 3, None])))
    elif damage == "labels" and b"labels" in entry:
        entry[b"labels"] = [draw(st.integers(-3, 7)) for _ in entry[b"labels"]] + draw(st.lists(st.integers(0, 2), max_size=1))
    elif damage == "drop key":
        entry.pop(draw(st.sampled_from(sorted(entry))))
    elif damage == "other object":
        batches[victim] = draw(st.one_of(scalars, st.lists(scalars, max_size=3)))
    files = {name: pickle.dumps(obj, protocol=draw(st.integers(2, 5))) for name, obj in batches.items()}
    if damage in ("truncate", "flip"):
        data = bytearray(files[victim])
        if damage == "truncate":
            data = data[: draw(st.integers(0, max(len(data) - 1, 0)))]
        else:
            for _ in range(draw(st.integers(1, 8))):
                if data:
                    data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        files[victim] = bytes(data)
    return files


genome_inputs = st.one_of(json_values, mutated_genomes())
reply_inputs = st.one_of(st.text(max_size=200), mutated_genomes().map(json.dumps),
                         mutated_genomes().map(lambda g: "```json\n" + json.dumps(g) + "\n```"))
file_inputs = st.binary(max_size=3000)


# --- the readers: each returns normally or raises an allowed error ---
def read_csv_bytes(data: bytes) -> None:
    from nasforge.data import load_task

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.csv"
        path.write_bytes(data)
        load_task(csv=path, target="y")


def read_config(data: dict[str, Any]) -> None:
    from nasforge.config import build_config

    build_config(data)


def read_genome(data: Any) -> None:
    from nasforge.spaces import MLPGenome, genome_from_dict, parse_genome

    genome_from_dict(data)
    parse_genome(MLPGenome, json.dumps(data))


def read_reply(text: str) -> None:
    from nasforge.spaces import MLPSpace, NetSpace
    from nasforge.strategies.expert.llm import check_reply

    rejected = None
    for space in (MLPSpace(6, 3, max_layers=2, max_units=32), NetSpace((1, 8, 8), 3, max_params=50_000)):
        try:
            check_reply(space, text)
        except ReplyRejected as exc:
            rejected = exc
        else:
            return  # a working genome of one of the spaces
    raise rejected


def read_idx_bytes(data: bytes) -> None:
    """``data``: a 4-byte length of the images file, the images file, the labels file (as
    ``idx_pairs`` makes them; random bytes are split wherever that length says)."""
    import struct

    from nasforge.data.image_files import read_idx

    split = struct.unpack(">I", data[:4])[0] + 4 if len(data) >= 4 else 0
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "train-images-idx3-ubyte").write_bytes(data[4:split])
        (Path(tmp) / "train-labels-idx1-ubyte").write_bytes(data[split:])
        read_idx(tmp)


def read_cifar_bytes(data: bytes | dict[str, bytes]) -> None:
    """``data``: random bytes (as the first batch, reversed as the test batch), or a whole
    folder from ``cifar_folders``."""
    from nasforge.data.image_files import read_cifar

    folder = data if isinstance(data, dict) else {"data_batch_1": data, "test_batch": data[::-1]}
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in folder.items():
            (Path(tmp) / name).write_bytes(content)
        read_cifar(tmp)


def _reply_rejected() -> type[Exception]:
    from nasforge.strategies.expert.llm import ReplyRejected

    return ReplyRejected


ReplyRejected = _reply_rejected()
READERS: dict[str, tuple[Callable[[Any], None], Any]] = {
    "csv": (read_csv_bytes, csv_inputs), "config": (read_config, config_inputs),
    "genome": (read_genome, genome_inputs), "llm reply": (read_reply, reply_inputs),
    "idx": (read_idx_bytes, st.one_of(file_inputs, idx_pairs())), "cifar": (read_cifar_bytes, st.one_of(file_inputs, cifar_folders())),
}


def outcome(reader: Callable[[Any], None], data: Any) -> str:
    """'loaded', 'refused' (the project's error) or 'escaped: <exception type>'. An exception
    Python could not raise (one in a destructor, printed to stderr as a traceback) escapes too."""
    unraisable: list[Any] = []
    hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        try:
            reader(data)
        except ReplyRejected:  # its text goes back to the LLM, which may read several lines
            result = "refused"
        except NasforgeError as exc:
            message = str(exc).strip()
            if not message or "\n" in message:
                return f"escaped: error not in one line: {message[:120]!r}"
            result = "refused"
        except Exception as exc:  # what this script exists to count
            return f"escaped: {type(exc).__name__}: {str(exc)[:120]}"
        else:
            result = "loaded"
    finally:
        sys.unraisablehook = hook
    if unraisable:
        exc = unraisable[0].exc_value
        return f"escaped: printed {type(exc).__name__}: {str(exc)[:120]}"
    return result


def fuzz(name: str, examples: int) -> tuple[Counter, float, Any]:
    reader, inputs = READERS[name]
    counts: Counter = Counter()
    first_escape: list[Any] = []

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(inputs)
    def run(data: Any) -> None:
        result = outcome(reader, data)
        counts["escaped" if result.startswith("escaped") else result] += 1
        if result.startswith("escaped") and not first_escape:
            first_escape.append((result, data))

    start = time.perf_counter()
    run()
    return counts, time.perf_counter() - start, first_escape[0] if first_escape else None


def main() -> None:
    from _results import machine, table, write_section

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=10_000, help="inputs per reader")
    ap.add_argument("--readers", default=",".join(READERS))
    args = ap.parse_args()
    rows = []
    for name in args.readers.split(","):
        counts, seconds, escape = fuzz(name, args.examples)
        total = sum(counts.values())
        rows.append([name, total, counts["loaded"], counts["refused"], counts["escaped"], f"{seconds:.0f}"])
        print(rows[-1], flush=True)
        if escape:
            print(f"  first escape: {escape[0]}\n  input: {escape[1]!r}"[:2000], flush=True)
    text = table(["reader", "inputs", "loaded", "refused (one line)", "escaped", "seconds"], rows)
    print(text)
    write_section("fuzz", f"""## Fuzzed input (`benchmarks/fuzz.py`)

{machine()}. Inputs from Hypothesis (derandomized, so a rerun draws the same ones); "escaped"
counts anything other than a loaded object or nasforge's one-line error. Goal (#21): 0.

{text}

Command: `.venv/bin/python benchmarks/fuzz.py --examples {args.examples}`
""")


if __name__ == "__main__":
    main()
