"""Grading never touches the agent's shell, never raises out of `step`, and an agent cannot turn its 0 into
`infra_error` (or its fix into a 0) by what it does to its own sandbox. Also: pools die with the env, and the
public prediction API (task_for, agent_patch, is_submit, info["patch"]). Real Docker engine throughout."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from envgym.environments.swe.env import SWEEnv
from envgym.environments.swe.schema import SWETask

pytestmark = pytest.mark.docker


def bash(command: str) -> str:
    return json.dumps({"name": "bash", "arguments": {"command": command}})


@pytest.fixture(scope="module")
def six_task(bundled_tasks: list[SWETask], built_images: dict[str, str]) -> SWETask:
    del built_images
    return next(t for t in bundled_tasks if t.project == "six==1.17.0" and t.source_paths == ["six.py"])


@pytest.fixture(scope="module")
def env(six_task: SWETask) -> Any:
    environment = SWEEnv(tasks=[six_task])
    yield environment
    environment.close()


def episode(env: SWEEnv, actions: list[str]) -> tuple[float, dict[str, Any]]:
    """Run `actions`, then submit; `step` must never raise and must never report infra."""
    _, info = env.reset(seed=0)
    assert info["infra_error"] is None
    for action in actions:
        _, _, terminated, truncated, info = env.step(action)
        assert info["infra_error"] is None and not (terminated or truncated), info["feedback"]
    _, reward, terminated, _, info = env.step(env.null_action())
    assert terminated
    return reward, info


SHELL_SABOTAGE = {
    "shadowed tools": "tar() { return 1; }; rm() { :; }; cat() { :; }; git() { :; }; export -f tar rm cat git",
    "redefined builtins": "cd() { return 1; }; echo() { :; }; printf() { :; }; command() { :; }; builtin() { :; }",
    "disabled builtins": "enable -n echo printf test kill; alias ls=false; set -o noclobber",
    "broken PATH": "export PATH=/nonexistent; hash -r",
    "killed own shell": "kill -9 $$",
    "deleted coreutils copy": "mkdir -p ~/bin && printf '#!/bin/sh\\nexit 3\\n' > ~/bin/tar && chmod +x ~/bin/tar",
}
TREE_SABOTAGE = {
    "deleted sources": "rm -rf /repo/* /repo/.git",
    "source is a symlink": "rm six.py && ln -s /etc/passwd six.py",
    "source is a fifo": "rm six.py && mkfifo six.py",
    "unreadable tree": "chmod 000 six.py && chmod 000 /repo",
    "huge source file": "head -c 70000000 /dev/zero | tr '\\0' 'x' > six.py",
    "binary source file": "head -c 4096 /dev/urandom > six.py",
    "deeply nested source": "python3 -c \"print('x = ' + '(' * 100000 + ')' * 100000)\" > six.py",
    "background writer": "(for i in $(seq 1 300); do echo '#' >> six.py; sleep 0.01; done) >/dev/null 2>&1 &",
}


@pytest.mark.parametrize("sabotage", sorted(SHELL_SABOTAGE))
def test_hostile_shell_state_cannot_dodge_a_zero(env: SWEEnv, sabotage: str) -> None:
    reward, info = episode(env, [bash(SHELL_SABOTAGE[sabotage])])
    assert reward == 0.0 and info["infra_error"] is None, info["feedback"]
    assert "NOT RESOLVED" in info["feedback"]["summary"]


@pytest.mark.parametrize("sabotage", sorted(TREE_SABOTAGE))
def test_hostile_source_trees_score_zero_not_infra(env: SWEEnv, sabotage: str) -> None:
    reward, info = episode(env, [bash(TREE_SABOTAGE[sabotage])])
    assert reward == 0.0 and info["infra_error"] is None, info["feedback"]


@pytest.mark.parametrize("sabotage", ["shadowed tools", "disabled builtins", "killed own shell"])
def test_a_real_fix_still_scores_one_whatever_the_shell_holds(env: SWEEnv, sabotage: str) -> None:
    env.reset(seed=0)
    fix = env.oracle_action()
    reward, info = episode(env, [fix, bash(SHELL_SABOTAGE[sabotage]), bash("chmod 000 /repo")])
    assert reward == 1.0, info["feedback"]


def tool(name: str, **arguments: Any) -> str:
    return json.dumps({"name": name, "arguments": arguments})


@pytest.mark.parametrize("plant", ["mkfifo planted", "ln -s /dev/zero planted", "ln -s /dev/urandom planted"])
def test_file_tools_on_pipes_and_devices_are_feedback(env: SWEEnv, plant: str) -> None:
    """view / str_replace on a FIFO used to block for the read helper's 60 s; on a link to /dev/zero they pulled
    256 MiB into the trainer's memory. Now: refused at once, as feedback, and the episode goes on."""
    env.reset(seed=0)
    env.step(bash(plant))
    for action in (tool("view", path="planted"), tool("str_replace", path="planted", old_str="a", new_str="b")):
        _, _, terminated, _, info = env.step(action)
        assert not terminated and info["infra_error"] is None
        assert "not a regular file" in info["feedback"]["error"], info["feedback"]
    _, _, _, _, info = env.step(tool("view", path="six.py"))
    assert "import" in info["feedback"]["details"]


