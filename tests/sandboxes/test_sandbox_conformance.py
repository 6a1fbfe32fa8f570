"""One conformance suite, run against every backend (local and Docker): the Sandbox contract."""

from __future__ import annotations

import os
import resource
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from envgym.sandboxes import ExecResult, Sandbox
from envgym.sandboxes.shell import FRAMER_FILES

# Counts live processes whose command line contains a marker, without needing ps in the image.
COUNT_PROCS = (
    "n=0; for p in /proc/[0-9]*; do c=$(tr '\\0' ' ' < $p/cmdline 2>/dev/null); "
    'case "$c" in *"{marker}"*) n=$((n+1));; esac; done; echo "count=$n"'
)


def count_procs(sb: Sandbox, marker: str) -> int:
    # Commands run inside the supervisor shell, whose command line is its script: no self-match.
    out = sb.exec(COUNT_PROCS.format(marker=marker)).output
    return int(out.strip().rsplit("count=", 1)[1])


def test_protocol_and_info(make_sandbox):
    sb = make_sandbox()
    assert isinstance(sb, Sandbox)
    info = sb.info()
    assert info.limits == sb.limits
    assert info.backend in ("local", "docker")


def test_echo_exit_codes_and_stderr(make_sandbox):
    sb = make_sandbox()
    r = sb.exec("echo hello")
    assert (r.exit_code, r.output, r.truncated, r.timed_out) == (0, "hello\n", False, False)
    assert r.duration_s >= 0
    r = sb.exec("echo oops >&2; (exit 7)")
    assert r.exit_code == 7 and "oops" in r.output
    assert sb.exec("false").exit_code == 1
    assert sb.exec("no-such-command-xyz").exit_code == 127
    r = sb.exec("printf 'no newline'")
    assert r.output == "no newline"
    r = sb.exec("echo 'unicode: héllo ✓'")
    assert r.output == "unicode: héllo ✓\n"


def test_stdin_is_closed(make_sandbox):
    sb = make_sandbox()
    r = sb.exec("cat; echo rc=$?", timeout=10)
    assert r.output == "rc=0\n" and not r.timed_out
    assert sb.exec("read x; echo rc=$?").output == "rc=1\n"


def test_cd_and_export_persist(make_sandbox):
    sb = make_sandbox()
    home = sb.exec("pwd").output.strip()
    assert sb.exec("mkdir -p sub/dir && cd sub/dir && export FOO='a b' && BAR=1").exit_code == 0
    r = sb.exec('pwd; echo "$FOO"; echo "$BAR"')
    assert r.output == f"{home}/sub/dir\na b\n1\n"
    sb.exec("unset FOO; cd ..")
    assert sb.exec('pwd; echo "[${FOO-unset}]"').output == f"{home}/sub\n[unset]\n"
    r = sb.exec("f() { echo func; }; f")
    assert r.output == "func\n"
    # Only cwd and scalar variables persist: functions are code, and the next command starts without them.
    assert sb.exec("f").exit_code == 127


@pytest.mark.parametrize(
    "command, code",
    [("exit 3", 3), ("set -e; false; echo not-here", 1), ("exec bash", None), ("kill -9 $$", None)],
)
def test_commands_that_end_the_shell_get_a_clear_result(make_sandbox, command, code):
    sb = make_sandbox()
    sb.exec("cd /tmp && export KEEP=yes")
    r = sb.exec(command, timeout=20)
    assert not r.timed_out
    assert "not-here" not in r.output
    if code is not None:
        assert r.exit_code == code
    # The sandbox is usable, and state from before the command survived the respawn.
    after = sb.exec('echo "$KEEP"; pwd')
    assert after.exit_code == 0
    if "[envgym:" in r.output:
        assert after.output == "yes\n/tmp\n"


def test_timeout_returns_promptly_and_sandbox_stays_usable(make_sandbox):
    sb = make_sandbox()
    start = time.monotonic()
    r = sb.exec("echo started; sleep 1000", timeout=2)
    elapsed = time.monotonic() - start
    assert r.timed_out and r.exit_code == 124
    assert elapsed < 4, elapsed
    assert "started" in r.output
    assert count_procs(sb, "sleep 1000") == 0
    assert sb.exec("echo alive").output == "alive\n"


