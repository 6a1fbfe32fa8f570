"""Per-command latency of the sandbox framer, old vs new, side by side in the same run.

    .venv/bin/python benchmarks/sandbox_latency.py [--n 200] [--gap-ms 20] [--old-rev c9acc68] [--backends docker,local]

Why: issue 11 asks for a per-command overhead (`echo hi` round trip) median <= 1 ms on an idle machine. An agent
(an LLM) always thinks between two commands, so two numbers matter: back to back (the next command is sent as
soon as the last answer arrives) and after a think gap (a pause, not timed, before each timed command), where the
pre-forked child of the new framer has already been forked and has applied the saved state. The old framer is the
supervisor.sh of `--old-rev`, run through the same host code (shell.py reads the script at spawn time). Rounds of
the variants are interleaved so that they share the machine's load; the load is printed before and after. The
"floor" row is a bare bash doing only what this architecture cannot skip (a pre-forked child per command, its
exit status from `wait`, its output through a file), driven over pipes with no jail: what the framer costs above it
is ours to cut, the floor is the price of a fresh process per command on this machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from envgym.sandboxes import Sandbox, open_sandbox
from envgym.sandboxes import shell as shell_module

ROOT = Path(__file__).resolve().parent.parent


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


@contextmanager
def framer(script: str) -> Iterator[None]:
    """Sandboxes opened inside this block run `script` as their framer."""
    saved = shell_module.SUPERVISOR_SCRIPT
    shell_module.SUPERVISOR_SCRIPT = script
    try:
        yield
    finally:
        shell_module.SUPERVISOR_SCRIPT = saved


def stats(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"median {statistics.median(xs) * 1e3:7.2f} ms   p90 {xs[int(len(xs) * 0.9)] * 1e3:7.2f} ms"


def one(sb: Sandbox) -> float:
    start = time.perf_counter()
    result = sb.exec("echo hi")
    elapsed = time.perf_counter() - start
    if result.output != "hi\n" or result.exit_code != 0:
        raise SystemExit(f"unexpected answer {result!r}")
    return elapsed


def framer_cpu_s(sb: Sandbox) -> float:
    """CPU seconds the framer and the children it reaped have used so far (utime, stime, cutime, cstime): a
    number the machine's load does not inflate, unlike wall-clock latency on a shared machine."""
    fields = sb.exec("cat /proc/$$/stat").output.rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


# The floor of this architecture, without the sandbox: a bash that hands each command to a child pre-forked for it
# (through a pipe it then closes), waits for the child's exit status and prints the child's output file back. No
# jail, no state, no /proc checks, no classifier: what is left of a round trip is the fork, the child's exit and
# three wake-ups.
FLOOR = r"""
out=$1
exec {p}> >(IFS= read -r -N 2147483647 c; exec > "$out" 2>&1; eval "$c"); pid=$!
while IFS= read -r -N 7 cmd; do
  printf '%s' "$cmd" >&$p; exec {p}>&-
  wait $pid; rc=$?
  IFS= read -r -d '' buf < "$out"
  printf '%s%d\n' "$buf" $rc
  exec {p}> >(IFS= read -r -N 2147483647 c; exec > "$out" 2>&1; eval "$c"); pid=$!
done
"""


def floor(n: int, gap_s: float) -> tuple[list[float], float]:
    """Round trips of `echo hi` through FLOOR (after `gap_s` each) and its CPU seconds per command."""
    out = f"/dev/shm/envgym-floor-{os.getpid()}"
    proc = subprocess.Popen(["bash", "-c", FLOOR, "floor", out], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    times = []
    try:
        for i in range(n + 20):
            time.sleep(gap_s)
            start = time.perf_counter()
            proc.stdin.write(b"echo hi")
            proc.stdin.flush()
            line = proc.stdout.readline()
            if i >= 20:
                times.append(time.perf_counter() - start)
            if line != b"hi\n":
                raise SystemExit(f"floor: unexpected answer {line!r}")
            proc.stdout.readline()  # the exit status line
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK") / (n + 20)
    finally:
        proc.stdin.close()
        proc.wait()
        Path(out).unlink(missing_ok=True)
    return times, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="timed commands per variant and mode")
    parser.add_argument("--gap-ms", type=float, default=20.0, help="untimed think gap before each gapped command")
    parser.add_argument("--old-rev", default="c9acc68", help="git revision of the baseline supervisor.sh")
    parser.add_argument("--backends", default="docker,local")
    args = parser.parse_args()
    old = subprocess.run(
        ["git", "show", f"{args.old_rev}:sandboxes/supervisor.sh"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    new = shell_module.SUPERVISOR_SCRIPT
    print(f"framers: old = {args.old_rev}:sandboxes/supervisor.sh, new = working tree; {load()}")
    with ExitStack() as stack:
        boxes: dict[str, Sandbox] = {}
        for backend in args.backends.split(","):
            for name, script in (("old", old), ("new", new)):
                # A trailing comment names the variant: the framer's argv (world-readable) says which one runs.
                with framer(f"{script}\n# envgym benchmark framer: {name}\n"):
                    sb = stack.enter_context(open_sandbox(backend))
                    probe = sb.exec("tr '\\0' '\\n' < /proc/$$/cmdline | sed -n 's/^# envgym benchmark framer: //p'")
                    if probe.output.strip() != name:
                        raise SystemExit(f"{backend}: expected the {name} framer, found {probe.output.strip()!r}")
                boxes[f"{backend:6s} {name}"] = sb
        for sb in boxes.values():  # warm up
            for _ in range(20):
                one(sb)
        cpu_before = {key: framer_cpu_s(sb) for key, sb in boxes.items()}
        back: dict[str, list[float]] = {k: [] for k in boxes}
        gapped: dict[str, list[float]] = {k: [] for k in boxes}
        rounds, chunk = max(1, args.n // 10), 10
        for _ in range(rounds):
            for key, sb in boxes.items():
                back[key] += [one(sb) for _ in range(chunk)]
            for key, sb in boxes.items():
                for _ in range(chunk):
                    time.sleep(args.gap_ms / 1e3)
                    gapped[key].append(one(sb))
        cpu = {key: (framer_cpu_s(sb) - cpu_before[key]) / (2 * rounds * chunk + 1) for key, sb in boxes.items()}
        floor_back, floor_cpu = floor(rounds * chunk, 0.0)
        floor_gap, _ = floor(rounds * chunk, args.gap_ms / 1e3)
        back["floor (bare bash)"] = floor_back
        gapped["floor (bare bash)"] = floor_gap
        cpu["floor (bare bash)"] = floor_cpu
        print(f"\n`echo hi` round trip, {rounds * chunk} each, interleaved; after: {load()}")
        print("\n== CPU per command: the framer and its children (clock ticks over the whole run) ==")
        for key, seconds in cpu.items():
            print(f"{key:<11}  {seconds * 1e3:7.2f} ms")
        for mode, data in (("back to back", back), (f"after a {args.gap_ms:.0f} ms think gap", gapped)):
            print(f"\n== {mode} ==")
            for key, xs in data.items():
                print(f"{key:<11}  {stats(xs)}")
            for backend in args.backends.split(","):
                o, n = (statistics.median(data[f"{backend:6s} {v}"]) for v in ("old", "new"))
                print(f"{backend:6s} new/old median ratio {n / o:.2f}")


if __name__ == "__main__":
    main()
