"""The full SWE loop on the server: oracle episodes are verified by re-grading their patches in fresh sandboxes;
a bundle whose patch games the tests (edits a test file and plants a conftest.py) gets its true score."""

from __future__ import annotations

import os
from pathlib import Path

import gymnasium as gym
import httpx
import pytest

from envgym.agents.policies.scripted import OracleAgent
from envgym.leaderboard.bundle import Bundle, FileEntry, Manifest, sha256_hex
from envgym.leaderboard.client import prepare

from .conftest import Server, record_run

REGISTER = (
    "import gymnasium as gym, envgym\n"
    "if 'envgym/SWE-v0' not in gym.registry: "
    "gym.register(id='envgym/SWE-v0', entry_point='envgym.environments.swe.env:SWEEnv')\n"
)
GAMING_PATCH = """diff --git a/conftest.py b/conftest.py
new file mode 100644
--- /dev/null
+++ b/conftest.py
@@ -0,0 +1,4 @@
+import pytest
+@pytest.hookimpl(hookwrapper=True)
+def pytest_runtest_makereport(item, call):
+    outcome = yield; outcome.get_result().outcome = "passed"
"""


def _docker_ok() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


@pytest.mark.docker
@pytest.mark.slow
def test_swe_bundle_verified_and_gamed_patch_scored_honestly(tmp_path: Path) -> None:
    if not _docker_ok():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no Docker engine is reachable")
        pytest.skip("no Docker engine")
    if "envgym/SWE-v0" not in gym.registry:
        gym.register(id="envgym/SWE-v0", entry_point="envgym.environments.swe.env:SWEEnv")
    run = record_run(tmp_path / "swe", "envgym/SWE-v0", OracleAgent(), seeds=[0, 1])
    bundle = prepare(run, split="swe-mini", model="gold")
    predictions = bundle.predictions()
    assert all(p.kind == "patch" and p.patch and p.patch.strip() for p in predictions)
    # A second bundle: same trajectories, but seed 1's patch swapped for one that rigs pytest.
    gamed = [p.model_copy(update={"patch": GAMING_PATCH}) if p.seed == 1 else p for p in predictions]
    files = {**bundle.files, "predictions.jsonl": "".join(p.model_dump_json() + "\n" for p in gamed).encode()}
    manifest = Manifest.model_validate(
        {
            **bundle.manifest.model_dump(),
            "model": "gamer",
            "files": {n: FileEntry(sha256=sha256_hex(d), bytes=len(d)) for n, d in files.items()},
        }
    )
    (tmp_path / "srv").mkdir()
    srv = Server(tmp_path / "srv", preamble=REGISTER, replay_fraction=1.0)
    srv.start()
    try:
        token = srv.token("swe")
        ids = []
        for data in (bundle.pack(), Bundle(manifest=manifest, files=files).pack()):
            response = httpx.post(
                srv.url + "/api/submissions", content=data, headers={"Authorization": f"Bearer {token}"}, timeout=60
            )
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        gold = srv.wait_graded(ids[0], timeout=500)["scores"]["envgym/SWE-v0"]
        assert gold["success_rate"] == 1.0 and gold["replayed"] == 2 and gold["diverged"] == 0, gold
        gamer = srv.wait_graded(ids[1], timeout=500)["scores"]["envgym/SWE-v0"]
        assert gamer["claimed_success_rate"] == 1.0 and gamer["solved"] == 1, gamer
        assert gamer["diverged"] >= 1  # the replayed trajectory resolves, the submitted patch does not
    finally:
        srv.stop()