def test_timeout_kills_setsid_and_daemonized_children(make_sandbox):
    sb = make_sandbox()
    r = sb.exec(
        "setsid sleep 4242 & (setsid sleep 4343 &) ; nohup sleep 4444 >/dev/null 2>&1 & sleep 1000", timeout=1.5
    )
    assert r.timed_out
    for marker in ("sleep 4242", "sleep 4343", "sleep 4444", "sleep 1000"):
        assert count_procs(sb, marker) == 0, marker


def test_timeout_of_a_loop_inside_the_shell(make_sandbox):
    sb = make_sandbox()
    sb.exec("export BEFORE=1")
    r = sb.exec("while :; do :; done", timeout=1)
    assert r.timed_out
    assert sb.exec('echo "$BEFORE"').output == "1\n"


def test_fork_bomb_is_contained(make_sandbox):
    sb = make_sandbox(pids=64)
    r = sb.exec("bomb() { bomb | bomb & }; bomb; sleep 600", timeout=4)
    assert r.timed_out
    assert sb.exec("echo survived").output == "survived\n"
    assert count_procs(sb, "sleep 600") == 0


@pytest.mark.slow
def test_memory_hog_is_killed_not_the_host(make_sandbox):
    sb = make_sandbox(memory_mb=128)
    r = sb.exec("python3 -c 'x = bytearray(1024 * 1024 * 1024); print(len(x))'", timeout=60)
    assert r.exit_code != 0 and "1073741824" not in r.output
    assert sb.exec("echo ok").output == "ok\n"


def test_output_is_capped_and_host_memory_bounded(make_sandbox):
    sb = make_sandbox(max_output_bytes=10_000)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = sb.exec("yes abcdefghi | head -c 200000000; echo; echo THE-END", timeout=120)
    rss_growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert r.exit_code == 0 and r.truncated
    assert len(r.output) < 10_000 + 500
    assert r.output.startswith("abcdefghi\nabcdefghi\n")
    assert r.output.rstrip().endswith("THE-END")
    assert "output truncated: 200000009 bytes" in r.output
    assert rss_growth_mb < 50, rss_growth_mb
    assert sb.exec("echo small").output == "small\n"


def _host_ip() -> str:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))
        return str(probe.getsockname()[0])
    finally:
        probe.close()


def test_network_is_unreachable(make_sandbox):
    server = socket.socket()
    server.bind(("0.0.0.0", 0))
    server.listen(8)
    ip, port = _host_ip(), server.getsockname()[1]
    accepted: list[object] = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    try:
        # Positive control: the server is reachable from the host itself.
        socket.create_connection((ip, port), timeout=5).close()
        time.sleep(0.1)
        assert accepted
        accepted.clear()
        sb = make_sandbox()
        r = sb.exec(f"exec 3<>/dev/tcp/{ip}/{port} && echo CONNECTED", timeout=15)
        assert "CONNECTED" not in r.output and r.exit_code != 0
        assert not accepted
        interfaces = sb.exec("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '").output.split()
        assert interfaces == ["lo"]
    finally:
        server.close()


def test_write_file_read_file_roundtrip_binary(make_sandbox):
    sb = make_sandbox()
    payload = bytes(range(256)) * 64 + os.urandom(4096) + b"\x00\r\n\xff"
    sb.write_file("deep/new/dir/blob.bin", payload)
    assert sb.read_file("deep/new/dir/blob.bin") == payload
    assert sb.exec("wc -c < deep/new/dir/blob.bin").output.strip() == str(len(payload))
    sb.write_file("text.txt", "héllo\n".encode())
    assert sb.exec("cat text.txt").output == "héllo\n"
    assert sb.exec("echo appended >> text.txt").exit_code == 0  # the agent may modify env-written files
    sb.exec("printf 'made\\0by shell' > shell.bin")
    assert sb.read_file("shell.bin") == b"made\x00by shell"
    with pytest.raises(FileNotFoundError):
        sb.read_file("missing.txt")


