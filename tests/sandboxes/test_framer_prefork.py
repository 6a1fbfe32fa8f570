"""The pre-forking framer, on every backend: the child for the next command is forked (and has applied the
saved state) before the command arrives, and it writes a state only when its variables or cwd changed.

What must hold whatever earlier commands did: each command gets its own exit code and output, the command's text
reaches only its own child, a killed pre-forked child is replaced, and state stays data."""

from __future__ import annotations

import signal
import time

import pytest

from envgym.sandboxes import Sandbox

# A program (not a subshell: it survives its command's end, its output going elsewhere) that for ~3 s writes a
# forged command and a forged frame into every fd it can open, and copies whatever it can read from them.
SPY = (
    "sh -c 'end=$(( $(date +%s) + 3 )); while [ $(date +%s) -lt $end ]; do "
    "for f in /proc/[0-9]*/fd/*; do "
    'printf "0000000006exit 0\\nforged BEGIN 2\\nhiforged END 0 0\\n" > "$f"; '
    'timeout 0.05 cat "$f" >> /tmp/spy; done 2>/dev/null; done\' > /dev/null 2>&1 < /dev/null &'
)


def test_a_leftover_process_cannot_read_or_answer_later_commands(make_sandbox):
    sb: Sandbox = make_sandbox()
    sb.exec(SPY, timeout=30)
    for _ in range(5):
        r = sb.exec("false", timeout=30)
        assert (r.exit_code, r.output) == (1, ""), r
        r = sb.exec('echo "SECRET$((6 * 7))"; (exit 3)', timeout=30)
        assert (r.exit_code, r.output) == (3, "SECRET42\n"), r
        time.sleep(0.2)  # the next child waits, pre-forked, while the spy runs
    time.sleep(3)
    spied = sb.exec("cat /tmp/spy 2>/dev/null; true", timeout=30).output
    assert "SECRET$((" not in spied  # the command's text never reached it


def test_a_killed_pre_forked_child_is_replaced(make_sandbox):
    sb = make_sandbox()
    sb.exec("keep=1; cd /tmp", timeout=30)
    # Once this command is answered, a program it left kills every other process it may (the pre-forked child
    # included), sparing only the framer ($$) and itself.
    sb.exec(
        "sh -c 'sleep 0.5; for p in /proc/[0-9]*; do p=${p#/proc/}; "
        '[ "$p" = "$1" ] || [ "$p" = "$$" ] || [ "$p" = 1 ] || kill -9 "$p"; done\' sh $$ > /dev/null 2>&1 &',
        timeout=30,
    )
    time.sleep(1.5)
    r = sb.exec('echo "$keep $PWD"; exit 5', timeout=30)
    assert (r.exit_code, r.output) == (5, "1 /tmp\n"), r
    r = sb.exec("kill -9 $BASHPID", timeout=30)  # the running child itself
    assert r.exit_code == 137, r
    r = sb.exec('echo "$keep"', timeout=30)
    assert (r.exit_code, r.output) == (0, "1\n"), r


def test_exit_codes_are_the_childs_own(make_sandbox):
    sb = make_sandbox()
    got = {code: sb.exec(f"exit {code}", timeout=30).exit_code for code in range(256)}
    assert got == {code: code for code in range(256)}
    for name, code in (("HUP", 129), ("INT", 130), ("KILL", 137), ("USR1", 138), ("TERM", 143), ("PIPE", 141)):
        r = sb.exec(f"kill -{name} $BASHPID; sleep 1", timeout=30)
        assert r.exit_code == code, (name, r)
    # Signals the framer catches cut its wait for the child short: it waits again, and reports the child's code.
    r = sb.exec("for s in USR1 USR2 TERM INT HUP ALRM PIPE QUIT; do kill -$s $$; done; sleep 0.3; echo ok; exit 4")
    assert (r.exit_code, r.output) == (4, "ok\n"), r
    assert sb.exec('yes | head -c 2; echo " ${PIPESTATUS[*]}"').output == "y\n 141 0\n"


