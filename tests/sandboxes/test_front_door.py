"""`open_sandbox`: the one front door, and `auto`, which never falls back to the bare host."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from envgym.sandboxes import BACKENDS, UnknownSandboxKind, open_sandbox, sandbox_kinds
from envgym.sandboxes.local import bwrap_problem


def test_every_row_of_the_table_is_a_callable():
    import importlib

    assert {"auto", "docker", "local"} <= set(sandbox_kinds())
    for target in BACKENDS.values():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr))


def test_unknown_kind_names_the_choices():
    with pytest.raises(UnknownSandboxKind, match=", ".join(sandbox_kinds())):
        open_sandbox("host")


@pytest.mark.skipif(bool(bwrap_problem()), reason="bubblewrap cannot build a jail here")
def test_auto_prefers_the_local_jail():
    with open_sandbox("auto") as sb:
        assert sb.info().backend == "local"
        assert sb.exec("echo $((6 * 7))").output == "42\n"


@pytest.mark.docker
def test_auto_with_docker_options_opens_docker(base_image):
    with open_sandbox("auto", image=base_image) as sb:
        assert sb.info().backend == "docker"


def test_auto_refuses_when_nothing_isolates():
    code = (
        "from envgym.sandboxes import SandboxUnavailable, open_sandbox\n"
        "try:\n"
        "    open_sandbox('auto')\n"
        "except SandboxUnavailable as e:\n"
        "    print('REFUSED', e)\n"
    )
    env = {**os.environ, "PATH": "/nonexistent", "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("REFUSED no sandbox that isolates agent code"), out.stdout + out.stderr
    assert "bubblewrap" in out.stdout and "Docker" in out.stdout
