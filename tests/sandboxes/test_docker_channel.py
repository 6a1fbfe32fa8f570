"""The Docker framer's FIFO channel (docker_channel.py): who can reach it, its start-up, its cleanup."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from envgym.sandboxes.base import SandboxInfraError
from envgym.sandboxes.docker_channel import (
    CHANNEL_MOUNT,
    FIFO_EXEC,
    engine_is_local,
    make_channel_dir,
    open_fifo_channel,
    remove_channel_dir,
)
from envgym.sandboxes.shell import PipeTransport


def _local_start(channel_dir: str, *framer: str):
    """A start() that runs FIFO_EXEC on this machine (no engine): the wrapper's half of the handshake."""

    def start() -> PipeTransport:
        proc = subprocess.Popen(
            ["sh", "-c", FIFO_EXEC, "wrapper", channel_dir, *framer],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        return PipeTransport(proc)

    return start


def test_the_handshake_connects_and_leaves_no_name_behind(tmp_path):
    channel = make_channel_dir()
    try:
        assert stat.S_IMODE(os.stat(channel).st_mode) == 0o311  # nobody lists it
        transport = open_fifo_channel(
            channel, _local_start(channel, "sh", "-c", "echo READY; exec cat"), _deadline(), lambda said: "x"
        )
        try:
            assert transport.recv(5) == b"READY\n"
            assert os.listdir(channel) == []  # both FIFOs unlinked before any command
            transport.send(b"ping\n")
            assert transport.recv(5) == b"ping\n"
        finally:
            transport.close()
        assert os.listdir(channel) == []
    finally:
        remove_channel_dir(channel)
    assert not os.path.exists(channel)


@pytest.mark.parametrize("framer", [("sh", "-c", "exit 3"), ("/nonexistent/framer",)])
def test_a_framer_that_never_answers_is_a_clear_error_and_leaks_nothing(framer):
    channel = make_channel_dir()
    before = len(os.listdir("/proc/self/fd"))
    try:
        with pytest.raises(SandboxInfraError, match="did not start"):
            open_fifo_channel(channel, _local_start(channel, *framer), _deadline(), lambda said: "it exited")
        assert os.listdir(channel) == []
        assert len(os.listdir("/proc/self/fd")) == before
    finally:
        remove_channel_dir(channel)


def test_a_malformed_token_is_refused_by_the_wrapper(tmp_path):
    for token in (b"../../etc/passwd\n", b"\n", b"ab\n", b"g" * 32 + b"\n"):
        proc = subprocess.run(
            ["sh", "-c", FIFO_EXEC, "wrapper", str(tmp_path), "true"], input=token, capture_output=True, timeout=10
        )
        assert proc.returncode == 94, token


def test_only_our_channel_directories_are_removed(tmp_path):
    victim = tmp_path / "envgym-chan-victim"  # right name, wrong place
    victim.mkdir()
    remove_channel_dir(str(victim))
    remove_channel_dir("/etc")
    assert victim.exists() and Path("/etc").exists()


def test_only_a_local_engine_gets_fifos(monkeypatch):
    from envgym.sandboxes.docker import TRANSPORT_ENV, _transport_kind

    assert engine_is_local("http+docker://localhost")
    assert not engine_is_local("tcp://10.0.0.5:2376")
    monkeypatch.delenv(TRANSPORT_ENV, raising=False)
    assert _transport_kind("auto", "tcp://10.0.0.5:2376") == "socket"
    assert _transport_kind("socket", "http+docker://localhost") == "socket"
    monkeypatch.setenv(TRANSPORT_ENV, "cli")
    assert _transport_kind("auto", "http+docker://localhost") == "cli"
    monkeypatch.setenv(TRANSPORT_ENV, "pigeon")
    with pytest.raises(ValueError, match="fifo, socket or cli"):
        _transport_kind("auto", "http+docker://localhost")


def _deadline() -> float:
    return time.monotonic() + 20


# -- against the real engine ------------------------------------------------------------------------------


@pytest.mark.docker
def test_the_agent_cannot_reach_the_channel(base_image):
    from envgym.sandboxes.docker import DockerSandbox

    with DockerSandbox(base_image) as sb:
        assert sb._transport_kind == "fifo"
        channel = sb._channel_dir
        assert os.listdir(channel) == []
        probe = sb.exec(
            f"ls {CHANNEL_MOUNT} 2>&1; touch {CHANNEL_MOUNT}/x 2>&1; mkfifo {CHANNEL_MOUNT}/y 2>&1; "
            f"chmod 777 {CHANNEL_MOUNT} 2>&1; "
            # no agent process holds a channel FIFO (the framer's fds are not readable; its children closed them)
            "for p in /proc/[0-9]*; do ls -l $p/fd 2>/dev/null; done | grep -c envgym-chan"
        )
        assert "Permission denied" in probe.output and "Read-only file system" in probe.output
        assert probe.output.rstrip().endswith("\n0")
        assert os.listdir(channel) == []
        assert sb.exec("echo still; exit 3").output == "still\n"
    assert not os.path.exists(channel)


@pytest.mark.docker
def test_a_killed_framer_comes_back_on_fresh_fifos(base_image):
    from envgym.sandboxes.docker import DockerSandbox

    with DockerSandbox(base_image) as sb:
        sb.exec("cd /tmp; export KEEP=1")
        old = sb.shell.pid
        died = sb.exec(f"kill -9 {old}")
        assert died.exit_code == -1
        assert sb.shell.respawns == 1 and sb.shell.pid != old
        assert os.listdir(sb._channel_dir) == []
        assert sb.exec("pwd; echo ${KEEP:-gone}").output == "/tmp\n1\n"  # the last saved state holds


@pytest.mark.docker
@pytest.mark.parametrize("transport", ["socket", "cli"])
def test_the_engine_relay_still_works(base_image, transport):
    from envgym.sandboxes.docker import DockerSandbox

    with DockerSandbox(base_image, transport=transport) as sb:
        assert sb._channel_dir == ""
        assert sb.exec("cd /tmp; export A=1").exit_code == 0
        assert sb.exec('pwd; echo "$A"').output == "/tmp\n1\n"
        assert sb.exec("sleep 100", timeout=1).timed_out
        assert sb.exec("echo ok").output == "ok\n"


@pytest.mark.docker
def test_the_reaper_removes_an_orphans_channel(base_image):
    from envgym.sandboxes import lifecycle
    from envgym.sandboxes.docker import DockerSandbox
    from envgym.sandboxes.docker_client import docker_client

    sb = DockerSandbox(base_image)
    channel, cid = sb._channel_dir, sb.container.id
    try:
        mine = [c for c in lifecycle._listed(docker_client(), lifecycle.LABEL_RUN) if c["Id"] == cid]
        assert lifecycle._remove_with_channels(mine) == 1
        assert not os.path.exists(channel)
    finally:
        sb.close()


@pytest.mark.docker
def test_a_channel_that_cannot_open_falls_back_to_the_relay(base_image, monkeypatch, caplog):
    import logging

    from envgym.sandboxes import docker as docker_module

    # the wrapper looks for its FIFOs where they are not (as when a security policy keeps it from opening them)
    wrong_place = docker_module._WAIT_SETUP + 'shift; set -- /nonexistent "$@"\n' + FIFO_EXEC
    monkeypatch.setattr(docker_module, "_WAIT_READY_FIFO", wrong_place)
    monkeypatch.setattr(docker_module, "_fifo_failed_here", False)
    with (
        caplog.at_level(logging.WARNING, logger="envgym.sandboxes.docker"),
        docker_module.DockerSandbox(base_image) as sb,
    ):
        assert sb._transport_kind == "socket"
        assert sb.exec("echo ok").output == "ok\n"
        assert os.listdir(sb._channel_dir) == []
    assert "uses the engine's exec relay from now on" in caplog.text
    # the process remembers: the next sandbox does not try (and warn) again
    caplog.clear()
    with (
        caplog.at_level(logging.WARNING, logger="envgym.sandboxes.docker"),
        docker_module.DockerSandbox(base_image) as sb,
    ):
        assert sb._transport_kind == "socket" and sb._channel_dir == ""
        assert sb.exec("echo ok").output == "ok\n"
    assert caplog.text == ""


@pytest.mark.docker
def test_the_framers_stderr_goes_nowhere(base_image):
    """Nobody reads the exec's relay once the FIFOs carry the frames: stderr written there could fill the engine's
    buffers and block the framer."""
    from envgym.sandboxes.docker import DockerSandbox

    with DockerSandbox(base_image) as sb:
        top = subprocess.run(
            ["docker", "top", sb.container.id, "-eo", "pid,args"], capture_output=True, text=True, check=True
        ).stdout
        framer = next(line.split()[0] for line in top.splitlines() if "envgym-shell" in line)
        try:
            targets = {fd: os.readlink(f"/proc/{framer}/fd/{fd}") for fd in ("0", "1", "2")}
        except PermissionError:
            pytest.skip("reading another uid's non-dumpable process needs root on the host")
        assert targets["2"] == "/dev/null"
        assert targets["0"].endswith(".in (deleted)") and targets["1"].endswith(".out (deleted)")
