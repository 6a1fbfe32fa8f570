"""Where SWE-v0 gets its sandboxes: the sandboxes package's Docker backend and pool.

Why a seam: synthesis, the env and the grader all ask for "a sandbox on image X" in one place, so the limits
and labels are uniform. `_SDKSandbox` below is a clearly marked, minimal stop-gap that talks to the docker SDK
directly; it is used only when `envgym.sandboxes` has no Docker backend yet.
"""

from __future__ import annotations

import base64
import io
import shlex
import tarfile
import time
import uuid
from types import TracebackType
from typing import Any

from envgym.sandboxes import ExecResult, Sandbox, SandboxInfraError, SandboxLimits

SWE_LIMITS = SandboxLimits(memory_mb=2048, cpus=1.0, pids=256, default_timeout_s=120.0, max_output_bytes=32_768)


def open_sandbox(image: str, workdir: str, limits: SandboxLimits = SWE_LIMITS) -> Sandbox:
    """A fresh sandbox on `image` (no network, non-root, capped); raises SandboxInfraError if it cannot start."""
    try:
        from envgym.sandboxes.docker import DockerSandbox  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return _SDKSandbox(image, workdir, limits)
    return DockerSandbox(image=image, limits=limits, workspace=workdir)  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------------------
# STOP-GAP: direct docker SDK use until envgym.sandboxes.docker lands. One `docker exec` per command (~80 ms);
# timeouts via `timeout -s KILL` inside the container. Delete once DockerSandbox exists.
class _SDKSandbox:
    def __init__(self, image: str, workdir: str, limits: SandboxLimits) -> None:
        import docker

        self.limits = limits
        self.workspace = workdir
        try:
            self._client = docker.from_env(timeout=120)
            self._container: Any = self._client.containers.run(
                image,
                ["sleep", "infinity"],
                detach=True,
                init=True,
                network_disabled=not limits.network,
                user="1000:1000",
                working_dir=workdir,
                mem_limit=f"{limits.memory_mb}m",
                memswap_limit=f"{limits.memory_mb}m",
                pids_limit=limits.pids,
                nano_cpus=int(limits.cpus * 1e9),
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                labels={"envgym.run": uuid.uuid4().hex, "envgym.owner": "swe-stopgap"},
                auto_remove=False,
            )
        except Exception as exc:
            raise SandboxInfraError(f"could not start a container on {image}: {exc}") from exc

    def exec(self, command: str, timeout: float | None = None) -> ExecResult:
        timeout = timeout or self.limits.default_timeout_s
        cap = self.limits.max_output_bytes
        wrapped = (
            f"out=$(mktemp); timeout -s KILL {int(timeout)} bash -c {shlex.quote(command)} >$out 2>&1; rc=$?; "
            f"size=$(stat -c %s $out); if [ $size -gt {cap} ]; then head -c {cap // 2} $out; "
            f'printf "\\n[... output truncated ...]\\n"; tail -c {cap // 2} $out; else cat $out; fi; rm -f $out; exit $rc'
        )
        start = time.perf_counter()
        try:
            rc, out = self._container.exec_run(["bash", "-c", wrapped], workdir=self.workspace, demux=False)
        except Exception as exc:
            raise SandboxInfraError(f"exec failed: {exc}") from exc
        text = (out or b"").decode("utf-8", errors="replace")
        return ExecResult(
            exit_code=int(rc),
            output=text,
            truncated="[... output truncated ...]" in text,
            timed_out=int(rc) == 137,
            duration_s=time.perf_counter() - start,
        )

    def read_file(self, path: str) -> bytes:
        rc, out = self._container.exec_run(["bash", "-c", f"base64 -w0 {shlex.quote(path)}"], workdir=self.workspace)
        if rc != 0:
            raise FileNotFoundError(path)
        return base64.b64decode(out)

    def write_file(self, path: str, data: bytes) -> None:
        full = path if path.startswith("/") else f"{self.workspace}/{path}"
        directory, _, name = full.rpartition("/")
        self._container.exec_run(["mkdir", "-p", directory or "/"])
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(name)
            info.size, info.uid, info.gid, info.mode = len(data), 1000, 1000, 0o644
            tar.addfile(info, io.BytesIO(data))
        if not self._container.put_archive(directory or "/", buf.getvalue()):
            raise SandboxInfraError(f"could not write {full}")

    def reset(self) -> None:
        raise SandboxInfraError("the stop-gap sandbox cannot reset; open a fresh one")

    def close(self) -> None:
        try:
            self._container.remove(force=True)
        except Exception:
            pass

    def __enter__(self) -> _SDKSandbox:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
