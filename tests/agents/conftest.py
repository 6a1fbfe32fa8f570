"""Learner tests run on one torch thread (two are ~10x slower for tiny models on 2 cores); the experiment
runners in `experiments/` (not an installed package) are importable as `toy_runs`."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)
