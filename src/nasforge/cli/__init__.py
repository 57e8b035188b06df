"""`nasforge search|resume|show|report|compare|dashboard|train|export|baselines|datasets`.

A thin face on the Study. User errors (bad data, flags, config values) print one line on
stderr and exit with the error's ``exit_code`` (2; 130 for an interrupted search). Anything
else that escapes a command is either the machine refusing a write (a full disk, a read-only
place, no permission: one line, exit 2) or a nasforge bug: one line on stderr naming a log file that
holds the traceback, and exit status 3, so scripts can tell bugs from bad input.
"""
from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from ..errors import NasforgeError
from ..files import environment_problem
from . import reading, searching
from .parser import build_parser

COMMANDS = {"search": searching.cmd_search, "resume": searching.cmd_resume, "train": searching.cmd_train,
            "export": searching.cmd_export, "baselines": searching.cmd_baselines, "show": reading.cmd_show,
            "datasets": reading.cmd_datasets, "report": reading.cmd_report, "compare": reading.cmd_compare,
            "dashboard": reading.cmd_dashboard}


def main(argv: Sequence[str] | None = None) -> int:
    # Ctrl-C must stop a search cleanly even when a parent shell started us with SIGINT ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        args = build_parser().parse_args(argv)
        COMMANDS[args.command](args)
        return 0
    except NasforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `nasforge show RUN | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:
        problem = environment_problem(exc)
        if problem is not None:  # a full disk, a read-only place: the machine's state, not a bug
            print(f"error: cannot go on: {problem}", file=sys.stderr)
            return 2
        log = write_crash_log()
        print(f"error: internal error ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
              f"this is a nasforge bug, the traceback is in {log}", file=sys.stderr)
        return 3


def crash_dir() -> Path:
    """Where tracebacks of internal errors go: $NASFORGE_LOG_DIR, else ~/.cache/nasforge/crashes."""
    configured = os.environ.get("NASFORGE_LOG_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "nasforge" / "crashes"


def write_crash_log() -> Path:
    """The current exception's traceback in a new file (in the system's temp folder when the
    log folder is not writable)."""
    text = f"nasforge {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}"
    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    for folder in (crash_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
            return folder / name
        except OSError:
            continue
    return Path("(no writable folder for the log)")


__all__ = ["main", "build_parser", "COMMANDS"]
