"""Learner tests run on one torch thread (two are ~10x slower for tiny models on 2 cores)."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)
