"""The local backend is a boundary: what a command in the bubblewrap jail cannot see, write or leave.

Each test asks the real kernel (no mocks): a marker on the host, a host process's environment, the
sandbox's own host processes and cgroups as the host sees them.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from envgym.sandboxes import SandboxLimits
from envgym.sandboxes.local import LocalSandbox, bwrap_problem, cgroup_controllers

pytestmark = pytest.mark.skipif(bool(bwrap_problem()), reason="bubblewrap cannot build a jail here")


@pytest.fixture
def sb():
    box = LocalSandbox(limits=SandboxLimits(pids=128))
    yield box
    box.close()


def test_host_tmp_and_filesystem_are_out_of_reach(sb: LocalSandbox):
    marker = Path(f"/tmp/envgym-escape-{secrets.token_hex(6)}")
    r = sb.exec(f"echo owned > {marker}; touch /usr/owned /etc/owned; ls /home /root /work 2>&1; echo done")
    assert not marker.exists()
    assert not Path("/usr/owned").exists() and not Path("/etc/owned").exists()
    assert "No such file" in r.output and r.output.endswith("done\n")
    assert sb.exec("touch /workspace/fine && echo ok").output == "ok\n"  # the workspace is the writable place


def test_secrets_of_the_host_are_not_visible(sb: LocalSandbox):
    token = secrets.token_hex(12)
    host = subprocess.Popen(["sleep", "60"], env={"ENVGYM_TEST_SECRET": token})
    try:
        r = sb.exec(f"cat /etc/shadow; cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c {token}")
        assert r.output.strip().endswith("0"), r.output
        assert "root:" not in r.output
        pids = sb.exec("ls /proc | grep -c '^[0-9]'").output.strip()
        assert int(pids) < 10  # its own PID namespace: the host's processes do not exist here
    finally:
        host.kill()
        host.wait()


def test_runs_as_its_own_unprivileged_uid_without_capabilities(sb: LocalSandbox):
    assert sb.exec("id -u").output == "1000\n"
    caps = sb.exec("grep CapEff /proc/self/status").output.split()[-1]
    assert int(caps, 16) == 0
    if os.geteuid() == 0:
        uids = {int(Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0]) for pid in sb._members()}
        assert uids == {sb.host_uid} and sb.host_uid not in (0, os.geteuid())


def test_limits_cannot_be_left(sb: LocalSandbox):
    r = sb.exec(
        "ulimit -t unlimited && echo raised; echo $$ > /sys/fs/cgroup/pids/cgroup.procs && echo moved; echo end"
    )
    assert "raised" not in r.output and "moved" not in r.output and r.output.endswith("end\n")
    for controller in cgroup_controllers():
        group = f"envgym-{sb.id}"
        for pid in sb._members():
            assert group in Path(f"/proc/{pid}/cgroup").read_text(), controller


def test_close_leaves_nothing_behind():
    box = LocalSandbox()
    box.exec("sleep 300 > /dev/null 2>&1 &")
    members, root, control = set(box._members()), box._root, box._control
    groups = [Path(f"/sys/fs/cgroup/{c}/envgym-{box.id}") for c in cgroup_controllers()]
    assert members
    box.close()
    assert not any(Path(f"/proc/{pid}").exists() for pid in members)
    assert not root.exists() and not control.exists()
    assert not any(g.exists() for g in groups)


def test_without_bubblewrap_local_refuses_and_names_docker():
    code = (
        "from envgym.sandboxes import SandboxUnavailable, open_sandbox\n"
        "try:\n"
        "    open_sandbox('local')\n"
        "except SandboxUnavailable as e:\n"
        "    print('REFUSED', e)\n"
    )
    env = {**os.environ, "PATH": "/nonexistent"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("REFUSED no local isolation boundary"), out.stdout + out.stderr
    assert "Docker" in out.stdout and "bubblewrap" in out.stdout