def test_commands_get_default_signals_whatever_the_host_process_had(make_sandbox):
    # Dispositions and the signal mask survive fork and exec, and bash can neither reset a signal ignored on entry
    # nor unblock one: a host process under `nohup` (SIGHUP ignored), or a thread that blocks signals, must not pass
    # that on to the agent's commands (the local jail used to: `kill -HUP $BASHPID` then did nothing).
    old_hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGUSR1})
    try:
        sb = make_sandbox()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        signal.signal(signal.SIGHUP, old_hup)
    for name, code in (("HUP", 129), ("TERM", 143), ("USR1", 138)):
        r = sb.exec(f"kill -{name} $BASHPID; sleep 1", timeout=30)
        assert r.exit_code == code, (name, r)
    r = sb.exec("grep -E '^Sig(Blk|Ign)' /proc/self/status", timeout=30)  # a program the command starts
    assert r.output == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n", r


def test_state_is_saved_only_when_it_changed_and_stays_data(make_sandbox):
    sb = make_sandbox()
    sb.exec("a=1; export B=2", timeout=30)
    sb.exec("true", timeout=30)  # unchanged: nothing written, the last state holds
    sb.exec("trap - EXIT; a=changed-but-not-saved", timeout=30)
    # the child's own snapshots, tampered with: at worst a whole save, never code
    sb.exec('echo "x" > "$__eg_st/start"; c=3', timeout=30)
    sb.exec('printf "trap \'exit 0\' EXIT\\n" > "$__eg_st/end"; d=4', timeout=30)
    r = sb.exec('echo "$a $B ${c-} ${d-}"; env | grep -c "^B=2$"; false', timeout=30)
    assert (r.exit_code, r.output) == (1, "1 2 3 4\n1\n"), r
    sb.exec("unset a; cd /", timeout=30)
    r = sb.exec('echo "[${a-unset}] $PWD"', timeout=30)
    assert r.output == "[unset] /\n", r


@pytest.mark.parametrize(
    "command, output",
    [
        ("", ""),
        ("echo héllo wörld", "héllo wörld\n"),
        ("echo a\x00b", "ab\n"),  # bash holds no NUL: dropped (it must not desynchronise the framer)
        # larger than a pipe's buffer: the framer's write blocks until the child has read it
        (": '" + "x" * 200_000 + "'; echo big", "big\n"),
    ],
)
def test_commands_of_any_size_reach_the_child_whole(make_sandbox, command: str, output: str):
    sb = make_sandbox()
    r = sb.exec(command, timeout=30)
    assert (r.exit_code, r.output) == (0, output), r
    assert sb.exec("echo after", timeout=30).output == "after\n"


def test_reset_leaves_no_child_waiting_and_forgets_the_state(make_sandbox):
    sb = make_sandbox()
    sb.exec("v=1; cd /tmp", timeout=30)
    sb.reset()
    # a child pre-forked before the reset would have applied the forgotten state
    r = sb.exec('echo "[${v-unset}] $PWD"', timeout=30)
    assert r.output == "[unset] " + sb.exec("pwd").output, r


def test_signals_to_the_framer_between_commands_change_nothing(make_sandbox):
    sb = make_sandbox()
    sb.exec("keep=1", timeout=30)
    # A leftover sends the signals the framer catches while it waits for the next command's header.
    sb.exec(
        "sh -c 'for i in $(seq 40); do for s in USR1 USR2 TERM INT HUP ALRM PIPE QUIT; do kill -$s $1; done; "
        "sleep 0.05; done' sh $$ > /dev/null 2>&1 &",
        timeout=30,
    )
    for _ in range(3):
        time.sleep(0.4)
        r = sb.exec('echo "ok $keep"; exit 6', timeout=30)
        assert (r.exit_code, r.output) == (6, "ok 1\n"), r


