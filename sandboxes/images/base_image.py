"""Builds the offline base image: debootstrap a minimal Debian, then `docker import` it.

Why: no container registry is reachable, so every sandbox image starts from a rootfs we build from
the Debian mirror. The tag carries a hash of the build spec, so a changed spec is a new image and an
unchanged one is never rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from envgym.sandboxes.base import SandboxInfraError

BASE_REPOSITORY = "envgym/base"
AGENT_UID = 1000
# Bump when the build steps below change in a way the spec fields do not capture.
BUILDER_VERSION = 1


class BaseImageSpec(BaseModel):
    """What goes into the base image; its hash is the image tag."""

    suite: str = "bookworm"
    variant: str = "minbase"
    packages: list[str] = [
        "bash",
        "ca-certificates",
        "coreutils",
        "findutils",
        "git",
        "procps",
        "python3",
        "python3-pip",
        "python3-pytest",
        "python3-venv",
        "rsync",
    ]
    agent_uid: int = AGENT_UID
    builder_version: int = BUILDER_VERSION

    def content_hash(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]

    def tag(self) -> str:
        return f"{BASE_REPOSITORY}:{self.content_hash()}"


def configured_debian_mirror() -> str:
    """The Debian mirror apt uses on this machine (the only one we can assume is reachable)."""
    candidates = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        for url in re.findall(r"(?:URIs:\s*|^deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", text, flags=re.M):
            if url.rstrip("/").endswith("/debian") and "security" not in url:
                return url
    return "http://deb.debian.org/debian"


def _docker_client():  # type: ignore[no-untyped-def]
    from envgym.sandboxes.docker_client import docker_client

    return docker_client()


def image_exists(tag: str) -> bool:
    import docker.errors

    try:
        _docker_client().images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def _run(cmd: list[str], log: Callable[[str], None], **kwargs: object) -> None:
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        line = line.rstrip()
        tail = [*tail[-40:], line]
        log(line)
    if proc.wait() != 0:
        raise SandboxInfraError(f"base image build step failed ({' '.join(cmd[:3])} ...):\n" + "\n".join(tail[-15:]))


_CONFIGURE = r"""
set -eu
useradd --create-home --uid {uid} --user-group --shell /bin/bash agent
mkdir -p /workspace && chown {uid}:{uid} /workspace
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/* /usr/share/info/*
find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'en*' -exec rm -rf {{}} +
find / -xdev -name '__pycache__' -type d -prune -exec rm -rf {{}} +
"""


def build_base_image(
    spec: BaseImageSpec | None = None,
    mirror: str | None = None,
    log: Callable[[str], None] = lambda line: None,
    force: bool = False,
) -> str:
    """Debootstrap `spec` into a temp dir and import it as `envgym/base:<hash>`; returns the tag."""
    spec = spec or BaseImageSpec()
    tag = spec.tag()
    if not force and image_exists(tag):
        return tag
    if shutil.which("debootstrap") is None:
        raise SandboxInfraError("debootstrap is not installed: run `apt-get install -y debootstrap`.")
    mirror = mirror or configured_debian_mirror()
    work = Path(tempfile.mkdtemp(prefix="envgym-rootfs-", dir="/var/tmp"))
    rootfs = work / "rootfs"
    try:
        log(f"debootstrap {spec.suite} from {mirror} into {rootfs}")
        _run(
            [
                "debootstrap",
                f"--variant={spec.variant}",
                "--include=" + ",".join(spec.packages),
                spec.suite,
                str(rootfs),
                mirror,
            ],
            log,
        )
        log("configuring rootfs (agent user, /workspace, cleanup)")
        _run(["chroot", str(rootfs), "/bin/sh", "-c", _CONFIGURE.format(uid=spec.agent_uid)], log)
        log(f"docker import -> {tag}")
        changes = [
            "ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "WORKDIR /workspace",
            'CMD ["bash"]',
            f"LABEL envgym.recipe_hash={spec.content_hash()} envgym.spec={json.dumps(spec.model_dump_json())}",
        ]
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
        cmd = ["docker", "import"]
        for change in changes:
            cmd += ["--change", change]
        _run([*cmd, "-", tag], log, stdin=tar.stdout)
        if tar.wait() != 0:
            raise SandboxInfraError("tar of the debootstrapped rootfs failed")
        return tag
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ensure_base_image(log: Callable[[str], None] = lambda line: None) -> str:
    """The base image tag, building it first if this daemon does not have it yet."""
    return build_base_image(log=log)
