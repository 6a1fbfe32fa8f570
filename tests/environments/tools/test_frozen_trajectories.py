"""Oracle and random-agent tool-use episodes replay bit for bit against digests recorded before the scaffolding
refactor (wall-clock durations excluded): a change to what an agent sees for a seed must bump the family's
version instead (and re-record the fixture with `envgym.testing.record_frozen`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from envgym.testing import frozen_fixture, frozen_mismatches

from .conftest import SANDBOXED

FIXTURE = frozen_fixture(Path(__file__).parent / "data" / "trajectories.json")
IDS = [
    pytest.param(env_id, marks=[pytest.mark.slow] if env_id in SANDBOXED else [])
    for env_id in sorted({key.split("|")[0] for key in FIXTURE})
]


@pytest.mark.parametrize("env_id", IDS)
def test_tool_trajectories_unchanged_for_the_same_seed(env_id: str) -> None:
    assert frozen_mismatches(FIXTURE, env_id) == []
