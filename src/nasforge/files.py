"""Writing files so that no reader ever takes a half-written one for a good one.

Every file nasforge writes for later reading (weights, a run's ``task.pkl``, ``best/`` and
``final/``, reports, exports) goes through :func:`replacing`: the bytes go to a hidden
temporary file beside the target, which replaces the target in one ``os.replace`` once it is
complete. A write that fails (a full disk, no permission) removes its temporary file and
raises the ``OSError``; a process killed mid-write leaves at most a hidden ``.NAME.PID.tmp``
that nothing reads, and :func:`remove_temporaries` clears those when a run is opened to write.

Tensors are serialised in memory first, so a failed write is an ``OSError`` with its errno
(torch's own file writer reports a full disk as a bare ``RuntimeError``).
"""
from __future__ import annotations

import errno
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

# Why a write can fail that is the machine's state, not a bug: said in one line, exit 2.
NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
NO_PERMISSION = {errno.EROFS, errno.EACCES, errno.EPERM}
SPACE_HINT = "free some space; a search keeps every trial it finished and 'nasforge resume RUN' goes on from there"
PERMISSION_HINT = "write somewhere you may (search --out DIR, report and export --output PATH)"
SQLITE_PROBLEMS = {"database or disk is full": SPACE_HINT, "attempt to write a readonly database": PERMISSION_HINT,
                   "disk i/o error": SPACE_HINT}


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path to write; it becomes ``path`` when the block ends without an error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename is not None and str(exc.filename) == str(tmp):  # name the file, not its temporary
            exc.filename = str(path)
        raise
    finally:
        with suppress(OSError):  # gone already after a successful replace; never made in a read-only place
            tmp.unlink()


def write_bytes(path: Path, data: bytes) -> None:
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def save_torch(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path``, atomically, with a failed write reported as an OSError."""
    write_bytes(path, torch_bytes(obj))


def torch_bytes(obj: Any) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def write_together(folder: Path, contents: dict[str, bytes]) -> None:
    """Files that only make sense together (a model, its genome, its metrics): the last one
    named is removed first and written last, so a set cut off by a kill lacks it, and a reader
    that needs it never pairs a new model with an old genome."""
    names = list(contents)
    (Path(folder) / names[-1]).unlink(missing_ok=True)
    for name in names:
        write_bytes(Path(folder) / name, contents[name])


def remove_temporaries(folder: Path) -> None:
    """Delete what writers killed mid-write left in ``folder`` and its sub-folders (the
    temporary files of processes still alive, e.g. a report being written, are left alone)."""
    for stale in Path(folder).rglob(".*.tmp"):
        pid = stale.name.rsplit(".", 2)[-2]
        if not (pid.isdigit() and _alive(int(pid))):
            stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return pid != os.getpid()


def environment_problem(exc: BaseException) -> str | None:
    """One line, with what to do, when ``exc`` (or what caused it) is the machine refusing a
    write: a full disk, a read-only place, no permission; None for anything else."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in NO_SPACE | NO_PERMISSION:
            where = f" ({current.filename})" if current.filename else ""
            hint = SPACE_HINT if current.errno in NO_SPACE else PERMISSION_HINT
            return f"{os.strerror(current.errno).lower()}{where}; {hint}"
        text = str(current).lower()
        for phrase, hint in SQLITE_PROBLEMS.items():
            if phrase in text:
                return f"the run's database: {phrase}; {hint}"
        current = current.__cause__ or current.__context__
    return None
