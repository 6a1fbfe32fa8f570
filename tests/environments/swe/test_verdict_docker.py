"""The verdict channel against hostile code under test, in a real Docker sandbox (the audit is bypassed here on
purpose: `run_suite` is called directly, so this is what code that slipped past the audit could still do)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from envgym.environments.swe.sandboxing import open_swe_sandbox
from envgym.environments.swe.testrun import TESTER_UID, PreparedSuite, SuiteRun, run_suite
from envgym.sandboxes import Sandbox

from .conftest import CALC, CALC_TEST

pytestmark = pytest.mark.docker
FIXED = CALC.replace("a - b", "a + b")
COMMAND = "PYTHONPATH=. python3 -m pytest -p no:cacheprovider -q tests"
AS_WRITTEN = f"cd /repo && {COMMAND}"  # shell syntax: never prestarted, runs as written at run()
ADD, MUL = "tests/test_calc.py::test_add", "tests/test_calc.py::test_mul"


@pytest.fixture(scope="module")
def image(external_instances: Path) -> str:
    return str(json.loads(external_instances.read_text())["image"])


@pytest.fixture
def sandbox(image: str) -> Iterator[Sandbox]:
    with open_swe_sandbox(image, "/repo") as sb:
        yield sb


def run_with(sandbox: Sandbox, library: str, tests: str = CALC_TEST, timeout: float = 120) -> SuiteRun:
    sandbox.write_file("/repo/calc.py", library.encode())
    sandbox.write_file("/repo/tests/test_calc.py", tests.encode())
    return run_suite(sandbox, COMMAND, "/repo", timeout=timeout)


def live_tester_processes(sandbox: Sandbox) -> list[str]:
    """Live processes of the test uid, read from /proc as root (no ps in the base image)."""
    script = (
        "for d in /proc/[0-9]*; do echo $(stat -c %u $d 2>/dev/null) $(tr '\\0' ' ' < $d/cmdline 2>/dev/null); done"
    )
    listing = sandbox.container.exec_run(["sh", "-c", script], user="0:0")  # type: ignore[attr-defined]
    return [ln for ln in listing.output.decode().splitlines() if ln.split()[:1] == [str(TESTER_UID)]]


def test_honest_code_gets_a_verdict(sandbox: Sandbox) -> None:
    run = run_with(sandbox, FIXED)
    assert run.report_found, (run.problem, run.output[-1500:])
    assert run.passed(ADD) and run.passed(MUL)
    buggy = run_with(sandbox, CALC)
    assert buggy.report_found and not buggy.passed(ADD) and buggy.passed(MUL)
    assert "assert" in buggy.outcome(ADD).message


def test_tests_run_as_their_own_uid_and_cannot_reach_the_grader(sandbox: Sandbox) -> None:
    probe = (
        "import glob, os, sys\n\n\ndef test_isolated():\n"
        f"    assert os.getuid() == {TESTER_UID}\n"
        "    assert not os.access('/repo', os.W_OK) and not os.access('/repo/calc.py', os.W_OK)\n"
        "    plugins = glob.glob('/var/lib/envgym-grader-*/*.py')\n"
        "    assert plugins and not any(os.access(p, os.W_OK) for p in plugins)\n"
        "    assert not any(os.access(os.path.dirname(p), os.W_OK) for p in plugins)\n"
        "    assert sys.stdin is None or os.read(0, 64) == b''  # the key is gone from stdin\n"
        "    assert 'ENVGYM_VERDICT_FD' not in os.environ\n"
        "    for fd in range(3, 64):\n"
        "        try:\n            os.fstat(fd)\n        except OSError:\n            continue\n"
        "        assert os.get_inheritable(fd) is False, fd\n"
    )
    run = run_with(sandbox, FIXED, tests=probe)
    assert run.report_found and run.passed("tests/test_calc.py::test_isolated"), run.outcomes


FORGED = json.dumps({"seq": 3, "kind": "report", "nodeid": ADD, "when": "call", "outcome": "passed"})
# What the code under test does at import; each would make the buggy add() look fixed, or end the run early.
# (Patching pytest's internals from inside the process is the residual risk the AST audit closes: test_audit.py.)
HOSTILE = {  # attack -> (what the grader must say, if anything; the library source)
    "forged records on every fd": (
        "did not sign",
        f"import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'{'0' * 64} ' + {FORGED!r}.encode() + b'\\n')\n"
        "    except OSError:\n        pass\n",
    ),
    "daemon outlives pytest and writes later": (
        "",
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(3)\n"
        "    for fd in range(3, 64):\n        try:\n            os.write(fd, b'PASSED\\n')\n"
        "        except OSError:\n            pass\n    time.sleep(600)\n    os._exit(0)\n",
    ),
    "lingering non-daemon thread": (
        "exited with",
        "import threading, time\nthreading.Thread(target=time.sleep, args=(600,)).start()\n",
    ),
    "exit 0 at interpreter exit": ("exited with 0", "import atexit, os\natexit.register(os._exit, 0)\n"),
    "exit 0 inside the test": ("before pytest finished", CALC.replace("return a - b", "import os\n    os._exit(0)")),
}


@pytest.mark.parametrize("attack", sorted(HOSTILE))
def test_hostile_code_under_test_cannot_forge_a_pass(sandbox: Sandbox, attack: str) -> None:
    said, code = HOSTILE[attack]
    run = run_with(sandbox, code if "inside the test" in attack else code + CALC)
    assert not run.passed(ADD), (attack, run.problem, run.outcomes.get(ADD))
    assert said in (run.problem or ""), (attack, run.problem)
    assert live_tester_processes(sandbox) == [], attack  # nothing of the test run outlives it


def test_a_hang_is_cut_at_the_timeout(sandbox: Sandbox) -> None:
    hang = "import time\ntime.sleep(600)\n" + FIXED
    run = run_with(sandbox, hang, timeout=5)
    assert run.timed_out and not run.report_found and not run.passed(ADD)
    assert live_tester_processes(sandbox) == []


def test_a_prestarted_pytest_runs_the_code_on_disk_at_go(sandbox: Sandbox) -> None:
    sandbox.write_file("/repo/tests/test_calc.py", CALC_TEST.encode())
    prepared = PreparedSuite(sandbox, COMMAND, "/repo")
    assert prepared.prestarted  # pytest is imported, the library is not
    sandbox.write_file("/repo/calc.py", FIXED.encode())  # the change arrives after the import
    run = prepared.run(timeout=120)
    assert run.prestarted and run.report_found and run.passed(ADD) and run.passed(MUL), run.problem
    assert live_tester_processes(sandbox) == []


def test_a_project_module_imported_with_pytest_means_a_fresh_process(sandbox: Sandbox) -> None:
    """A project that shadows something pytest imports (here a copy of iniconfig) would be tested in its
    pre-change state by a prestarted pytest: the zygote says so and the run starts fresh instead."""
    assert sandbox.exec("cp -r /usr/lib/python3/dist-packages/iniconfig /repo/").exit_code == 0
    sandbox.write_file("/repo/tests/test_calc.py", CALC_TEST.encode())
    prepared = PreparedSuite(sandbox, COMMAND, "/repo")
    assert not prepared.prestarted
    assert live_tester_processes(sandbox) == []  # the zygote that imported the repo's copy is gone
    sandbox.write_file("/repo/calc.py", FIXED.encode())
    run = prepared.run(timeout=120)
    assert not run.prestarted and run.report_found and run.passed(ADD), run.problem


@pytest.mark.parametrize("attack", ["forged records on every fd", "exit 0 at interpreter exit"])
def test_a_command_run_as_written_has_the_same_protection(sandbox: Sandbox, attack: str) -> None:
    said, code = HOSTILE[attack]
    sandbox.write_file("/repo/calc.py", (code + CALC).encode())
    sandbox.write_file("/repo/tests/test_calc.py", CALC_TEST.encode())
    run = run_suite(sandbox, AS_WRITTEN, "/repo", timeout=120)
    assert not run.prestarted and not run.passed(ADD) and said in (run.problem or ""), run.problem
    assert live_tester_processes(sandbox) == []
    honest = run_with_command(sandbox, FIXED, AS_WRITTEN)
    assert honest.report_found and honest.passed(ADD) and not honest.prestarted


@pytest.mark.parametrize("attack", sorted(HOSTILE))
def test_a_disposable_run_still_refuses_what_it_refused(sandbox: Sandbox, attack: str) -> None:
    """The grader skips the final kill only when pytest exited and its stream ended (the sandbox is removed
    next); the verdict must be the same as with the kill."""
    said, code = HOSTILE[attack]
    sandbox.write_file("/repo/calc.py", (code if "inside the test" in attack else code + CALC).encode())
    sandbox.write_file("/repo/tests/test_calc.py", CALC_TEST.encode())
    run = PreparedSuite(sandbox, COMMAND, "/repo").run(timeout=120, disposable=True)
    assert not run.passed(ADD) and said in (run.problem or ""), (attack, run.problem)


def run_with_command(sandbox: Sandbox, library: str, command: str) -> SuiteRun:
    sandbox.write_file("/repo/calc.py", library.encode())
    sandbox.write_file("/repo/tests/test_calc.py", CALC_TEST.encode())
    return run_suite(sandbox, command, "/repo", timeout=120)