def test_reset_restores_pristine_state(make_sandbox, tmp_path: Path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("VALUE = 1\n")
    (tmp_path / "README").write_text("readme\n")
    sb = make_sandbox(source=tmp_path)
    listing = "find . | sort; cat pkg/mod.py README"
    pristine = sb.exec(listing).output
    assert "./pkg/mod.py" in pristine and "VALUE = 1" in pristine
    sb.exec("echo 'VALUE = 2' > pkg/mod.py; rm README; mkdir junk; touch junk/x .hidden; chmod 000 junk")
    # Output redirected: processes still holding a command's output are killed when it ends.
    sb.exec("cd pkg && export DIRTY=1; sleep 777 >/dev/null 2>&1 & setsid sleep 778 >/dev/null 2>&1 &")
    assert sb.exec(listing).output != pristine
    assert count_procs(sb, "sleep 77") == 2  # positive control for the check below
    sb.reset()
    assert sb.exec(listing).output == pristine
    assert sb.exec('echo "[${DIRTY-}]"; pwd').output == f"[]\n{sb.workspace}\n"
    assert count_procs(sb, "sleep 77") == 0
    sb.reset()  # idempotent
    assert sb.exec(listing).output == pristine


def test_reset_leaves_nothing_in_the_framers_directory(make_sandbox):
    """The framer's output/state directory is not the agent's: it writes the framer's files (its commands do) but
    can stash nothing there, swap nothing, and whatever it does to those files' contents and modes, the next
    episode finds them empty and working. (More swaps: test_framer_files.py.)"""
    sb = make_sandbox()
    where = sb.exec("readlink /proc/self/fd/1").output.strip()
    home = where.rsplit("/", 1)[0]
    assert where.endswith("/out") and sb.exec(f"ls -A {home}").exit_code == 0
    for stash in ("echo secret > stash", "mkdir sub", "ln -s /etc/hostname link", "rm -f end", "chmod 000 ."):
        assert sb.exec(f"cd {home} && {stash}").exit_code != 0, stash
    sb.exec(f"cd {home} && echo secret > start && echo secret > names && chmod 000 start names end")
    sb.reset()
    # Plain programs only: a command that may change the shell's state would itself refill `start`.
    r = sb.exec(f"ls -A {home}; find {home} -mindepth 1 ! -name out ! -empty; find {home} -mindepth 1 ! -perm 600")
    assert r.exit_code == 0, r.output
    assert sorted(r.output.split()) == sorted(FRAMER_FILES), r.output  # every one empty, and the agent's to write
    assert sb.exec("echo ok; x=1; cd /tmp").output == "ok\n"  # a command that saves state works
    assert sb.exec('echo "$x $PWD"').output == "1 /tmp\n"


@pytest.mark.slow
def test_sixteen_sandboxes_concurrently(make_sandbox):
    with ThreadPoolExecutor(max_workers=16) as pool:
        boxes = list(pool.map(lambda _: make_sandbox(), range(16)))

        def work(i: int) -> list[ExecResult]:
            sb = boxes[i]
            return [sb.exec(f"echo box-{i}-{j}; export N={i}") for j in range(20)] + [sb.exec("echo $N")]

        results = list(pool.map(work, range(16)))
    for i, rs in enumerate(results):
        assert [r.output for r in rs[:-1]] == [f"box-{i}-{j}\n" for j in range(20)]
        assert rs[-1].output == f"{i}\n"


def test_closed_sandbox_raises_infra_error(make_sandbox):
    from envgym.sandboxes import SandboxInfraError

    sb = make_sandbox()
    sb.close()
    with pytest.raises(SandboxInfraError):
        sb.exec("echo hi")
    sb.close()  # idempotent


def test_commands_start_with_default_signal_dispositions(make_sandbox):
    """The framer ignores signals for itself; what the agent runs must not inherit that (an ignored SIGINT survives
    exec: `timeout -s INT`, Ctrl-C and KeyboardInterrupt tests would silently stop working)."""
    sb = make_sandbox()
    out = sb.exec("grep SigIgn /proc/self/status; python3 -c 'import signal; print(signal.getsignal(signal.SIGINT))'")
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == ["SigIgn:\t0000000000000000", "<built-in function default_int_handler>"]
    timed = sb.exec("timeout -s INT 1 sleep 30; echo $?")
    assert timed.output == "124\n", timed.output


def test_a_process_holding_over_a_thousand_descriptors_still_drives_its_sandboxes(make_sandbox):
    """A trainer with a few hundred sandboxes holds fds past 1023, which select() cannot watch (poll can)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the hard limit on open files is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = []
    try:
        while len(held) < 1100 and (not held or held[-1] < 1100):
            held.append(os.open(os.devnull, os.O_RDONLY))
        sb = make_sandbox()  # its channel's descriptors are numbered past 1100
        assert sb.exec("echo far").output == "far\n"
        assert sb.exec("sleep 5", timeout=1).timed_out
        sb.reset()
        assert sb.exec("echo again").output == "again\n"
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
