"""`envgym submit` and `envgym leaderboard serve|token`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from envgym.cli_errors import CommandError
from envgym.terminal import visible

console = Console()
board_app = typer.Typer(help="Run the verifying leaderboard server and manage its API tokens.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens (admin).", no_args_is_help=True)
board_app.add_typer(token_app, name="token")

DEFAULT_DB = "sqlite:///leaderboard.db"


def register(app: typer.Typer) -> None:
    """Called by the main `envgym` CLI."""
    app.command("submit")(submit)
    app.add_typer(board_app, name="leaderboard")


def submit(
    run_dir: Annotated[Path, typer.Argument(help="run directory written by `envgym run` (trajectories.jsonl inside)")],
    to: Annotated[
        str | None, typer.Option("--to", help="leaderboard server URL, e.g. http://127.0.0.1:8000 (not for --dry-run)")
    ] = None,
    split: Annotated[str, typer.Option(help="task split the run used")] = "dev",
    model: Annotated[str | None, typer.Option(help="model name shown on the board; default: the policy")] = None,
    regrade: Annotated[int, typer.Option(help="re-grade this many random tasks locally before upload")] = 0,
    wait: Annotated[bool, typer.Option(help="wait for the server's verified score")] = True,
    timeout: Annotated[float, typer.Option(help="seconds to wait for grading")] = 900.0,
    dry_run: Annotated[bool, typer.Option(help="build and validate only; write RUN_DIR/bundle.tar.gz")] = False,
) -> None:
    """Build a bundle from RUN_DIR, validate it, upload it, and print the server's verified score."""
    from envgym.leaderboard.bundle import BundleError
    from envgym.leaderboard.client import TOKEN_ENV, SubmitError, prepare, regrade_sample, upload, wait_for_grade

    token = os.environ.get(TOKEN_ENV, "")
    if not dry_run and not to:
        raise CommandError("--to URL names the leaderboard server (or pass --dry-run to only build the bundle)", 2)
    if not token and not dry_run:
        raise CommandError(f"set {TOKEN_ENV} to your leaderboard API token", 2)
    try:
        bundle = prepare(run_dir, split, model)
    except BundleError as exc:
        raise CommandError(str(exc)) from exc
    packed = bundle.pack()
    target = (run_dir if run_dir.is_dir() else run_dir.parent) / "bundle.tar.gz"
    target.write_bytes(packed)
    m = bundle.manifest
    console.print(
        escape(
            f"bundle {target} ({len(packed)} bytes): model {m.model}, split {m.split}, "
            + ", ".join(f"{e.env_id}@{e.version} x{len(e.seeds)}" for e in m.envs)
        )
    )
    if regrade:
        verdicts = regrade_sample(bundle, regrade)
        bad = [v for v in verdicts if v.verified_success != v.claimed_success or v.diverged or v.infra_error]
        for v in verdicts:
            mark = "[red]MISMATCH[/red]" if v in bad else "[green]ok[/green]"
            console.print(
                f"local re-grade {escape(v.task_key)}: verified {v.verified_success} claimed {v.claimed_success} {mark}"
            )
        if bad:
            console.print(f"[yellow]{len(bad)} of {len(verdicts)} re-graded tasks do not reproduce[/yellow]")
    if dry_run or to is None:
        console.print("dry run: bundle built and validated, nothing uploaded")
        return
    try:
        uploaded = upload(bundle, to, token)
        where = Text(
            f"submitted as #{uploaded.id}; grading on the server ({visible(to)}{visible(uploaded.status_url)})"
        )
        console.print(where)  # a Text: the server's words are never read as markup
        if not wait:
            return
        status = wait_for_grade(to, uploaded.id, timeout=timeout)
    except SubmitError as exc:
        raise CommandError(f"rejected: {exc}") from exc  # made visible by the client, printed as plain text
    table = Table(title=Text(f"submission #{uploaded.id}: {visible(status.status)}"))
    for column in ("env", "verified success [95% CI]", "claimed success", "mean return", "graded", "diverged"):
        table.add_column(column)
    for env_id, s in status.scores.items():
        table.add_row(
            Text(visible(env_id)),
            f"{s.success_rate:.1%} [{s.ci_low:.0%}-{s.ci_high:.0%}]",
            f"{s.claimed_success_rate:.1%}",
            f"{s.mean_return:.3f}",
            f"{s.graded}/{s.tasks}",
            str(s.diverged),
        )
    console.print(table)
    if status.status != "graded":
        state = visible(status.status)
        raise CommandError(f"not graded yet ({state}); check {visible(to)}/api/submissions/{uploaded.id}", 3)


@board_app.command("serve")
def serve(
    db: Annotated[str, typer.Option(help="SQLAlchemy URL: sqlite:///file.db or postgresql+psycopg://...")] = DEFAULT_DB,
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    splits: Annotated[Path | None, typer.Option(help="JSON list of split specs; default dev/test")] = None,
    max_bundle_mb: Annotated[float, typer.Option(help="largest accepted upload")] = 50.0,
    replay_fraction: Annotated[float, typer.Option(help="share of SWE trajectories also replayed")] = 0.25,
    task_pause: Annotated[float, typer.Option(help="seconds between graded tasks (bounds grader load)")] = 0.0,
    sandbox: Annotated[
        str,
        typer.Option(
            help="isolation boundary for re-running agent commands: auto (local bubblewrap, else Docker), local, "
            "docker, or none (bundles with such envs are then refused at upload)"
        ),
    ] = "auto",
) -> None:
    """Serve the JSON API and the HTML leaderboard; grade submissions in the background."""
    from envgym.leaderboard.server import serve as run_server
    from envgym.leaderboard.server import settings_from

    settings = settings_from(
        db,
        splits,
        max_bundle_bytes=int(max_bundle_mb * 1024 * 1024),
        replay_fraction=replay_fraction,
        task_pause_s=task_pause,
        sandbox=sandbox,
    )
    console.print(f"envgym leaderboard on http://{host}:{port} (db {db}, splits {', '.join(settings.splits)})")
    run_server(settings, host=host, port=port)


@token_app.command("create")
def token_create(
    submitter: Annotated[str, typer.Argument(help="who the token belongs to")],
    db: Annotated[str, typer.Option(help="SQLAlchemy URL of the leaderboard db")] = DEFAULT_DB,
) -> None:
    """Create an API token (printed once; only its hash is stored)."""
    from envgym.leaderboard.db import create_token, make_engine, session_factory

    engine = make_engine(db)
    with session_factory(engine)() as session:
        print(create_token(session, submitter))
    engine.dispose()


@token_app.command("revoke")
def token_revoke(
    submitter: Annotated[str, typer.Argument(help="whose tokens to revoke")],
    db: Annotated[str, typer.Option(help="SQLAlchemy URL of the leaderboard db")] = DEFAULT_DB,
) -> None:
    """Revoke every token of a submitter."""
    from envgym.leaderboard.db import make_engine, revoke_tokens, session_factory

    engine = make_engine(db)
    with session_factory(engine)() as session:
        console.print(f"revoked {revoke_tokens(session, submitter)} tokens of {submitter}")
    engine.dispose()
