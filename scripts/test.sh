#!/usr/bin/env bash
# Every test: static checks (ruff, mypy --strict), then pytest, unit and integration. The
# integration tests start the real testbed (Asterisk 22, Redis, sipp), provisioning it on first
# use, and stop what they started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
echo "== ruff"
.venv/bin/ruff check .
echo "== mypy --strict"
.venv/bin/mypy
echo "== IVR flows: check and scenarios"
.venv/bin/dialer flows check ivr_flows
.venv/bin/dialer flows test ivr_flows
echo "== pytest"
exec .venv/bin/python -m pytest "$@"
