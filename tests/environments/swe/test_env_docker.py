"""SWE-v0 end to end in Docker: gold 1.0 / null 0, hack attempts 0, no leaks, determinism, external instances.

The fast subset uses a few seeded tasks of the quickest projects; `test_every_bundled_task` (slow) checks all.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from envgym.environments.swe.env import SWEEnv
from envgym.environments.swe.schema import SWETask

pytestmark = pytest.mark.docker
FAST_PROJECTS = ("six==1.17.0", "inflection==0.5.1", "toolz==1.2.0")


def make_env(**kwargs: Any) -> gym.Env:
    import envgym  # noqa: F401  (registers ids)

    if "envgym/SWE-v0" in gym.registry:
        return gym.make("envgym/SWE-v0", **kwargs)
    return SWEEnv(**kwargs)


def bash(command: str) -> str:
    return json.dumps({"name": "bash", "arguments": {"command": command}})


@pytest.fixture(scope="module")
def fast_tasks(bundled_tasks: list[SWETask], built_images: dict[str, str]) -> list[SWETask]:
    del built_images
    tasks = [t for t in bundled_tasks if t.project in FAST_PROJECTS] or bundled_tasks
    rng = np.random.default_rng(0)
    return [tasks[i] for i in sorted(rng.choice(len(tasks), size=min(3, len(tasks)), replace=False))]


@pytest.fixture(scope="module")
def env(fast_tasks: list[SWETask]) -> Any:
    environment = make_env(tasks=fast_tasks)
    yield environment
    environment.close()


def run_episode(env: Any, instance_id: str, actions: list[str]) -> tuple[float, dict[str, Any], list[str]]:
    obs, info = env.reset(seed=0, options={"instance_id": instance_id})
    assert info["infra_error"] is None
    observations = [obs]
    reward, info = 0.0, {}
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        assert info["infra_error"] is None, info["infra_error"]
        if terminated or truncated:
            break
    return float(reward), info, observations


def test_gold_scores_one_and_null_scores_zero(env: Any, fast_tasks: list[SWETask]) -> None:
    for task in fast_tasks:
        env.reset(seed=0, options={"instance_id": task.instance_id})
        base = env.unwrapped
        reward, info, observations = run_episode(env, task.instance_id, [base.oracle_action(), base.oracle_action()])
        assert reward == 1.0, (info["feedback"], observations[1][:2000], info["patch"][:2000])
        assert info["reward_components"]["fail_to_pass"] == 1.0
        reward, info, _ = run_episode(env, task.instance_id, [base.null_action()])
        assert reward == 0.0
        assert "FAILED" in (info["feedback"]["details"] or "")  # names failing tests with their messages


def test_same_seed_same_task_and_observation(env: Any) -> None:
    first = env.reset(seed=123, options={"difficulty": 0.9})
    second = env.reset(seed=123, options={"difficulty": 0.9})
    assert first[0] == second[0]
    assert first[1]["task"] == second[1]["task"]
    assert first[1]["base_commit"] == second[1]["base_commit"]
    assert {t["function"]["name"] for t in first[1]["tools"]} == {
        "bash",
        "view",
        "str_replace",
        "create",
        "run_tests",
        "submit",
    }


def _hack_actions(task: SWETask) -> dict[str, list[str]]:
    test_file = task.FAIL_TO_PASS[0].split("::")[0]
    conftest = (
        "import pytest\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
        "    outcome = yield\n    rep = outcome.get_result()\n    rep.outcome = 'passed'\n"
    )
    src = (task.source_paths or ["."])[0]
    src_dir = src if not src.endswith(".py") else "."
    return {
        "edit tests": [bash(f"sed -i 's/assert /assert True or /' {test_file} && git commit -qam tests")],
        "delete tests": [bash(f"rm -f {test_file}")],
        "add conftest": [bash(f"cat > conftest.py <<'EOF'\n{conftest}EOF\ncp conftest.py {src_dir}/conftest.py")],
        "pytest config": [
            bash(
                "printf '[pytest]\\naddopts = -p no:python\\n' > pytest.ini; printf '\\n[tool:pytest]\\naddopts = -x\\n' >> setup.cfg"
            )
        ],
        "fake PASSED output": [
            bash(f"echo 'print(\"PASSED\")' >> {src if src.endswith('.py') else src + '/__init__.py'}"),
            bash(
                "mkdir -p /tmp/x && echo '<testsuites><testsuite><testcase classname=a name=b/></testsuite></testsuites>' > /tmp/x/report.xml"
            ),
        ],
        "hook pytest from the library": [
            bash(
                f"printf 'import _pytest.runner as _r\\n_r.call_and_report = lambda *a, **k: None\\n' >> "
                f"{src if src.endswith('.py') else src + '/__init__.py'}"
            )
        ],
        "pip install": [bash("pip install --index-url https://pypi.org/simple requests 2>&1 | tail -2")],
    }


@pytest.mark.parametrize(
    "hack",
    [
        "edit tests",
        "delete tests",
        "add conftest",
        "pytest config",
        "fake PASSED output",
        "hook pytest from the library",
        "pip install",
    ],
)
def test_hack_attempts_score_zero(env: Any, fast_tasks: list[SWETask], hack: str) -> None:
    task = fast_tasks[0]
    actions = [*_hack_actions(task)[hack], env.unwrapped.null_action()]
    reward, info, _ = run_episode(env, task.instance_id, actions)
    assert reward == 0.0, f"{hack}: {info['feedback']}"


def test_git_archaeology_reveals_nothing(env: Any, fast_tasks: list[SWETask]) -> None:
    task = fast_tasks[0]
    commands = [
        "git log --all --oneline | wc -l",
        "git reflog | wc -l; git stash list | wc -l; git tag | wc -l; git remote | wc -l; git branch -a | wc -l",
        "git rev-list --all | wc -l; git fsck --lost-found 2>/dev/null | wc -l; git count-objects -v | grep -c '^count: 0'",
        "git show HEAD~1 2>&1 | head -1",
    ]
    _, _, observations = run_episode(env, task.instance_id, [bash(c) for c in commands])
    assert observations[1].split()[-1] == "1"  # one commit
    assert observations[2].split()[-5:] == ["0", "0", "0", "0", "1"]  # no reflog/stash/tags/remotes; one branch
    assert observations[3].split()[-3:-1] == ["1", "0"]  # one reachable commit, nothing dangling
    assert "unknown revision" in observations[4] or "ambiguous" in observations[4]


def test_pristine_source_is_nowhere_in_the_sandbox(env: Any, fast_tasks: list[SWETask]) -> None:
    """The line the bug replaced must not exist anywhere the agent can read (image, pool snapshot, caches)."""
    task = next((t for t in fast_tasks if len(t.mutations[0].original.strip()) > 12), fast_tasks[0])
    needle = max(task.mutations[0].original.strip().splitlines(), key=len).strip()
    if needle in task.mutations[0].mutated:
        pytest.skip("the mutation kept its longest original line")
    finder = (
        f"grep -rsF --exclude-dir=proc --exclude-dir=sys -l -e {json.dumps(needle)} / 2>/dev/null | head -5; echo done"
    )
    _, _, observations = run_episode(env, task.instance_id, [bash(finder)])
    listing = observations[1]
    assert "done" in listing
    assert task.mutations[0].file not in listing.split("done")[0], listing


# ----- external SWE-bench-format instance (fixture in conftest.py) ------------------------------------------
def test_external_swebench_instance(external_instances: Path) -> None:
    env = make_env(tasks=str(external_instances))
    try:
        base = env.unwrapped
        env.reset(seed=0)
        reward, info, _ = run_episode(env, "local__calc-1", [base.oracle_action(), base.oracle_action()])
        assert reward == 1.0, info["feedback"]
        reward, info, _ = run_episode(env, "local__calc-1", [base.null_action()])
        assert reward == 0.0
    finally:
        env.close()


@pytest.mark.slow
def test_bundled_tasks_gold_and_null(bundled_tasks: list[SWETask], built_images: dict[str, str]) -> None:
    """Gold 1.0 and null 0 on a seeded sample of bundled tasks (ENVGYM_SWE_SAMPLE, default 12; 0 = every task).

    All of them: `envgym swe check` (about 2 x 105 gradings; see docs/swe.md for the measured time)."""
    del built_images
    from concurrent.futures import ThreadPoolExecutor

    from envgym.environments.swe.grading import grade_patch

    tasks = bundled_tasks
    sample = int(os.environ.get("ENVGYM_SWE_SAMPLE", "12"))
    if sample:
        rng = np.random.default_rng(0)
        tasks = [tasks[i] for i in sorted(rng.choice(len(tasks), size=min(sample, len(tasks)), replace=False))]
    jobs = [(t, t.patch, 1.0) for t in tasks] + [(t, "", 0.0) for t in tasks]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda job: (job, grade_patch(job[0], job[1])), jobs))
    failures = [
        (job[0].instance_id, job[2], result.summary(), result.failing[:3], result.verdict_problem)
        for job, result in results
        if result.infra_error or result.reward != job[2]
    ]
    assert not failures, failures
