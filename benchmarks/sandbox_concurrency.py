"""Concurrency of Docker sandboxes: throughput and per-command p50/p99 at 1/4/8/16 sandboxes, against `docker exec`
on the same containers in the same run, with where the CPU went (host Python, the Docker engine, the containers).

    .venv/bin/python benchmarks/sandbox_concurrency.py [--per-box 200] [--levels 1,4,8,16] [--exec-per-box 10]
        [--think-rate 1000]

One thread per sandbox, each running `echo hi` back to back. Back to back, N sandboxes are a closed loop: N
commands are always in flight, so (Little's law) the mean latency is N / throughput, whatever the framer does;
1,000 commands/s at N=16 means 16 ms on average. Agents think between commands, so a second table runs the same
sandboxes as agents that do: each box sends at the times of a Poisson process of rate `--think-rate` / N (so all of
them together offer `--think-rate` commands/s), never before its previous answer came back (an agent waits for
it); latency is timed from each send. CPU per command is read from the kernel: this
process (getrusage), dockerd + containerd + the shims (/proc/PID/stat; shared: other users of the
same engine count too, so compare it with the idle baseline printed first), and the containers' cgroups
(cpuacct.usage, cgroup v1 with the cgroupfs driver; absent elsewhere). Load is printed: on a shared 2-core VM
the absolute numbers move with it, the split and the ratios less so.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")
ENGINE_NAMES = ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2", "docker-proxy")


def engine_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                name = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if name in ENGINE_NAMES:
                pids.append(int(entry.name))
    return pids


def proc_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds of each live pid (user + system, its waited children included)."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / TICK
    return out


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """Summed over the pids alive at both ends (one that exited meanwhile would read as negative)."""
    return sum(after[pid] - before[pid] for pid in before if pid in after)


def container_cpu(ids: list[str]) -> float | None:
    total = 0.0
    for cid in ids:
        path = Path(f"/sys/fs/cgroup/cpu,cpuacct/docker/{cid}/cpuacct.usage")
        if not path.exists():
            path = Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage")
        if not path.exists():
            return None
        total += int(path.read_text()) / 1e9
    return total


def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    rc = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime + rc.ru_utime + rc.ru_stime


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))]


def run_level(boxes: list[Any], per_box: int, command: Callable[[Any], None], gap_s: float = 0.0) -> dict[str, float]:
    """Every box runs `per_box` commands in its own thread, all released together. With `gap_s`, it sends at the
    times of a Poisson process of that mean gap (its own seeded generator: runs are comparable), or when its
    previous command returned if that was later, for `per_box` mean gaps of time (a fixed count would end on the
    slowest box's schedule and understate the rate)."""
    lat: list[list[float]] = [[] for _ in boxes]
    gate = threading.Barrier(len(boxes) + 1)

    def work(i: int) -> None:
        box, mine = boxes[i], lat[i]
        arrivals = random.Random(i)
        gate.wait()
        due = time.perf_counter()
        end = due + per_box * gap_s
        for _ in range(per_box * 4 if gap_s else per_box):
            if gap_s:
                due += arrivals.expovariate(1 / gap_s)
                if due > end:
                    break
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            start = time.perf_counter()
            command(box)
            mine.append(time.perf_counter() - start)

    ids = [b.container.id for b in boxes]
    epids = engine_pids()
    with ThreadPoolExecutor(len(boxes)) as ex:
        futures = [ex.submit(work, i) for i in range(len(boxes))]
        c0, e0, k0 = self_cpu(), proc_cpu(epids), container_cpu(ids)
        gate.wait()
        start = time.perf_counter()
        for f in futures:
            f.result()
        wall = time.perf_counter() - start
        c1, e1, k1 = self_cpu(), proc_cpu(epids), container_cpu(ids)
    flat = [x for xs in lat for x in xs]
    n = len(flat)
    out = {
        "n": n,
        "wall": wall,
        "rate": n / wall,
        "p50": statistics.median(flat) * 1e3,
        "p99": pct(flat, 0.99) * 1e3,
        "host_ms": (c1 - c0) / n * 1e3,
        "engine_ms": cpu_delta(e0, e1) / n * 1e3,
        "box_ms": float("nan") if k0 is None or k1 is None else (k1 - k0) / n * 1e3,
    }
    return out


def row(label: str, r: dict[str, float]) -> str:
    return (
        f"{label:<26} {r['n']:6.0f} {r['rate']:9.0f} {r['p50']:8.2f} {r['p99']:8.2f} "
        f"{r['host_ms']:8.2f} {r['engine_ms']:8.2f} {r['box_ms']:8.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-box", type=int, default=200)
    parser.add_argument("--exec-per-box", type=int, default=10)
    parser.add_argument("--levels", default="1,4,8,16")
    parser.add_argument("--image", default="")
    parser.add_argument("--think-rate", type=float, default=1000.0, help="commands/s all thinking agents offer")
    args = parser.parse_args()

    from envgym.sandboxes.docker import DockerSandbox
    from envgym.sandboxes.images import ensure_base_image

    image = args.image or ensure_base_image()
    levels = [int(x) for x in args.levels.split(",")]
    print(f"image {image}; load average at start {os.getloadavg()}; {os.cpu_count()} CPUs")
    with ThreadPoolExecutor(8) as ex:
        boxes = list(ex.map(lambda _: DockerSandbox(image), range(max(levels))))
    try:
        for b in boxes:
            for _ in range(10):
                b.exec("echo warm")

        def shell(box: Any) -> None:
            box.exec("echo hi")

        def docker_exec(box: Any) -> None:
            subprocess.run(["docker", "exec", box.container.id, "echo", "hi"], capture_output=True, check=True)

        epids = engine_pids()
        e0 = proc_cpu(epids)
        time.sleep(5)
        idle = cpu_delta(e0, proc_cpu(epids)) / 5
        print(f"engine CPU with no command of ours running: {idle * 1e3:.0f} ms per second (others' containers)")
        print(
            f"\n{'`echo hi`, N sandboxes':<26} {'cmds':>6} {'cmd/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'host':>8} {'engine':>8} {'boxes':>8}   (CPU ms per command)"
        )
        for level in levels:
            part = boxes[:level]
            r = run_level(part, args.per_box, shell)
            d = run_level(part, args.exec_per_box, docker_exec)
            for res in (r, d):  # the engine's CPU net of what others used meanwhile (the idle rate)
                res["engine_ms"] -= idle * res["wall"] / res["n"] * 1e3
            print(row(f"persistent shell, N={level}", r))
            print(row(f"docker exec CLI, N={level}", d))
            print(
                f"{'':<26} ratio throughput shell / docker exec: {r['rate'] / d['rate']:.0f}x; load {os.getloadavg()[0]:.2f}"
            )
        print(
            f"\n{'agents that think, N':<26} {'cmds':>6} {'cmd/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'host':>8} {'engine':>8} {'boxes':>8}   (offered: {args.think_rate:,.0f} commands/s in all)"
        )
        for level in levels:
            gap_s = level / args.think_rate
            r = run_level(boxes[:level], args.per_box, shell, gap_s)
            r["engine_ms"] -= idle * r["wall"] / r["n"] * 1e3
            print(
                row(f"persistent shell, N={level}", r)
                + f"   mean gap {gap_s * 1e3:.0f} ms; load {os.getloadavg()[0]:.2f}"
            )
    finally:
        with ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda b: b.close(), boxes))


if __name__ == "__main__":
    main()