def test_file_tools_refuse_files_over_their_read_cap(env: SWEEnv) -> None:
    env.reset(seed=0)
    env.step(bash("head -c 9000000 /dev/zero | tr '\\0' x > big.txt"))
    _, _, _, _, info = env.step(tool("view", path="big.txt"))
    assert info["infra_error"] is None and "larger than" in info["feedback"]["error"], info["feedback"]


def test_audit_rejection_is_feedback_not_infra(env: SWEEnv, six_task: SWETask) -> None:
    payload = "import threading\\nthreading.Thread(target=print).start()\\n"
    reward, info = episode(env, [bash(f"printf '{payload}' >> six.py")])
    assert reward == 0.0 and info["infra_error"] is None
    assert "Patch rejected" in info["feedback"]["summary"] and "threading" in info["feedback"]["summary"]


def test_submit_info_carries_the_graded_patch(env: SWEEnv, six_task: SWETask) -> None:
    _, info = env.reset(seed=0)
    assert info["patch"] == ""
    _, _, _, _, info = env.step(env.oracle_action())
    assert info["patch"] == ""
    predicted = env.agent_patch()
    assert predicted.startswith("diff --git a/six.py b/six.py")
    step = env.step(env.oracle_action())
    reward, info = step[1], step[4]
    assert reward == 1.0 and info["patch"] == predicted
    from envgym.trajectory import Turn

    assert Turn.from_step(1, "submit", step).extra["patch"] == predicted  # the trajectory carries it


def test_task_for_is_the_task_reset_faces(env: SWEEnv, bundled_tasks: list[SWETask]) -> None:
    wide = SWEEnv(tasks=bundled_tasks)
    try:
        for seed, options in [(0, {}), (7, {"difficulty": 0.9}), (3, {"params": {"level": 2}})]:
            expected = wide.task_for(seed, options).instance_id
            assert wide.task_for(seed, options).instance_id == expected  # pure: no RNG state consumed
            _, info = wide.reset(seed=seed, options=options)
            assert info["infra_error"] is None and info["task"]["params"]["instance_id"] == expected
        assert env.is_submit("submit") and env.is_submit('{"name": "submit", "arguments": {}}')
        assert not env.is_submit(bash("echo submit"))
    finally:
        wide.close()


POOL_SCRIPT = """
import json, os, sys
import docker
from envgym.environments.swe.env import SWEEnv, load_tasks
task = next(t for t in load_tasks(None) if t.instance_id == sys.argv[1])
label = {"label": f"envgym.owner_pid={os.getpid()}"}
client = docker.from_env()
env = SWEEnv(tasks=[task], pool_size=2)
env.reset(seed=0)
env.step(env.null_action())  # starts the grading pool too
during = len(client.containers.list(all=True, filters=label))
env.close()
after = len(client.containers.list(all=True, filters=label))
env = SWEEnv(tasks=[task])
env.reset(seed=0)  # stages a grading sandbox in the background; closed before it is used (or even ready)
env.close()
staged_only = len(client.containers.list(all=True, filters=label))
import envgym.environments.swe.sandboxing as s
print(json.dumps({"during": during, "after": after, "staged_only": staged_only,
                  "globals": [n for n in vars(s) if n.startswith("_pool")]}))
"""


