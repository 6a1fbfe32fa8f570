#!/usr/bin/env bash
# The README's main job on the embedded defaults: set up (idempotent), then run envgym's reference agents
# on the puzzle suite and record their trajectories under runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/envgym list
.venv/bin/envgym run envgym/Puzzle-v0 --agent oracle --episodes 100 --difficulty 0.5 --out runs/puzzles-oracle
.venv/bin/envgym run envgym/Puzzle-v0 --agent random --episodes 100 --difficulty 0.5 --out runs/puzzles-random
