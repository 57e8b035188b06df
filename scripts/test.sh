#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite, slow end-to-end tests included.
# Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
# The report test loads pages in Debian's headless Chromium (skipped, with a reason, without it).
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "could not install chromium; the browser test will be skipped" >&2
fi
# One test process per core (at most 4: each holds torch, ~0.5 GB); "-n 0" runs in this process.
workers=$(( $(nproc) < 4 ? $(nproc) : 4 ))
exec .venv/bin/python -m pytest -n "$workers" "$@"