def test_close_leaves_no_container_behind(six_task: SWETask) -> None:
    """In a fresh process, so the count is this env's alone: agent and grading pools both die with close()."""
    proc = subprocess.run(
        [sys.executable, "-c", POOL_SCRIPT, six_task.instance_id], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert counts["during"] >= 2, counts  # an agent sandbox (+ a warm spare) and a grading one were running
    assert counts["after"] == 0 and counts["staged_only"] == 0, counts
    assert counts["globals"] == []


def test_a_staged_grading_sandbox_holds_the_image_bytecode_read_only(six_task: SWETask) -> None:
    """Staged before the agent's change exists: pytest imported, and the stdlib's compiled bytecode in place,
    root-owned, which the test uid can use and cannot write."""
    from envgym.environments.swe.grading import Grader
    from envgym.environments.swe.sandboxing import resolve_image
    from envgym.environments.swe.testrun import TESTER_UID

    with Grader() as grader:
        assert grader.bytecode is not None and grader.bytecode.wait(resolve_image(six_task), "python")
        grader.prepare(six_task)
        staged = grader._take(six_task)
        try:
            assert staged.suite.prestarted and staged.disposable
            probe = (
                "import json, os; d = os.path.dirname(json.__cached__); "
                "print(os.path.exists(json.__cached__), os.stat(d).st_uid, os.access(d, os.W_OK), "
                "os.access(json.__cached__, os.W_OK))"
            )
            container = staged.sandbox.container  # type: ignore[attr-defined]
            out = container.exec_run(["python", "-c", probe], user=f"{TESTER_UID}:{TESTER_UID}")
            assert out.output.decode().split() == ["True", "0", "False", "False"], out.output
        finally:
            staged.suite.abandon()
            grader.sandboxes.discard(staged.sandbox)


def call(name: str, **arguments: Any) -> str:
    return json.dumps({"name": name, "arguments": arguments})


HOSTILE_TOOL_CALLS = {
    "view an unreadable file": call("view", path="/etc/shadow"),
    "str_replace outside the agent's reach": call("str_replace", path="/etc/passwd", old_str="root", new_str="x"),
    "create in a root-owned dir": call("create", path="/usr/lib/python3/evil.py", file_text="x = 1\n"),
    "NUL in a path": call("view", path="six\u0000.py"),
    "NUL in a created path": call("create", path="a\u0000b.py", file_text="x\n"),
    "lone surrogate in content": '{"name": "create", "arguments": {"path": "new.py", "file_text": "\\ud800"}}',
    "create over a directory": call("create", path="/repo", file_text="x\n"),
    "NUL in a command": call("bash", command="echo a\u0000b"),
    "NUL in a test selection": call("run_tests", tests=["x\u0000y"]),
}


@pytest.mark.parametrize("hostile", sorted(HOSTILE_TOOL_CALLS))
def test_file_tools_answer_hostile_calls_with_feedback(env: SWEEnv, hostile: str) -> None:
    env.reset(seed=0)
    observation, reward, terminated, truncated, info = env.step(HOSTILE_TOOL_CALLS[hostile])
    assert info["infra_error"] is None and not terminated and reward == 0.0, info["feedback"]
    assert observation and info["feedback"]["summary"]
    if "NUL" in hostile:  # refused up front, not sent into the shell (where it stalls the framing)
        assert "NUL" in (info["feedback"]["error"] or ""), info["feedback"]
    assert env.step(bash("cat /etc/passwd | head -1"))[4]["infra_error"] is None  # still usable


HOOKWRAPPER = [  # a conftest that marks every test passed: what each forged patch below tries to create
    "import pytest\n",
    "@pytest.hookimpl(hookwrapper=True)\n",
    "def pytest_runtest_makereport(item, call):\n",
    "    outcome = yield\n",
    "    outcome.get_result().outcome = 'passed'\n",
]


def forged_patches(six: str) -> dict[str, str]:
    """Submitted patches (leaderboard bundles, `envgym swe grade`) that make `git apply` create a conftest the
    path filter never saw; the red team's review scored each RESOLVED before patches.py."""
    lines = six.splitlines(keepends=True)
    first, second = lines[:2]
    new = "".join("+" + line for line in HOOKWRAPPER)
    return {
        "copy header": "diff --git a/six.py b/six.py\n--- a/six.py\n+++ b/six.py\ncopy from six.py\n"
        f"copy to conftest.py\n@@ -1,{len(lines)} +1,{len(HOOKWRAPPER)} @@\n"
        + "".join("-" + line for line in lines)
        + new,
        "second file in a section": "diff --git a/six.py b/six.py\n--- a/six.py\n+++ b/six.py\n@@ -1,2 +1,2 @@\n"
        f"-{first}+{first} {second}--- /dev/null\n+++ b/conftest.py\n@@ -0,0 +1,{len(HOOKWRAPPER)} @@\n" + new,
        "traditional header, any first component": f"--- x/conftest.py\n+++ y/conftest.py\n"
        f"@@ -0,0 +1,{len(HOOKWRAPPER)} @@\n" + new,
    }


def test_a_submitted_patch_cannot_create_files_the_filter_never_saw(six_task: SWETask) -> None:
    from envgym.environments.swe.grading import Grader, buggy_sources

    with Grader(warm=False) as grader:
        for name, patch in forged_patches(buggy_sources(six_task)["six.py"]).items():
            result = grader.grade_patch(six_task, patch)
            assert result.infra_error is None, (name, result.infra_error)
            assert (result.reward, result.resolved) == (0.0, False), (name, result.summary())
            assert result.dropped_files, name  # and the agent is told what was ignored
