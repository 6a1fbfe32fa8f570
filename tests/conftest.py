"""Shared test settings (one torch thread: two are ~10x slower for tiny models on 2 cores) and fixtures."""

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def flaky_image_env() -> type:
    """A real env id whose host fails at reset on odd seeds, as SWE-v0 does when a task's image is missing."""
    import gymnasium as gym

    from envgym.core import InfraError
    from envgym.environments.puzzles.guess_number import GuessNumberEnv

    class FlakyImageEnv(GuessNumberEnv):
        env_id = "envgym-test/FlakyImage-v0"

        def _generate(self, difficulty: float, params: dict) -> tuple[str, dict, int]:
            if self.task_seed % 2:
                raise InfraError("image envgym/swe:missing is not built")
            return super()._generate(difficulty, params)

    if FlakyImageEnv.env_id not in gym.registry:
        gym.register(id=FlakyImageEnv.env_id, entry_point=FlakyImageEnv)
    return FlakyImageEnv


def pytest_sessionfinish(session: object, exitstatus: int) -> None:
    """No container of this test run may outlive it.

    Containers still alive here (e.g. warm pool members of an env a test did not close) are listed, then
    removed by the same cleanup that runs at interpreter exit; any that survive that cleanup fail the run.
    """
    import pytest

    from envgym.sandboxes import lifecycle

    if not lifecycle._started:
        return
    ours = [c for c in lifecycle.list_containers() if c.labels.get(lifecycle.LABEL_RUN) == lifecycle.RUN_ID]
    if ours:
        images = sorted({str(c.labels.get("envgym.recipe") or c.attrs.get("Config", {}).get("Image")) for c in ours})
        print(f"\nnote: {len(ours)} container(s) still alive at session end ({images}); removing them")
    lifecycle.remove_run()
    left = [c.id[:12] for c in lifecycle.list_containers() if c.labels.get(lifecycle.LABEL_RUN) == lifecycle.RUN_ID]
    if left:
        print(f"\nFAILED: containers left behind by this test run: {left}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # type: ignore[attr-defined]
