"""The `envgym` command.

Sub-command groups owned by other packages (`sandbox`, `swe`, `train`, ...) plug in through a module-level
`register(app)` function, so this file stays small and importing the CLI stays fast.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(help="envgym: verifiable multi-turn text environments for LLM agents.", no_args_is_help=True)
console = Console()

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
            raise
        module.register(app)


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


@app.command("list")
def list_envs() -> None:
    """List every registered env id with its family and difficulty knobs."""
    from envgym.registry import ENTRIES

    table = Table(title="envgym environments")
    for column in ("id", "family", "description", "native knobs (settable via params)"):
        table.add_column(column)
    for entry in ENTRIES:
        try:
            cls = entry.load_class()
            params_model = getattr(cls, "Params", None)
            knobs = ", ".join(params_model.model_fields) if params_model is not None else "-"
        except Exception as exc:  # an env whose optional deps are missing still gets listed
            knobs = f"(unavailable: {exc})"
        table.add_row(entry.id, entry.family, entry.description, knobs or "-")
    console.print(table)


@app.command()
def run(
    env_id: Annotated[str, typer.Argument(help="e.g. envgym/Puzzle-v0")],
    agent: Annotated[str, typer.Option(help="random or oracle")] = "oracle",
    episodes: Annotated[int, typer.Option(min=1)] = 10,
    difficulty: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.5,
    seed: Annotated[int, typer.Option(help="episode i uses seed + i")] = 0,
    out: Annotated[Path, typer.Option(help="run directory; trajectories go to OUT/trajectories.jsonl")] = Path(
        "runs/latest"
    ),
    env_kwargs: Annotated[str | None, typer.Option(help="JSON kwargs for gym.make")] = None,
    params: Annotated[str | None, typer.Option(help="JSON native params, e.g. '{\"size\": 7}'")] = None,
) -> None:
    """Run a scripted agent on an env, print success rate and mean turns, and record trajectories."""
    import gymnasium as gym

    import envgym  # noqa: F401  (registers ids)
    from envgym.agents.policies.scripted import make_scripted_agent
    from envgym.runner import run_episode
    from envgym.trajectory import TrajectoryWriter

    kwargs = _parse_json_option(env_kwargs, "--env-kwargs")
    options: dict[str, Any] = {"difficulty": difficulty}
    if params:
        options["params"] = _parse_json_option(params, "--params")
    try:
        env = gym.make(env_id, **kwargs)
    except gym.error.Error as exc:
        raise typer.BadParameter(str(exc)) from exc
    scripted = make_scripted_agent(agent, seed)
    path = out / "trajectories.jsonl"
    successes, turns, infra = 0, 0, 0
    with (
        TrajectoryWriter(path) as writer,
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[stats]}"),
            console=console,
        ) as progress,
    ):
        task = progress.add_task(f"{env_id} ({agent})", total=episodes, stats="")
        for i in range(episodes):
            episode = run_episode(env, scripted, seed=seed + i, options=options, env_kwargs=kwargs)
            writer.write(episode)
            assert episode.outcome is not None
            successes += episode.outcome.success
            turns += episode.outcome.num_turns
            infra += episode.outcome.infra_error is not None
            progress.update(task, advance=1, stats=f"success {successes / (i + 1):.0%}")
    env.close()
    console.print(
        f"[bold]{env_id}[/] agent={agent} difficulty={difficulty}: success rate "
        f"[bold]{successes / episodes:.1%}[/] ({successes}/{episodes}), mean turns {turns / episodes:.1f}"
        + (f", infra errors {infra}" if infra else "")
    )
    console.print(f"trajectories: {path}")


def main() -> None:
    _load_plugins()
    app()


if __name__ == "__main__":
    main()
