#!/usr/bin/env bash
# The README's main job on the embedded defaults. Set-up is idempotent; every step records under runs/.
#   1. the reference agents on the whole puzzle suite (envgym run),
#   2. a short RL run of the default local model, SmolLM2-135M-Instruct, on an easy env, with its learning
#      curve (envgym train; CPU here, the same command uses a CUDA GPU when one is present),
#   3. SWE-v0 with the gold agent, where a Docker engine answers (images are built offline on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
EG=.venv/bin/envgym
$EG list
$EG run envgym/Puzzle-v0 --agent oracle --episodes 100 --difficulty 0.5 --out runs/puzzles-oracle
$EG run envgym/Puzzle-v0 --agent random --episodes 100 --difficulty 0.5 --out runs/puzzles-random
$EG train --run-dir runs/train
$EG plot runs/train
if docker info >/dev/null 2>&1; then
  $EG sandbox build-base
  $EG swe build
  $EG run envgym/SWE-v0 --agent oracle --episodes 3 --difficulty 0.5 --out runs/swe-oracle
else
  echo "No Docker engine answers: skipping envgym/SWE-v0 (see docs/sandboxes.md to start one)."
fi
echo "Done. Trajectories under runs/*/trajectories.jsonl; learning curve: runs/train/curves.png"
