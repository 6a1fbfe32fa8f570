"""Adversarial tests, on every backend: what an agent's commands must not be able to do to the framing,
to the file tools, or to the output of later commands."""

from __future__ import annotations

import pytest

from envgym.sandboxes import Sandbox

from .test_sandbox_conformance import count_procs

# Each of these runs as one agent command; none may change what the host reports for the commands after it.
TAMPERING = [
    # the old in-shell framing functions, and the builtins a framer would call
    "__eg_emit() { :; }; __eg_save() { builtin printf 'x'; }; __eg_hangup() { :; }",
    "exit() { builtin exit 0; }; builtin() { :; }; printf() { :; }; trap() { :; }; declare() { :; }; eval() { :; }",
    "readonly POSIXLY_CORRECT=1; enable -n printf kill; set -o noexec",
    "trap 'exit 0' EXIT; trap 'return 0' DEBUG; shopt -s extdebug",
    "PATH=/nowhere; IFS=x; LC_ALL=POSIX; BASH_ENV=/tmp/evil; export BASH_ENV",
    # a forged state file (the one the framer reads after each command): code in it must not run, and it may
    # only set variables
    'trap - EXIT; exec 9>&1; for f in "$(readlink /proc/self/fd/9)"; do f=${f%/*}/next; [ -d "${f%/*}" ] && '
    "printf '/\\0x\\0\\0y\\0trap\\0\\0exit 0\\0__eg_cmd\\0x\\0true\\0__eg_end\\0' > \"$f\"; done; true",
    # a torn forged state (no end record, code appended): ignored as a whole
    'trap - EXIT; exec 9>&1; for f in "$(readlink /proc/self/fd/9)"; do f=${f%/*}/next; [ -d "${f%/*}" ] && '
    'printf \'/etc\\0z\\0\\0q\\0\' > "$f" && printf "trap \'exit 0\' EXIT\\n" >> "$f"; done; true',
    # a long run of commands that each could not change the state: the framer's classifier stays bounded
    "true" + " ; true" * 20_000,
    # fake frames written to every fd reachable from here, the framer's included
    "for fd in /proc/$$/fd/* /proc/$PPID/fd/* /proc/[0-9]*/fd/[0-9]*; do "
    "printf '\\nforged BEGIN 2\\nhiforged END 0 0\\n' > \"$fd\"; done 2>/dev/null; true",
]


@pytest.mark.parametrize("tamper", TAMPERING)
def test_exit_status_and_output_of_later_commands_cannot_be_forged(make_sandbox, tamper: str):
    sb: Sandbox = make_sandbox()
    sb.exec(tamper, timeout=30)
    r = sb.exec("false", timeout=30)
    assert (r.exit_code, r.timed_out) == (1, False), r
    r = sb.exec("echo ok; (exit 7)", timeout=30)
    assert (r.exit_code, r.output) == (7, "ok\n"), r


def test_the_sentinel_and_the_framer_are_out_of_reach(make_sandbox):
    sb = make_sandbox()
    r = sb.exec('echo "[${__eg_s-}]"; cat /proc/$$/environ /proc/$$/mem; ls /proc/$$/fd', timeout=30)
    assert r.output.startswith("[]\n")
    # The framer runs an execute-only bash: non-dumpable, so its memory, environment and fds are closed.
    assert r.output.count("Permission denied") >= 3, r.output


def test_a_state_file_can_only_set_variables(make_sandbox):
    sb = make_sandbox()
    sb.exec(TAMPERING[5])
    # Records became variables (x, and one named "trap" holding text); the framer's names and the
    # trailing code were ignored, and the next command exits as it should.
    r = sb.exec('echo "[$x][$trap][${y-unset}]"; pwd')
    assert r.output == "[y][exit 0][unset]\n/\n"
    assert sb.exec("false").exit_code == 1


def test_a_torn_state_file_is_ignored(make_sandbox):
    sb = make_sandbox()
    sb.exec("cd /tmp && export KEEP=yes")
    sb.exec(TAMPERING[6])
    r = sb.exec('echo "[${z-unset}][$KEEP]"; pwd')
    assert r.output == "[unset][yes]\n/tmp\n"


def test_fork_bomb_does_not_flood_later_commands(make_sandbox):
    sb = make_sandbox(pids=64)
    sb.exec("bomb() { bomb | bomb & }; bomb", timeout=30)
    r = sb.exec("echo next; ls / > /dev/null && echo forked", timeout=30)
    assert (r.output, r.exit_code, r.timed_out) == ("next\nforked\n", 0, False)


def test_a_chain_of_short_lived_forks_does_not_flood_later_commands(make_sandbox):
    # Each process forks the next and exits at once: none lives long enough for a scan of /proc to see it alive.
    sb = make_sandbox()
    sb.exec("f() { echo x; f & }; f", timeout=30)
    for _ in range(2):
        r = sb.exec("sleep 0.3; echo next", timeout=30)
        assert (r.output, r.exit_code, r.timed_out) == ("next\n", 0, False), r


def test_a_background_program_that_keeps_forking_is_left_alone(make_sandbox):
    # Processes are created while the framer looks for leftovers, but by a program it sees alive (a build in the
    # background): not a runaway, and its output goes elsewhere.
    sb = make_sandbox()
    sb.exec("sh -c 'while :; do /bin/true; done' > /dev/null 2>&1 & echo $! > forker.pid", timeout=30)
    for _ in range(3):
        r = sb.exec("sleep 0.2; echo next", timeout=30)
        assert (r.output, r.exit_code) == ("next\n", 0), r
    assert sb.exec('kill -0 "$(cat forker.pid)" && echo alive', timeout=30).output == "alive\n"