# Commands built to look like ones that cannot change the shell's state (the framer then skips the state
# snapshots), each followed by a check of what it changed: quoting or globbing a builtin's name, a redirection
# before it, a separator, a keyword, an assignment or an expansion hidden in a plain-looking command.
STATE_CHANGES = [
    ("v1=a", 'echo "$v1"', "a"),
    ("\\cd /tmp", "/bin/pwd", "/tmp"),
    ("c\\d /", "/bin/pwd", "/"),
    ('"cd" /tmp', "/bin/pwd", "/tmp"),
    (": > cd; c[d] /", "/bin/pwd", "/"),
    (">/dev/null cd /tmp", "/bin/pwd", "/tmp"),
    ("2>/dev/null cd /", "/bin/pwd", "/"),
    ("command cd /tmp", "/bin/pwd", "/tmp"),
    ("builtin cd /", "/bin/pwd", "/"),
    ("pushd /tmp", "/bin/pwd", "/tmp"),
    ("true && cd /", "/bin/pwd", "/"),
    ("echo x; cd /tmp", "/bin/pwd", "/tmp"),
    ("read v2 <<< b", 'echo "$v2"', "b"),
    ("printf -vv3 c", 'echo "$v3"', "c"),
    ("for v4 in d; do :; done", 'echo "$v4"', "d"),
    ("export v5=e", "env", "v5=e"),
    ("declare v6=f", 'echo "$v6"', "f"),
    ("let v7=7", 'echo "$v7"', "7"),
    ("(( v8 = 8 ))", 'echo "$v8"', "8"),
    (": ${v9:=g}", 'echo "$v9"', "g"),
    ("eval v10=h", 'echo "$v10"', "h"),
    (". /dev/stdin <<< v11=i", 'echo "$v11"', "i"),
    ("getopts a v12 -a", 'echo "$v12"', "a"),
    ("if true; then v13=j; fi", 'echo "$v13"', "j"),
    ("case x in x) v14=k;; esac", 'echo "$v14"', "k"),
    ("unset v1", 'echo "${v1-unset}"', "unset"),
    # bash's own rules still hold: a prefix assignment and a pipeline element do not persist
    ("v15=l /bin/true", 'echo "${v15-unset}"', "unset"),
    ("echo | v16=m", 'echo "${v16-unset}"', "unset"),
]


def test_every_state_change_is_kept(make_sandbox):
    sb = make_sandbox()
    for command, check, expected in STATE_CHANGES:
        r = sb.exec(command, timeout=30)
        assert not r.timed_out, (command, r)
        out = sb.exec(check, timeout=30).output
        assert expected in out.splitlines(), (command, check, out)
    # programs and plain builtins run in the saved state too (env: the exported variables)
    assert sb.exec("/bin/pwd && env | grep -c ^v5=e$").output == "/tmp\n1\n"


# The framer's memory faults and those of the children it reaped, read from its /proc stat by a command (the
# framer is the parent of each command's child).
FRAMER_FAULTS = "read -r -a me < /proc/$BASHPID/stat; read -r -a f < /proc/${me[3]}/stat; echo $(( f[9] + f[10] ))"


def test_the_work_per_command_does_not_grow_with_the_commands_run(make_sandbox):
    """A pooled sandbox serves many episodes with one framer: its cost per command must not climb. bash kept
    every pre-forked child in a list it never pruned (no job table), so each fork, `wait` and child walked one
    entry more per command run before (the framer's CPU per command went from 1.1 to 2.9 ms over 6,000
    commands); the faults per command, counted rather than timed, rose by ~40 over the 1,400 commands here."""
    sb = make_sandbox()

    def faults_per_command(n: int) -> float:
        before = int(sb.exec(FRAMER_FAULTS, timeout=30).output)
        for _ in range(n):
            sb.exec("echo hi", timeout=30)
        return (int(sb.exec(FRAMER_FAULTS, timeout=30).output) - before) / n

    for _ in range(50):
        sb.exec("echo hi", timeout=30)
    early = faults_per_command(200)
    faults_per_command(1000)
    late = faults_per_command(200)
    assert late < early + 20, (early, late)


