"""Sandbox benchmark: every number against a baseline measured in the same run, printed as ratios.

    .venv/bin/python benchmarks/sandbox.py [--n 200] [--image TAG]

Measures (Docker): per-command round trip of the persistent shell vs one `docker exec` per command on the
same container (CLI and SDK); reset(); cold start vs pool checkout; 16-way concurrency throughput.
Also the LocalSandbox round trip. Medians and p90s; machines differ, the ratios are the point.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def ms(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"median {statistics.median(xs) * 1e3:8.2f} ms   p90 {xs[int(len(xs) * 0.9)] * 1e3:8.2f} ms"


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def make_repo(root: Path, files: int = 2000) -> None:
    for i in range(files):
        d = root / f"pkg{i // 100}"
        d.mkdir(exist_ok=True)
        (d / f"mod{i}.py").write_text(f"VALUE_{i} = {i}\n" * 20)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--image", default="")
    args = parser.parse_args()

    from envgym.sandboxes import open_sandbox
    from envgym.sandboxes.images import ensure_base_image
    from envgym.sandboxes.pool import SandboxPool

    def docker_box(image: str, **options: object) -> Any:
        return open_sandbox("docker", image=image, **options)

    image = args.image or ensure_base_image()
    n = args.n
    print(f"image {image}, n={n}")

    with docker_box(image) as sb:
        cid = sb.container.id
        for _ in range(20):
            sb.exec("echo warm")
        shell_echo = timed(lambda: sb.exec("echo hi"), n)
        shell_true = timed(lambda: sb.exec("/bin/true"), n)
        cli = timed(
            lambda: subprocess.run(["docker", "exec", cid, "bash", "-c", "echo hi"], capture_output=True, check=True),
            max(20, n // 5),
        )
        sdk = timed(lambda: sb.container.exec_run(["bash", "-c", "echo hi"]), max(20, n // 5))
        print("\n== per-command round trip (same container) ==")
        print(f"persistent shell, `echo hi`     {ms(shell_echo)}")
        print(f"persistent shell, `/bin/true`   {ms(shell_true)}")
        print(f"docker exec CLI, bash -c echo   {ms(cli)}")
        print(f"docker SDK exec_run, bash -c    {ms(sdk)}")
        print(
            f"ratio docker exec CLI / shell:  {med(cli) / med(shell_echo):6.0f}x   (SDK: "
            f"{med(sdk) / med(shell_echo):.0f}x; fork+exec command: {med(cli) / med(shell_true):.0f}x)"
        )

    with TemporaryDirectory() as tmp:
        repo = Path(tmp)
        make_repo(repo)
        with docker_box(image, source=repo) as sb:
            dirty = (
                "echo x >> pkg1/mod150.py; rm pkg2/mod250.py; mkdir -p junk; head -c 5000000 /dev/urandom > junk/blob"
            )
            resets = []
            for _ in range(max(10, n // 10)):
                sb.exec(dirty)
                start = time.perf_counter()
                sb.reset()
                resets.append(time.perf_counter() - start)
        print("\n== reset() of a 2,000-file workspace with 5 MB of junk ==")
        print(f"reset() (kill all + rsync from pristine)  {ms(resets)}")

    colds = []
    for _ in range(5):
        start = time.perf_counter()
        sb = docker_box(image)
        colds.append(time.perf_counter() - start)
        sb.close()
    with SandboxPool.for_image(image, size=4, max_concurrent_starts=4) as pool:
        pool.wait_ready()
        checkouts = []
        for _ in range(30):
            start = time.perf_counter()
            box = pool.checkout()
            checkouts.append(time.perf_counter() - start)
            pool.checkin(box)
            while pool.idle < 4:
                time.sleep(0.005)
    print("\n== getting a sandbox ==")
    print(f"cold start (create + start + shell)  {ms(colds)}")
    print(f"pool checkout (warm)                 {ms(checkouts)}")
    print(f"ratio cold / checkout:               {med(colds) / med(checkouts):8.0f}x")

    print("\n== 16-way concurrency (16 sandboxes, 50 commands each) ==")
    with ThreadPoolExecutor(16) as ex:
        start = time.perf_counter()
        boxes = list(ex.map(lambda _: docker_box(image), range(16)))
        start_wall = time.perf_counter() - start
        try:
            start = time.perf_counter()
            list(ex.map(lambda b: [b.exec("echo hi") for _ in range(50)], boxes))
            wall = time.perf_counter() - start
            serial_box = boxes[0]
            start = time.perf_counter()
            for _ in range(16 * 50):
                serial_box.exec("echo hi")
            serial = time.perf_counter() - start
        finally:
            list(ex.map(lambda b: b.close(), boxes))
    print(f"16 parallel starts: {start_wall:.2f} s wall")
    print(
        f"800 commands over 16 sandboxes: {wall:.3f} s ({800 / wall:,.0f} cmd/s); one sandbox serially: "
        f"{serial:.3f} s ({800 / serial:,.0f} cmd/s); ratio {serial / wall:.2f}x (2 cores)"
    )
    cli_total = med(cli) * 800
    print(f"same 800 via docker exec (serial estimate): {cli_total:.1f} s; ratio {cli_total / wall:.0f}x")

    with open_sandbox("local") as lb:
        for _ in range(20):
            lb.exec("echo warm")
        local = timed(lambda: lb.exec("echo hi"), n)
        lreset = timed(lb.reset, 20)
    print("\n== local bubblewrap jail ==")
    print(f"round trip `echo hi`  {ms(local)}")
    print(f"reset() (empty ws)    {ms(lreset)}")


if __name__ == "__main__":
    main()
