"""The framer's own files (output, state), on every backend: the agent may write their contents, never swap them.

Found by red-teaming: `rm $__eg_out; mkfifo $__eg_out` made the framer block opening its output for good, so every
later command timed out after a minute and `reset()` raised. A symlink in place of the state file would make the
child write through it. The control directory is now the host's (or root's), with each framer file the agent's.
"""

from __future__ import annotations

import pytest

from envgym.sandboxes.shell import FRAMER_FILES

# Every way to put something else where a framer file is: each must fail, and the sandbox must answer normally.
SWAPS = [
    "rm -f {f} && mkfifo {f}",
    "rm -f {f} && ln -s /dev/zero {f}",
    "mv {f} {f}.old && ln -s /etc/passwd {f}",
    "ln -sf /dev/urandom {f}",
    "rm -rf {f} && mkdir {f}",
]


@pytest.mark.parametrize("swap", SWAPS)
def test_the_agent_cannot_swap_a_framer_file(make_sandbox, swap):
    sb = make_sandbox()
    ctl = sb.exec('echo "$__eg_dir"', timeout=30).output.strip()
    assert ctl.startswith("/"), ctl
    script = "; ".join(swap.format(f=f"{ctl}/{name}") for name in FRAMER_FILES)
    sb.exec(f"{script}; x=1", timeout=30)
    listing = sb.exec(f"find {ctl} -mindepth 1 -printf '%y %f\\n' | sort", timeout=30)
    assert listing.output.split("\n")[:-1] == sorted(f"f {name}" for name in FRAMER_FILES), listing
    for _ in range(2):
        r = sb.exec("cd /tmp; y=7; echo hi", timeout=30)
        assert (r.exit_code, r.output) == (0, "hi\n"), r
        assert not r.timed_out
    r = sb.exec('echo "$PWD $y"', timeout=30)
    assert r.output == "/tmp 7\n", r
    sb.reset()
    assert sb.exec("echo back", timeout=30).output == "back\n"


def test_the_agent_cannot_add_files_to_the_control_directory(make_sandbox):
    sb = make_sandbox()
    r = sb.exec(
        '{ touch "$__eg_dir/x"; mkfifo "$__eg_dir/y"; ln -s / "$__eg_dir/z"; } 2>/dev/null; ls -A "$__eg_dir"',
        timeout=30,
    )
    assert sorted(r.output.split()) == sorted(FRAMER_FILES), r


def test_output_modes_taken_away_come_back(make_sandbox):
    sb = make_sandbox()
    sb.exec('chmod 000 "$__eg_dir"/*', timeout=30)
    r = sb.exec("echo visible; exit 4", timeout=30)
    assert (r.exit_code, r.output) == (4, "visible\n"), r
    sb.reset()  # the state files' modes too
    sb.exec("cd /tmp; v=1", timeout=30)
    assert sb.exec('echo "$PWD $v"', timeout=30).output == "/tmp 1\n"
