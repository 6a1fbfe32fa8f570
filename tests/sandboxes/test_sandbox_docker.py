"""Docker-only guarantees: isolation of the filesystem and user, ownership labels, the reaper, lifetime,
and infra failures surfacing as SandboxInfraError."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from envgym.sandboxes import SandboxInfraError, SandboxLimits

pytestmark = pytest.mark.docker


@pytest.fixture
def docker_sandbox(base_image):
    from envgym.sandboxes.docker import DockerSandbox

    made = []

    def make(**kwargs):
        sb = DockerSandbox(base_image, **kwargs)
        made.append(sb)
        return sb

    yield make
    for sb in made:
        sb.close()


def _exists(container_id: str) -> bool:
    import docker.errors

    from envgym.sandboxes.docker_client import docker_client

    try:
        docker_client().containers.get(container_id)
    except docker.errors.NotFound:
        return False
    return True


def test_writes_outside_the_workspace_fail(docker_sandbox):
    sb = docker_sandbox()
    assert sb.exec("id -u").output.strip() == "1000"
    for command in ("touch /usr/bin/evil", "echo x >> /etc/passwd", "mkdir /root/x", "rm -rf /var/lib/envgym"):
        assert sb.exec(command).exit_code != 0, command
    assert sb.exec("touch /workspace/fine").exit_code == 0
    # The pristine copy reset() restores from is out of the agent's reach.
    assert sb.exec("touch /var/lib/envgym/pristine/planted").exit_code != 0


def test_container_is_locked_down(docker_sandbox):
    sb = docker_sandbox()
    attrs = sb.container.attrs
    host = attrs["HostConfig"]
    assert host["Init"] is True
    assert host["NetworkMode"] == "none"
    assert host["Memory"] == host["MemorySwap"] == sb.limits.memory_mb * 1024 * 1024
    assert host["PidsLimit"] == sb.limits.pids
    assert host["NanoCpus"] == int(sb.limits.cpus * 1e9)
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    labels = attrs["Config"]["Labels"]
    for key in ("envgym.run", "envgym.owner_pid", "envgym.created"):
        assert labels[key]
    assert labels["envgym.owner_pid"] == str(os.getpid())
    # The agent holds no capabilities at all.
    caps = sb.exec("grep CapEff /proc/self/status").output.split()[-1]
    assert int(caps, 16) == 0


def test_close_removes_the_container(docker_sandbox):
    sb = docker_sandbox()
    cid = sb.container.id
    assert _exists(cid)
    sb.close()
    assert not _exists(cid)


def test_killed_owner_is_reaped(base_image):
    from envgym.sandboxes import lifecycle

    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from envgym.sandboxes.docker import DockerSandbox\n"
            f"sb = DockerSandbox({base_image!r})\n"
            "print(sb.container.id, flush=True)\n"
            "time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        cid = child.stdout.readline().strip()
        assert cid and _exists(cid)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert _exists(cid)  # SIGKILL skips atexit: only the reaper can clean this up
        lifecycle.reap()
        assert not _exists(cid)
    finally:
        if child.poll() is None:
            child.kill()


def test_reaper_spares_live_owners(docker_sandbox):
    from envgym.sandboxes import lifecycle

    sb = docker_sandbox()
    lifecycle.reap()
    assert _exists(sb.container.id)
    assert sb.exec("echo still-here").output == "still-here\n"


@pytest.mark.slow
def test_container_dies_after_its_lifetime(docker_sandbox):
    sb = docker_sandbox(limits=SandboxLimits(lifetime_s=3))
    cid = sb.container.id
    deadline = time.monotonic() + 30
    while _exists(cid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _exists(cid)
    with pytest.raises(SandboxInfraError, match=r"removed|exited|create a new sandbox"):
        sb.exec("echo hi")


def test_missing_image_is_an_infra_error():
    from envgym.sandboxes.docker import DockerSandbox
    from envgym.sandboxes.docker_client import docker_available

    if not docker_available():
        pytest.skip("no engine")
    with pytest.raises(SandboxInfraError, match="not found"):
        DockerSandbox("envgym/does-not-exist:0")


def test_daemon_down_is_an_infra_error():
    code = (
        "from envgym.sandboxes import SandboxInfraError\n"
        "from envgym.sandboxes.docker import DockerSandbox\n"
        "try:\n"
        "    DockerSandbox('envgym/base:x')\n"
        "except SandboxInfraError as e:\n"
        "    print('INFRA', e)\n"
    )
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("INFRA no Docker engine reachable"), out.stdout + out.stderr


def test_container_removed_underneath_is_an_infra_error(docker_sandbox):
    sb = docker_sandbox()
    sb.container.remove(force=True)
    with pytest.raises(SandboxInfraError):
        sb.exec("echo hi", timeout=10)


def test_reaping_a_container_that_is_already_gone_is_quiet(docker_sandbox, caplog):
    import logging

    from envgym.sandboxes import lifecycle
    from envgym.sandboxes.docker_client import docker_client

    sb = docker_sandbox()
    cid = sb.container.id
    sb.container.remove(force=True)
    with caplog.at_level(logging.DEBUG, logger="envgym.sandboxes"):
        assert lifecycle._remove([cid]) == 0
        lifecycle.reap()
        lifecycle._safe_reap(docker_client())
        sb.close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_a_forked_child_exiting_leaves_its_parents_containers_alone(docker_sandbox):
    from envgym.sandboxes import lifecycle

    sb = docker_sandbox()
    pid = os.fork()
    if pid == 0:  # the child exits through the interpreter: its atexit hooks run (the parent's included)
        try:
            lifecycle._at_exit(sb._client)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert _exists(sb.container.id)
    assert sb.exec("echo alive").output == "alive\n"


def test_a_reaper_cut_short_by_interpreter_exit_is_quiet_but_engine_errors_are_not(monkeypatch, caplog):
    """A CLI that fails fast exits while the background reaper is mid-way: that must not add a second stderr line."""
    import logging

    from envgym.sandboxes import lifecycle

    def exiting(client: object) -> int:
        raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    def broken(client: object) -> int:
        raise ConnectionError("engine gone")

    with caplog.at_level(logging.DEBUG, logger="envgym.sandboxes"):
        monkeypatch.setattr(lifecycle, "reap", exiting)
        lifecycle._safe_reap(None)
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
        monkeypatch.setattr(lifecycle, "reap", broken)
        lifecycle._safe_reap(None)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING and "engine gone" in r.getMessage()]


PRISTINE = "/var/lib/envgym/pristine"


@pytest.mark.parametrize("big", [False, True], ids=["fits its tmpfs", "too big: on disk"])
def test_the_pristine_copy_is_exact_wherever_it_is_kept(docker_sandbox, tmp_path, big):
    """Setup copies the uploaded workspace into a root-only tmpfs of its own, or to disk when it does not fit
    (an eighth of the memory limit, 16 MB at least): either way reset() puts back exactly what was uploaded."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.py").write_text("print(1)\n")
    (tmp_path / "blob").write_bytes(os.urandom((20 if big else 1) * 1024 * 1024))
    os.chmod(tmp_path / "d", 0o750)
    sb = docker_sandbox(source=tmp_path, limits=SandboxLimits(memory_mb=128))
    on_disk = sb.container.exec_run(["test", "-d", f"{PRISTINE}/ws.disk"], user="0:0").exit_code == 0
    assert on_disk == big
    kept = f"{PRISTINE}/ws.disk" if big else f"{PRISTINE}/ws"
    listing = "cd {} && find . -printf '%y %m %U %T@ %p\\n' | sort && md5sum blob d/f.py"  # no dir sizes: fs-specific
    before = sb.container.exec_run(["bash", "-c", listing.format("/workspace")], user="0:0").output
    assert sb.container.exec_run(["bash", "-c", listing.format(kept)], user="0:0").output == before
    assert sb.exec(f"ls {PRISTINE}").exit_code != 0  # root-only
    sb.exec("echo x >> blob; rm d/f.py; chmod 777 d; touch new")
    sb.reset()
    assert sb.last_restored > 0
    assert sb.container.exec_run(["bash", "-c", listing.format("/workspace")], user="0:0").output == before