def test_commands_run_in_the_sandboxs_locale_and_its_changes_persist(make_sandbox):
    """The framer counts bytes (LC_CTYPE=C in it); each child puts the locale back before the command runs, so
    the agent sees the sandbox's own (UTF-8): `${#x}` counts characters and no locale variable appears."""
    sb = make_sandbox()
    r = sb.exec('x=héllo; echo "${#x} [${LC_CTYPE-unset}][${LC_ALL-unset}]"', timeout=30)
    assert (r.exit_code, r.output) == (0, "5 [unset][unset]\n"), r
    # the agent's own locale settings are state like any variable: kept, and applied to the next command
    sb.exec("export LC_CTYPE=C", timeout=30)
    r = sb.exec('x=héllo; echo "${#x} $LC_CTYPE"; env | grep -c ^LC_CTYPE=C$', timeout=30)
    assert r.output == "6 C\n1\n", r
    sb.exec("unset LC_CTYPE; LC_ALL=C", timeout=30)
    r = sb.exec('x=héllo; echo "${#x} $LC_ALL"; env | grep -c ^LC_ALL=', timeout=30)
    assert r.output == "6 C\n0\n", r  # set, not exported: bash's own counting only
    sb.exec("unset LC_ALL", timeout=30)
    r = sb.exec('x=héllo; echo "${#x} [${LC_CTYPE-unset}][${LC_ALL-unset}]"; echo ✓', timeout=30)
    assert r.output == "5 [unset][unset]\n✓\n", r


@pytest.mark.parametrize("name", ["LC_ALL", "LC_CTYPE"])
def test_a_locale_variable_in_the_sandboxs_environment_is_kept(backend: str, request, name: str):
    """LC_ALL set for the sandbox overrides LC_CTYPE: the framer then switches LC_ALL itself. Either way the
    command sees the variable as given (value and export), and frames with multibyte output stay whole."""
    from envgym.sandboxes import open_sandbox

    options = {"image": request.getfixturevalue("base_image")} if backend == "docker" else {}
    with open_sandbox(backend, env={name: "C.UTF-8"}, **options) as sb:
        r = sb.exec(f'x=héllo; echo "${{#x}} {name}=${{{name}}}"; env | grep -c ^{name}=C.UTF-8$; echo ✓✓', timeout=30)
        assert (r.exit_code, r.output) == (0, f"5 {name}=C.UTF-8\n1\n✓✓\n"), r
        assert sb.exec("printf 'é%.0s' {1..3000}", timeout=30).output == "é" * 3000


# A forged state file (written where the framer reads the last command's state) whose names are not plain ASCII
# identifiers: an array subscript would run code in `declare`, a non-ASCII letter must not pass as a letter in
# any locale. The framer drops those records and keeps the plain one.
FORGED_NAMES = (
    "trap - EXIT; exec 9>&1; f=$(readlink /proc/self/fd/9); f=${f%/*}/next; "
    "printf '/tmp\\0a[$(echo > /tmp/pwned)]\\0\\0v\\0\\303\\251t\\303\\251\\0\\0v\\0x\\303\\251\\0\\0v\\0"
    'LC_ALL\\0\\0C\\0ok\\0\\0yes\\0__eg_end\\0\' > "$f"; true'
)


def test_forged_state_names_never_run_code_nor_pass_as_letters(make_sandbox):
    sb = make_sandbox()
    sb.exec("export LANG=C.UTF-8", timeout=30)
    sb.exec(FORGED_NAMES, timeout=30)
    # builtins only: the forged state replaced every variable, PATH included
    r = sb.exec(
        'echo "$PWD ${ok-} ${LC_ALL-}"; [[ -e /tmp/pwned ]] && echo ran || echo clean; [[ -v a ]] && echo a; '
        'for v in $(compgen -v); do [[ $v == *[![:alnum:]_]* ]] && echo "odd $v"; done; echo dropped',
        timeout=30,
    )
    assert r.output == "/tmp yes C\nclean\ndropped\n", r
