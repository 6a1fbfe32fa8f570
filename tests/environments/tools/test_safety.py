"""Hostile calls: SQL that writes or injects, python that loops forever or floods output, paths that leave
the tree, shell metacharacters in arguments, and sandbox failures (reported as infra errors)."""

from __future__ import annotations

import gymnasium as gym
import pytest

from envgym.sandboxes import SandboxInfraError

from .conftest import call

WRITES = [
    "INSERT INTO customers VALUES (999, 'x', 'y', 2020)",
    "UPDATE products SET price = 0",
    "DELETE FROM orders",
    "DROP TABLE orders",
    "CREATE TABLE t (x)",
    "ALTER TABLE orders ADD COLUMN x",
    "ATTACH DATABASE '/tmp/envgym-attack.db' AS other",
    "PRAGMA query_only = OFF",
    "PRAGMA writable_schema = ON",
    "SELECT 1; DROP TABLE orders",
    "BEGIN",
    "VACUUM INTO '/tmp/envgym-copy.db'",
    "SELECT load_extension('libevil')",
    "SELECT randomblob(1000000000)",
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n",
]


def _snapshot(env: gym.Env) -> list[object]:
    db = env.unwrapped.db
    tables = [r[0] for r in db.trusted_query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return [(t, db.trusted_query(f"SELECT * FROM {t}")) for t in tables]


@pytest.mark.parametrize("query", WRITES)
def test_sql_cannot_write_and_env_stays_usable(query: str) -> None:
    env = gym.make("envgym/ToolUse-SQL-v0", max_turns=30)
    env.reset(seed=4, options={"difficulty": 0.5})
    before = _snapshot(env)
    obs, reward, terminated, _, info = env.step(call("sql", query=query))
    assert info["feedback"]["error"] and not terminated and reward == 0.0, obs
    assert _snapshot(env) == before
    for _ in range(20):
        _, reward, terminated, truncated, _ = env.step(env.unwrapped.oracle_action())
        if terminated or truncated:
            break
    assert reward == 1.0


def test_injection_in_arguments_is_just_text() -> None:
    env = gym.make("envgym/ToolUse-SQL-v0", max_turns=30)
    env.reset(seed=4, options={"difficulty": 1.0})
    before = _snapshot(env)
    _, _, _, _, info = env.step(call("describe_table", table="customers; DROP TABLE customers; --"))
    assert "No table named" in info["feedback"]["summary"]
    _, _, _, _, info = env.step(call("sql", query="SELECT name FROM customers WHERE name = ''; DROP TABLE orders; --'"))
    assert info["feedback"]["error"]
    _, _, _, _, info = env.step(call("sql", query="SELECT '''); DROP TABLE orders; --' AS x"))
    assert not info["feedback"]["error"]
    assert _snapshot(env) == before


def test_database_is_sealed_even_for_the_env() -> None:
    env = gym.make("envgym/ToolUse-SQL-v0")
    env.reset(seed=1)
    with pytest.raises(Exception, match=r"not authorized|readonly|read-only"):
        env.unwrapped.db.conn.execute("DELETE FROM orders")


@pytest.fixture
def compute_env() -> gym.Env:
    env = gym.make("envgym/ToolUse-Compute-v0", max_turns=30, params={"timeout_s": 1.0})
    env.reset(seed=2, options={"difficulty": 0.0})
    yield env
    env.close()


def test_python_infinite_loop_times_out_and_env_stays_usable(compute_env: gym.Env) -> None:
    _, reward, terminated, _, info = compute_env.step(call("python", code="while True:\n    pass"))
    assert info["feedback"]["error"] == "timeout" and not terminated and reward == 0.0
    assert info["commands"][0]["timed_out"]
    _, _, _, _, info = compute_env.step(call("python", code="print(6 * 7)"))
    assert "42" in info["feedback"]["details"]
    assert play_after(compute_env) == 1.0


def test_python_output_flood_is_truncated(compute_env: gym.Env) -> None:
    obs, _, terminated, _, info = compute_env.step(call("python", code="for i in range(10**6):\n    print('x' * 200)"))
    assert not terminated and len(obs) < 20_000
    assert "shortened" in info["feedback"]["summary"] or info["feedback"]["error"] == "timeout"
    assert play_after(compute_env) == 1.0


def test_python_background_process_and_crash_leave_env_usable(compute_env: gym.Env) -> None:
    code = "import os, subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\nos._exit(3)"
    _, _, terminated, _, info = compute_env.step(call("python", code=code))
    assert not terminated and "Exit code 3" in info["feedback"]["summary"]
    _, _, _, _, info = compute_env.step(call("python", code="raise SystemExit('bye')"))
    assert "bye" in info["feedback"]["details"]
    assert play_after(compute_env) == 1.0


def play_after(env: gym.Env) -> float:
    reward = 0.0
    for _ in range(10):
        _, reward, terminated, truncated, _ = env.step(env.unwrapped.oracle_action())
        if terminated or truncated:
            break
    return float(reward)


@pytest.mark.parametrize(
    "action",
    [
        call("read", path="/etc/passwd"),
        call("read", path="../../etc/passwd"),
        call("ls", path="logs/../../.."),
        call("grep", pattern="root", path="/etc"),
        call("ls", path="$(touch pwned)"),
        call("grep", pattern="x'; touch pwned; echo '", path="."),
        call("grep", pattern="-e x --include=* /etc", path="docs"),
        call("read", path="config; touch pwned"),
    ],
)
def test_file_tools_stay_inside_the_tree(action: str) -> None:
    env = gym.make("envgym/ToolUse-Files-v0", max_turns=30)
    env.reset(seed=3, options={"difficulty": 0.5})
    obs, _, terminated, _, _ = env.step(action)
    assert not terminated and "root:x:0" not in obs
    box = env.unwrapped.box
    assert "pwned" not in box.exec("ls -A").output
    assert play_after(env) == 1.0
    env.close()


def test_sandbox_failure_is_an_infra_error(monkeypatch: pytest.MonkeyPatch) -> None:
    env = gym.make("envgym/ToolUse-Compute-v0")
    env.reset(seed=1, options={"difficulty": 0.0})

    def broken(command: str, timeout: float | None = None) -> None:
        raise SandboxInfraError("container died")

    monkeypatch.setattr(env.unwrapped.box, "exec", broken)
    _, reward, terminated, _, info = env.step(call("python", code="print(1)"))
    assert terminated and reward == 0.0 and "container died" in info["infra_error"]
    env.reset(seed=1, options={"difficulty": 0.0})  # a fresh sandbox replaces the broken one
    assert play_after(env) == 1.0
    env.close()


def test_api_rules_refuse_out_of_order_calls() -> None:
    env = gym.make("envgym/ToolUse-API-v0", max_turns=40)
    env.reset(seed=8, options={"difficulty": 0.0})
    _, _, _, _, info = env.step(call("checkout", order_id="O-1001"))
    assert "no order" in info["feedback"]["error"]
    _, _, _, _, info = env.step(call("create_order", customer="Nobody Here'; DROP TABLE orders"))
    assert "unknown customer" in info["feedback"]["error"]
    assert play_after(env) == 1.0
    env.close()


def test_agent_python_does_not_run_on_the_host_by_default() -> None:
    import secrets
    from pathlib import Path

    marker = Path(f"/tmp/envgym-compute-escape-{secrets.token_hex(6)}")
    env = gym.make("envgym/ToolUse-Compute-v0")
    _, info = env.reset(seed=1, options={"difficulty": 0.0})
    assert info["sandbox"]["backend"] in ("local", "docker")  # `auto`: a jail or a container, never the host
    code = (
        f"open({str(marker)!r}, 'w').write('owned')\n"
        "import os\n"
        "print(sorted(os.listdir('/proc'))[:3], open('/etc/shadow').read()[:20])"
    )
    _, _, _, _, info = env.step(call("python", code=code))
    assert not marker.exists()
    assert "root:" not in str(info["feedback"])
    env.close()


def test_unknown_sandbox_kind_is_refused_at_make() -> None:
    with pytest.raises(ValueError, match="unknown sandbox kind 'host'"):
        gym.make("envgym/ToolUse-Compute-v0", sandbox="host")
