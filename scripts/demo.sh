#!/usr/bin/env bash
# The main job: start the testbed and the server, run the demo, print what happened.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/dialer demo "$@"
