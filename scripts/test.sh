#!/usr/bin/env bash
# The README's test command: set up (idempotent), then lint, type-check and run the whole test suite.
# With CI=true the Docker tests must run (a missing engine fails them instead of skipping).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export OMP_NUM_THREADS=1
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy envgym environments agents sandboxes
.venv/bin/pytest "$@"
