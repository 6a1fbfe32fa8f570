"""`envgym replay` and `envgym view`: re-execute recorded episodes, and render trajectories as one HTML file.

Exit codes of `replay`: 0 every episode replayed and matched its recording, 1 at least one diverged, 2 the file
is empty or damaged, an episode could not be rebuilt, or nothing could be replayed (all infra).

Every piece of file text (ids, actions, notes, diffs, error messages quoting it) is printed through
`envgym.terminal.visible`: a lone surrogate, an escape sequence or a huge id is shown, never acted on.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from envgym.cli_errors import CommandError
from envgym.terminal import visible

console = Console(soft_wrap=True)  # one message, one line: long paths are not folded


def register(app: typer.Typer) -> None:
    """Called by the main `envgym` CLI."""
    app.command("replay")(replay)
    app.command("view")(view)


def _short(text: str, width: int = 60) -> str:
    one = " ".join(text.split())
    return one if len(one) <= width else one[: width - 1] + "…"


def _row(table: Table, check: Any) -> None:
    from envgym.replay import TurnCheck

    assert isinstance(check, TurnCheck)
    status = "[red]DIVERGED[/red] " + ",".join(d.field for d in check.diffs) if check.diverged else "[green]ok[/green]"
    reward = "" if check.recorded_reward is None else f"{check.recorded_reward:g}"
    if check.replayed_reward is not None and check.replayed_reward != check.recorded_reward:
        reward += f" → {check.replayed_reward:g}"
    codes = ",".join("-" if c is None else str(c) for c in check.replayed_exit_codes or check.exit_codes)
    flags = ("T" if check.terminated else "") + ("t" if check.truncated else "")
    action = escape(visible(_short(check.action)))  # file text: never rich markup or terminal control
    table.add_row(str(check.index) if check.index >= 0 else "reset", action, reward, codes, flags, status)


def _new_table(title: str) -> Table:
    table = Table(title=title)
    for column in ("turn", "action", "reward", "exit codes", "end", "status"):
        table.add_column(column, no_wrap=column == "action", max_width=40 if column == "action" else None)
    return table


def _open_shell(env: Any) -> None:
    """An interactive prompt in the sandbox state the replay stopped in (or print the state if none)."""
    from envgym.replay import find_sandbox

    sandbox = find_sandbox(env)
    if sandbox is None:
        console.print("[bold]State after the last replayed turn[/bold] (this env has no sandbox):")
        state = visible(getattr(env.unwrapped, "last_observation", ""), None, multiline=True)
        console.print(state, markup=False, highlight=False)
        return
    info = sandbox.info()
    container = getattr(sandbox, "container_id", None) or getattr(getattr(sandbox, "container", None), "id", None)
    console.print(f"[bold]Shell in the {info.backend} sandbox[/bold] (workspace {sandbox.workspace}).")
    if container:
        console.print(f"Or attach a terminal yourself: docker exec -it {shlex.quote(str(container))} bash")
    console.print("Type commands; `exit` or Ctrl-D leaves (the sandbox is closed then).")
    while True:
        try:
            line = input("sandbox$ ")
        except EOFError:
            break
        if line.strip() in ("exit", "quit", "logout"):
            break
        if not line.strip():
            continue
        result = sandbox.exec(line)
        sys.stdout.write(result.output if result.output.endswith("\n") or not result.output else result.output + "\n")
        if result.exit_code != 0 or result.timed_out:
            console.print(f"[dim](exit {result.exit_code}{', timed out' if result.timed_out else ''})[/dim]")


class _Tally:
    """Per-status episode counts; decides the exit code."""

    def __init__(self) -> None:
        self.counts = {"ok": 0, "diverged": 0, "infra": 0, "unreplayable": 0}

    def line(self, damaged: list[Any]) -> str:
        total = sum(self.counts.values())
        parts = ", ".join(f"{n} {k}" for k, n in self.counts.items() if n or k in ("ok", "diverged"))
        if not damaged:
            return f"{total} episodes: {parts}"
        lines = "1 line is" if len(damaged) == 1 else f"{len(damaged)} lines are"
        return f"{total} episodes: {parts}; the file is damaged: {lines} not a replayable episode ({damaged[0].where})"

    def exit_code(self, damaged: list[Any]) -> int:
        if damaged or self.counts["unreplayable"] or self.counts["ok"] + self.counts["diverged"] == 0:
            return 2
        return 1 if self.counts["diverged"] else 0


def _read(trajectory: Path) -> tuple[list[Any], list[Any]]:
    """The episodes readable from the file and its damaged lines (each costs only itself), or a one-line
    `CommandError` (exit 2) when there is nothing to replay."""
    from envgym.replay import DamagedLine, read_records
    from envgym.trajectory import TrajectoryError

    try:
        records = list(read_records(trajectory))
    except (TrajectoryError, OSError) as exc:
        raise CommandError(f"nothing to replay: {visible(exc)}", 2) from exc
    episodes = [r for r in records if not isinstance(r, DamagedLine)]
    damaged = [r for r in records if isinstance(r, DamagedLine)]
    if not episodes:
        why = f"{damaged[0].where}: {damaged[0].reason}" if damaged else f"no episodes in {trajectory}"
        more = f" (and {len(damaged) - 1} more damaged lines)" if len(damaged) > 1 else ""
        raise CommandError(f"nothing to replay: {visible(why)}{more}", 2)
    return episodes, damaged


def _label(record: Any, id_chars: int = 12) -> str:
    """`env@version seed=S episode-id-prefix` as plain, printable text (escape it for markup)."""
    return visible(f"{record.env_id}@{record.env_version} seed={record.seed} {record.episode_id[:id_chars]}", 160)


def _episode_line(record: Any, report: Any) -> str:
    """One line of rich markup; every piece of file or env text in it is escaped."""
    head = escape(_label(record))
    if report.infra:
        return f"[yellow]infra[/yellow]    {head}: {escape(visible(_short(report.replayed_infra_error or '', 100)))}"
    if report.diverged:
        first = report.first_divergence
        where = "version" if first is None else "the reset" if first.index < 0 else f"turn {first.index}"
        fields = "env version" if first is None else ", ".join(d.field for d in first.diffs)
        return f"[red]DIVERGED[/red] {head}: at {where} ({escape(fields)})"
    return (
        f"[green]ok[/green]       {head}: {len(report.turns) - 1} turns, return {report.replayed_return:g} "
        f"(recorded {report.recorded_return:g})"
    )


def _show_details(table: Table, report: Any) -> None:
    console.print(table)
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {escape(visible(note, 500))}", highlight=False)
    first = report.first_divergence
    if first is not None and not report.infra:
        for diff in first.diffs:
            console.print(visible(diff.unified(), None, multiline=True), markup=False, highlight=False)


def replay(
    trajectory: Annotated[Path, typer.Argument(help="a trajectories.jsonl written by any envgym command")],
    episode: Annotated[str | None, typer.Option(help="episode id (or a unique prefix); default: every episode")] = None,
    step: Annotated[
        bool, typer.Option("--step", help="walk turn by turn, showing each observation (Enter / q)")
    ] = False,
    until: Annotated[int | None, typer.Option(help="stop after turn K and open a shell in that state")] = None,
    ignore_volatile: Annotated[
        bool, typer.Option("--ignore-volatile/--strict", help="ignore timings, temp paths, ids (default)")
    ] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="per-turn tables and every note")] = False,
    sandbox: Annotated[
        str | None,
        typer.Option(help="sandbox backend for envs that run commands (default: the env's own confined default)"),
    ] = None,
) -> None:
    """Re-execute recorded episodes in fresh envs and compare every turn with the recording.

    Prints one line per episode and a summary. Exit code 0: every episode replayed and matched; 1: at least one
    diverged; 2: the file is empty or damaged, an episode could not be rebuilt, or nothing could be replayed.
    The file is untrusted: it cannot choose the sandbox or point it at host paths (see docs/leaderboard.md).
    """
    from rich.progress import Progress

    from envgym.replay import ReplayError, replay_episode
    from envgym.sandboxes import sandbox_kinds

    if sandbox is not None and sandbox not in sandbox_kinds():
        raise CommandError(f"unknown sandbox backend {sandbox!r}; choose one of: {', '.join(sandbox_kinds())}", 2)
    episodes, damaged = _read(trajectory)
    if episode:
        episodes = [e for e in episodes if e.episode_id.startswith(episode)]
        if len(episodes) != 1:
            raise CommandError(f"{len(episodes)} episodes match {episode!r} in {trajectory}; give a unique id", 2)
    if until is not None and len(episodes) != 1:
        raise CommandError("--until needs one episode: pass --episode ID", 2)
    for line in damaged:  # one line each; the other episodes are still replayed (exit 2 at the end)
        console.print(f"[red]error[/red]    {escape(visible(f'{line.where}: {line.reason}'))}", highlight=False)
    tally = _Tally()
    detailed = verbose or step or until is not None
    with Progress(console=console, transient=True, disable=detailed or len(episodes) < 2) as progress:
        bar = progress.add_task("replaying", total=len(episodes))
        for record in episodes:
            title = escape(_label(record))
            table = _new_table(title)

            def on_turn(check: Any, table: Table = table) -> bool:
                _row(table, check)
                if not step:
                    return True
                console.print(table)
                console.print(visible(check.observation, None, multiline=True), markup=False, highlight=False)
                return input("[Enter] next turn, q stop: ").strip().lower() != "q"

            try:
                report, env = replay_episode(
                    record,
                    strict=not ignore_volatile,
                    until=until,
                    on_turn=on_turn,
                    keep_env=until is not None,
                    sandbox=sandbox,
                )
            except ReplayError as exc:
                tally.counts["unreplayable"] += 1
                progress.console.print(
                    f"[red]error[/red]    {title}: {escape(visible(_short(str(exc), 200)))}", highlight=False
                )
                progress.advance(bar)
                continue
            tally.counts[report.status] += 1
            if detailed:
                _show_details(table, report)
            progress.console.print(_episode_line(record, report), highlight=False)
            progress.advance(bar)
            if env is not None:
                try:
                    _open_shell(env)
                finally:
                    env.close()
    console.print(escape(visible(tally.line(damaged), 500)), highlight=False)
    code = tally.exit_code(damaged)
    if code:
        raise typer.Exit(code)


def view(
    trajectory: Annotated[list[Path], typer.Argument(help="one or more trajectories.jsonl files")],
    out: Annotated[Path, typer.Option("-o", "--out", help="HTML file to write")] = Path("report.html"),
    title: Annotated[str, typer.Option(help="page title")] = "envgym trajectories",
) -> None:
    """Write one self-contained HTML page (no network) showing episodes, turns, tool calls and rewards."""
    from envgym.trajectory import TrajectoryError, read_episodes
    from envgym.viewer import render_html

    try:
        episodes = [e for path in trajectory for e in read_episodes(path)]
    except TrajectoryError as exc:
        raise CommandError(str(exc), 2) from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(episodes, title=title), encoding="utf-8")
    console.print(f"wrote {len(episodes)} episodes to {out}")
