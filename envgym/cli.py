"""The `envgym` command.

Sub-command groups owned by other packages (`sandbox`, `swe`, `train`, ...) plug in through a module-level
`register(app)` function, so this file stays small and importing the CLI stays fast. `main` runs every
command under one error handler (`envgym.cli_errors`): a failure is one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from envgym.extras import explain

app = typer.Typer(
    help="envgym: verifiable multi-turn text environments for LLM agents. "
    "Errors are one line; add --debug (or set ENVGYM_DEBUG=1) for the traceback.",
    no_args_is_help=True,
)
console = Console()

KNOBS_CAPTION = "native knobs per env: envgym list --json (or a terminal of 120+ columns)"

PLUGINS = (
    "envgym.sandboxes.cli",
    "envgym.environments.swe.cli",
    "envgym.environments.tools.cli",
    "envgym.agents.cli",
    "envgym.replay_cli",
    "envgym.leaderboard.cli",
    "envgym.server.cli",
)


def _load_plugins() -> None:
    for module_name in PLUGINS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):
                continue  # that part of envgym is not installed in this tree
            if explain(exc) is not None:
                continue  # its extra is not installed; its commands are absent (`pip install 'envgym[all]'`)
            raise
        module.register(app)


def say(text: str) -> None:
    """Print a line that holds paths or commands: never hard-wrapped (it must stay copy-pastable), no markup."""
    console.print(text, soft_wrap=True, markup=False, highlight=False)


def _parse_json_option(value: str | None, what: str) -> dict[str, Any]:
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"{what} must be a JSON object: {exc}") from exc
    if not isinstance(parsed, dict):
        raise typer.BadParameter(f"{what} must be a JSON object")
    return parsed


def _env_rows() -> list[dict[str, Any]]:
    """Every registered id with its family, description and native knobs (or why its class cannot load)."""
    from envgym.registry import ENTRIES

    rows = []
    for entry in ENTRIES:
        row: dict[str, Any] = {"id": entry.id, "family": entry.family, "description": entry.description}
        try:
            params_model = getattr(entry.load_class(), "Params", None)
            row["knobs"] = list(params_model.model_fields) if params_model is not None else []
            row["available"], row["error"] = True, None
        except Exception as exc:  # an env whose optional deps are missing still gets listed
            from envgym.cli_errors import one_line

            row["knobs"], row["available"], row["error"] = [], False, one_line(exc)
        rows.append(row)
    return rows


@app.command("list")
def list_envs(
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON list instead of a table")] = False,
) -> None:
    """List every registered env id with its family and difficulty knobs."""
    if as_json:
        typer.echo(json.dumps(_env_rows(), indent=2))
        return
    with console.status("loading env classes", spinner="dots"):
        rows = _env_rows()
    wide = console.width >= 120  # below that the knobs column squeezes ids and descriptions into towers
    table = Table(title="envgym environments", box=box.SIMPLE_HEAD, caption=None if wide else KNOBS_CAPTION)
    table.add_column("id", no_wrap=True, min_width=max(len(r["id"]) for r in rows))
    table.add_column("family", no_wrap=True)
    table.add_column("description", ratio=2)
    if wide:
        table.add_column("knobs (--params)", ratio=1)
    for row in rows:
        knobs = ", ".join(row["knobs"]) if row["available"] else f"[dim]unavailable: {row['error']}[/]"
        cells = [row["id"], row["family"], row["description"]]
        if not row["available"] and not wide:
            cells[2] += f" [dim](unavailable: {row['error']})[/]"
        table.add_row(*cells, *([knobs or "-"] if wide else []))
    console.print(table)


def _run_progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[stats]}"),
        console=console,
    )


@app.command()
def run(
    env_id: Annotated[str, typer.Argument(help="e.g. envgym/Puzzle-v0")],
    agent: Annotated[str, typer.Option(help="random or oracle")] = "oracle",
    episodes: Annotated[int, typer.Option(min=1)] = 10,
    difficulty: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.5,
    seed: Annotated[int, typer.Option(help="episode i uses seed + i")] = 0,
    out: Annotated[
        Path, typer.Option(help="run directory (trajectories.jsonl, run.json); re-running the same command resumes")
    ] = Path("runs/latest"),
    env_kwargs: Annotated[str | None, typer.Option(help="JSON kwargs for gym.make")] = None,
    params: Annotated[str | None, typer.Option(help="JSON native params, e.g. '{\"size\": 7}'")] = None,
) -> None:
    """Run a scripted agent on an env, print success rate and mean turns, and record trajectories.

    Re-running the same command with the same --out continues where it stopped; --episodes may grow.
    """
    import gymnasium as gym

    import envgym  # noqa: F401  (registers ids)
    from envgym.agents.policies.scripted import make_scripted_agent
    from envgym.run_dir import RunDir, shell_command
    from envgym.runner import run_episode
    from envgym.trajectory import Episode, RateSummary

    kwargs = _parse_json_option(env_kwargs, "--env-kwargs")
    options: dict[str, Any] = {"difficulty": difficulty}
    if params:
        options["params"] = _parse_json_option(params, "--params")
    scripted = make_scripted_agent(agent, seed)
    config = {"env_id": env_id, "agent": agent, "difficulty": difficulty, "seed": seed, "env_kwargs": kwargs,
              "params": options.get("params", {})}  # fmt: skip
    words = ["envgym", "run", env_id, "--agent", agent, "--episodes", str(episodes), "--difficulty", str(difficulty)]
    words += ["--seed", str(seed), "--out", str(out)]
    words += ["--env-kwargs", json.dumps(kwargs)] if kwargs else []
    words += ["--params", json.dumps(config["params"])] if params else []

    def same_run(e: Episode) -> bool:  # a run dir recorded before run.json existed
        return (e.env_id, e.policy, e.options, e.env_kwargs) == (env_id, scripted.name, options, kwargs)

    run_dir = RunDir.open(out, "run", config, resume=shell_command(words), same_run=same_run)
    done_seeds = {e.seed for e in run_dir.finished}
    todo = [seed + i for i in range(episodes) if seed + i not in done_seeds]
    if (resuming := run_dir.resuming_line(range(seed, seed + episodes))) is not None:
        say(resuming)
    try:
        with console.status(f"making {env_id}", spinner="dots"):
            env = gym.make(env_id, **kwargs)
    except gym.error.UnregisteredEnv as exc:
        raise typer.BadParameter(f"{exc} `envgym list` shows the ids.", param_hint="ENV_ID") from exc
    tally = RateSummary.of(e for e in run_dir.finished if e.seed is not None and seed <= e.seed < seed + episodes)
    try:
        with run_dir, _run_progress() as progress:
            bar = progress.add_task(f"{env_id} ({agent})", total=episodes, completed=tally.episodes, stats="")
            for task_seed in todo:
                episode = run_episode(env, scripted, seed=task_seed, options=options, env_kwargs=kwargs)
                run_dir.write(episode)
                tally.add(episode)
                progress.update(bar, advance=1, stats=tally.short())
    except KeyboardInterrupt:
        say(run_dir.interrupted_line(episodes))
        raise typer.Exit(130) from None
    finally:
        env.close()
    say(f"{env_id} agent={agent} difficulty={difficulty}: {tally.line()}")
    say(f"trajectories: {run_dir.trajectories}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure becomes one line on stderr (`--debug` or ENVGYM_DEBUG=1: the traceback)."""
    from envgym.cli_errors import run_command

    _load_plugins()
    sys.exit(run_command(typer.main.get_command(app), sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
