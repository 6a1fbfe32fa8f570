"""Ownership of Docker containers: labels, the reaper of dead owners' containers, cleanup at exit.

Why: a crashed or SIGKILLed trainer must not leak containers. Every container carries who made it
(`envgym.run`, `envgym.owner_pid` + its start time and host, `envgym.created`); the reaper removes those
whose owner process is gone, and containers also stop themselves after their maximum lifetime.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from envgym.sandboxes.docker_channel import LABEL_CHANNEL, remove_channel_dir

log = logging.getLogger(__name__)

RUN_ID = uuid.uuid4().hex[:16]
LABEL_RUN = "envgym.run"
LABEL_OWNER_PID = "envgym.owner_pid"
LABEL_OWNER_START = "envgym.owner_start"
LABEL_OWNER_HOST = "envgym.owner_host"
LABEL_CREATED = "envgym.created"
LABEL_LIFETIME = "envgym.lifetime_s"

_started = False
_lock = threading.Lock()


def process_start_time(pid: int) -> str:
    """The kernel's start time of `pid` (clock ticks since boot), to tell a reused pid from its owner."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def owner_labels(lifetime_s: int) -> dict[str, str]:
    return {
        LABEL_RUN: RUN_ID,
        LABEL_OWNER_PID: str(os.getpid()),
        LABEL_OWNER_START: process_start_time(os.getpid()),
        LABEL_OWNER_HOST: socket.gethostname(),
        LABEL_CREATED: str(int(time.time())),
        LABEL_LIFETIME: str(lifetime_s),
    }


def owner_alive(labels: dict[str, str]) -> bool:
    """Whether the process that created a container still runs (unknown hosts count as alive)."""
    if labels.get(LABEL_OWNER_HOST) != socket.gethostname():
        return True
    try:
        pid = int(labels.get(LABEL_OWNER_PID, ""))
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    started = labels.get(LABEL_OWNER_START, "")
    return not started or process_start_time(pid) == started


def _expired(labels: dict[str, str], now: float) -> bool:
    try:
        return now > int(labels[LABEL_CREATED]) + int(labels[LABEL_LIFETIME]) + 60
    except (KeyError, ValueError):
        return False


def _remove(containers: list[Any]) -> int:
    """Force-remove containers (SDK objects or ids); one already gone counts as removed, quietly."""
    import docker.errors

    from envgym.sandboxes.docker_client import docker_client

    api = docker_client().api

    def remove(c: Any) -> int:
        cid = c if isinstance(c, str) else c.id
        try:
            api.remove_container(cid, force=True)
        except docker.errors.NotFound:
            return 0  # gone already (auto-remove, lifetime over, another reaper): nothing to do
        except docker.errors.APIError as exc:
            if "already in progress" in str(exc):
                return 0
            log.warning("could not remove envgym container %s: %s", cid[:12], exc)
            return 0
        return 1

    if not containers:
        return 0
    with ThreadPoolExecutor(max_workers=min(8, len(containers))) as ex:
        return sum(ex.map(remove, containers))


def _remove_with_channels(listed: list[dict[str, Any]]) -> int:
    """Remove listed containers, then the host directories of their FIFO channels (docker_channel.py)."""
    removed = _remove([c["Id"] for c in listed])
    for c in listed:
        channel = (c.get("Labels") or {}).get(LABEL_CHANNEL)
        if channel:
            remove_channel_dir(channel)
    return removed


def _listed(client: Any, label: str) -> list[dict[str, Any]]:
    """Containers carrying `label`, as the engine lists them: one call, no per-container inspect, so a
    container removed meanwhile cannot turn the listing into a 404."""
    return list(client.api.containers(all=True, filters={"label": label}))


def reap(client: Any = None) -> int:
    """Remove envgym containers whose owner process is dead or whose lifetime is over; returns how many."""
    if client is None:
        from envgym.sandboxes.docker_client import docker_client

        client = docker_client()
    now = time.time()
    doomed = [
        c
        for c in _listed(client, LABEL_OWNER_PID)
        if not owner_alive(c.get("Labels") or {}) or _expired(c.get("Labels") or {}, now)
    ]
    removed = _remove_with_channels(doomed)
    if removed:
        log.info("reaper removed %d orphaned envgym container(s)", removed)
    return removed


def remove_run(client: Any = None, run_id: str = RUN_ID, owner_pid: int | None = None) -> int:
    """Remove the containers of this run (only those `owner_pid` created, when given)."""
    if client is None:
        from envgym.sandboxes.docker_client import docker_client

        client = docker_client()
    mine = [
        c
        for c in _listed(client, f"{LABEL_RUN}={run_id}")
        if owner_pid is None or (c.get("Labels") or {}).get(LABEL_OWNER_PID) == str(owner_pid)
    ]
    return _remove_with_channels(mine)


def list_containers(client: Any = None) -> list[Any]:
    if client is None:
        from envgym.sandboxes.docker_client import docker_client

        client = docker_client()
    return list(client.containers.list(all=True, filters={"label": LABEL_RUN}, ignore_removed=True))


def _at_exit(client: Any) -> None:
    """Interpreter exit: remove the containers *this process* created and left open (a safety net: owners
    close their sandboxes and pools). A forked child inherits this hook but owns none of its parent's."""
    try:
        remove_run(client, owner_pid=os.getpid())
    except Exception as exc:
        log.debug("cleanup at exit failed: %s", exc)


def ensure_started(client: Any) -> None:
    """Once per process: reap dead owners' containers (in the background) and clean ours up at exit."""
    global _started
    with _lock:
        if _started:
            return
        _started = True
    atexit.register(_at_exit, client)
    threading.Thread(target=_safe_reap, args=(client,), name="envgym-reaper", daemon=True).start()


def _safe_reap(client: Any) -> None:
    """The background reap: a daemon that stops answering is worth one line; a vanished container is not."""
    try:
        reap(client)
    except Exception as exc:
        if sys.is_finalizing() or "interpreter shutdown" in str(exc):
            # the process is exiting (a CLI error path can beat the reaper): the next process reaps; not the engine's fault
            log.debug("reaper cut short by interpreter exit: %s", exc)
            return
        log.warning("envgym could not reap orphaned containers (is the Docker engine healthy?): %s", exc)
