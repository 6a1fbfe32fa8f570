"""Oracle and random-agent episodes replay bit for bit against digests recorded before the lean-path rewrite:
a change to what an agent sees for a seed must bump the family's version instead (and re-record the fixture
with `envgym.testing.record_frozen`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from envgym.testing import frozen_fixture, frozen_mismatches

FIXTURE = frozen_fixture(Path(__file__).parent / "data" / "trajectories.json")


@pytest.mark.parametrize("env_id", sorted({key.split("|")[0] for key in FIXTURE}))
def test_trajectories_unchanged_for_the_same_seed(env_id: str) -> None:
    assert frozen_mismatches(FIXTURE, env_id) == []
