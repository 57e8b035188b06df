"""`nasforge search|resume|show|report|compare|dashboard|train|export|baselines|datasets`.

A thin face on the Study. User errors (bad data, flags, config values) print one line on
stderr and exit with the error's ``exit_code`` (2; 130 for an interrupted search).
"""
from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

from ..errors import NasforgeError
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


__all__ = ["main", "build_parser", "COMMANDS"]