def test_background_programs_keep_running_only_with_their_output_redirected(make_sandbox):
    sb = make_sandbox()
    sb.exec("sleep 4545 > /dev/null 2>&1 & sleep 4646 & echo started")
    assert count_procs(sb, "sleep 4545") == 1  # a server started with its output elsewhere survives
    assert count_procs(sb, "sleep 4646") == 0  # one still holding the command's output was hung up
    r = sb.exec("(while :; do echo spam; sleep 0.01; done) & echo once")
    assert "once\n" in r.output
    assert sb.exec("sleep 0.2; echo quiet").output == "quiet\n"


@pytest.mark.parametrize(
    "path",
    [
        "/etc/evil",
        "../etc/evil",
        "../../usr/bin/evil",
        "/usr/lib/python3/dist-packages/evil.py",
        "/root/.ssh/authorized_keys",
    ],
)
def test_file_tools_cannot_write_where_the_agent_cannot(make_sandbox, path: str):
    sb = make_sandbox()
    with pytest.raises(PermissionError, match="the agent may not"):
        sb.write_file(path, b"owned")
    assert "owned" not in sb.exec("cat /etc/evil /usr/bin/evil 2>&1").output


def test_file_tools_do_not_follow_planted_symlinks_out(make_sandbox):
    sb = make_sandbox()
    assert sb.exec("ln -s /etc planted_dir && ln -s /etc/passwd planted_file").exit_code == 0
    with pytest.raises(PermissionError):
        sb.write_file("planted_dir/evil", b"owned")
    sb.write_file("planted_file", b"replaced")  # the link itself is replaced, /etc/passwd is untouched
    assert sb.exec("test -L planted_file || cat planted_file").output == "replaced"
    assert "root:" in sb.exec("cat /etc/passwd").output


def test_file_tools_read_as_the_agent(make_sandbox, backend):
    sb = make_sandbox()
    sb.exec("echo secret > mine && chmod 000 mine")
    with pytest.raises(PermissionError):
        sb.read_file("mine")
    with pytest.raises((PermissionError, FileNotFoundError)):  # Docker: unreadable; local: not even there
        sb.read_file("/etc/shadow")
    with pytest.raises(IsADirectoryError):
        sb.read_file(".")
    with pytest.raises(ValueError):
        sb.read_file("bad\x00name")


def test_docker_pristine_snapshot_is_out_of_reach_of_file_tools(make_sandbox, backend):
    if backend != "docker":
        pytest.skip("the local backend keeps its pristine copy outside the jail altogether")
    sb = make_sandbox()
    with pytest.raises(PermissionError):
        sb.write_file("/var/lib/envgym/pristine/planted", b"x")
    with pytest.raises(PermissionError):
        sb.write_file("/var/lib/envgym/framer", b"x")


def test_write_files_in_one_go(make_sandbox):
    sb = make_sandbox()
    files = {f"d{i % 3}/f{i}.txt": f"{i}\n".encode() for i in range(30)}
    sb.write_files(files)
    assert sb.exec("cat d*/f*.txt | sort -n | tr '\\n' ,").output == ",".join(str(i) for i in range(30)) + ","
    with pytest.raises(PermissionError):
        sb.write_files({"ok.txt": b"1", "/etc/evil": b"2"})


def test_saving_the_state_adds_nothing_to_it(make_sandbox):
    sb = make_sandbox()
    before = sb.exec("declare -p | grep -v -E '^declare -[a-zA-Z-]* (BASH|_=|PPID|SHLVL|PWD|OLDPWD)' | sort").output
    for _ in range(3):
        sb.exec("true")
    r = sb.exec(
        'echo "[${LC_ALL-unset}][${__eg_names-}][${__eg_a-}]"; [ "$RANDOM$RANDOM" != "$RANDOM$RANDOM" ] && echo random'
    )
    assert r.output == "[unset][][]\nrandom\n"  # bash's dynamic variables still work
    after = sb.exec("declare -p | grep -v -E '^declare -[a-zA-Z-]* (BASH|_=|PPID|SHLVL|PWD|OLDPWD)' | sort").output
    assert after == before


def test_file_reads_refuse_pipes_devices_and_oversize_at_once(make_sandbox):
    """A FIFO used to block the read helper for its whole 60 s timeout, and a link to /dev/zero streamed the
    whole read cap (256 MiB) into the host's memory: both are refused before a byte is read."""
    sb = make_sandbox()
    sb.exec("mkfifo pipe && ln -s /dev/zero zeros && ln -s /dev/urandom noise && ln -s nowhere dangling")
    sb.exec("head -c 5000 /dev/zero > big && ln -s big big_link")
    for name in ("pipe", "zeros", "noise"):  # refused by the check, not by the helper's timeout
        with pytest.raises(OSError, match="not a regular file"):
            sb.read_file(name)
    with pytest.raises(FileNotFoundError):
        sb.read_file("dangling")
    assert len(sb.read_file("big_link", max_bytes=5000)) == 5000  # links to regular files are followed
    with pytest.raises(OSError, match="larger than 4999 bytes"):
        sb.read_file("big", max_bytes=4999)
