"""`envgym swe ...`: build project images, synthesize tasks, check gold/null on the suite, grade predictions."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from envgym.environments.swe.schema import SWETask

console = Console()
swe_app = typer.Typer(help="SWE-v0: project images, task synthesis, gold/null checks, grading.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Called by the main `envgym` CLI."""
    app.add_typer(swe_app, name="swe")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


@swe_app.command("build")
def build(
    project: Annotated[
        list[str] | None, typer.Option(help="NAME or NAME==VERSION; default: every bundled recipe")
    ] = None,
    force: bool = False,
) -> None:
    """Build the project images the bundled suite needs (idempotent: content-hashed tags)."""
    from envgym.environments.swe.images import build_image
    from envgym.environments.swe.recipes import RECIPES, recipe_for

    recipes = [recipe_for(p) for p in project] if project else list(RECIPES.values())
    with _progress() as progress:
        bar = progress.add_task("building images", total=len(recipes))
        for recipe in recipes:
            progress.update(bar, description=f"building {recipe.spec}")
            tag = build_image(recipe, force=force)
            progress.console.print(f"{recipe.spec}: {tag}")
            progress.advance(bar)


@swe_app.command("synthesize")
def synthesize_cmd(
    project: Annotated[str, typer.Option(help="NAME==VERSION of a bundled recipe")],
    count: Annotated[int, typer.Option(min=1)] = 17,
    seed: int = 0,
    out: Annotated[Path | None, typer.Option(help="JSONL to write; default data/<project>.jsonl")] = None,
) -> None:
    """Turn a project into validated bug-fix tasks (same seed -> same tasks)."""
    from envgym.environments.swe.env import DATA_DIR
    from envgym.environments.swe.recipes import recipe_for
    from envgym.environments.swe.schema import write_jsonl
    from envgym.environments.swe.synthesis import synthesize

    recipe = recipe_for(project)
    tasks, stats = synthesize(recipe, count, seed, log=lambda line: console.print(line, markup=False))
    path = out or DATA_DIR / f"{recipe.slug}.jsonl"
    write_jsonl(path, tasks)
    console.print(f"wrote {len(tasks)} tasks to {path}")
    console.print_json(json.dumps({**stats.model_dump(), "single_yield": round(stats.single_yield, 3)}))


def _built_images(tasks: list[SWETask]) -> dict[str, bool | None]:
    """Whether each task's image is built, by image (None: no Docker engine answered)."""
    from envgym.environments.swe.images import image_exists
    from envgym.environments.swe.sandboxing import resolve_image

    found: dict[str, bool | None] = {}
    for image in sorted({resolve_image(t) for t in tasks}):
        try:
            found[image] = image_exists(image)
        except Exception:
            found[image] = None
    return found


@swe_app.command("list")
def list_tasks(tasks: Annotated[Path | None, typer.Option(help="JSONL; default: the bundled suite")] = None) -> None:
    """Tasks per project and level, and whether each project's image is built."""
    from envgym.environments.swe.env import load_tasks
    from envgym.environments.swe.sandboxing import resolve_image

    loaded = load_tasks(tasks)
    built = _built_images(loaded)
    counts: dict[str, list[int]] = {}
    images: dict[str, str] = {}
    for task in loaded:
        name = task.project or task.repo
        counts.setdefault(name, [0, 0, 0, 0])[task.difficulty_level] += 1
        images[name] = resolve_image(task)
    table = Table(title=f"{len(loaded)} SWE tasks")
    for column in ("project", "L0", "L1", "L2", "L3", "total", "image"):
        table.add_column(column)
    for name, row in sorted(counts.items()):
        state = {True: "built", False: "[yellow]not built[/yellow]", None: "? (no Docker)"}[built[images[name]]]
        table.add_row(name, *map(str, row), str(sum(row)), state)
    console.print(table)
    if not all(built.values()):
        console.print("Build missing images with `envgym swe build` (or `--project NAME==VERSION`).")


@swe_app.command("check")
def check(
    tasks: Annotated[Path | None, typer.Option(help="JSONL; default: the bundled suite")] = None,
    sample: Annotated[int, typer.Option(help="check a seeded sample of this many tasks (0 = all)")] = 0,
    seed: int = 0,
    workers: Annotated[int, typer.Option(min=1)] = 2,
    null: Annotated[bool, typer.Option(help="also check that the empty patch scores 0")] = True,
) -> None:
    """Grade every task's gold patch (must be 1.0) and the empty patch (must be 0) in fresh sandboxes."""
    import numpy as np

    from envgym.environments.swe.env import load_tasks
    from envgym.environments.swe.grading import Grader
    from envgym.environments.swe.sandboxing import build_hint, resolve_image

    loaded = load_tasks(tasks)
    if sample:
        rng = np.random.default_rng(seed)
        loaded = [loaded[i] for i in sorted(rng.choice(len(loaded), size=min(sample, len(loaded)), replace=False))]
    built = _built_images(loaded)
    missing = [t for t in loaded if not built[resolve_image(t)]]
    loaded = [t for t in loaded if built[resolve_image(t)]]
    for image, hint in sorted({(resolve_image(t), build_hint(t)) for t in missing}):
        console.print(f"[yellow]not built[/yellow] {image}: {hint}", markup=True, highlight=False)
    jobs = [(t, t.patch, 1.0) for t in loaded] + ([(t, "", 0.0) for t in loaded] if null else [])
    bad: list[str] = []
    with (
        _progress() as progress,
        Grader(pool_size=workers) as grader,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        bar = progress.add_task("grading gold/null patches", total=len(jobs))
        futures = [(t, want, pool.submit(grader.grade_patch, t, patch)) for t, patch, want in jobs]
        for task, want, future in futures:
            result = future.result()
            progress.advance(bar)
            if result.infra_error or result.reward != want:
                kind = "gold" if want else "null"
                bad.append(
                    f"{task.instance_id} {kind}: reward {result.reward} {result.infra_error or result.summary()}"
                )
                progress.console.print(f"[red]FAIL[/red] {bad[-1]}")
    skipped = f", {len(missing)} skipped (image not built)" if missing else ""
    console.print(f"{len(loaded)} tasks, {len(jobs)} gradings, {len(bad)} failures{skipped}")
    if bad:
        raise typer.Exit(1)


@swe_app.command("grade")
def grade(
    predictions: Annotated[Path, typer.Option(help="SWE-bench predictions (JSONL / JSON list / dict)")],
    tasks: Annotated[Path | None, typer.Option(help="instances JSONL; default: the bundled suite")] = None,
    out: Annotated[Path, typer.Option(help="per-instance report JSON")] = Path("swe_report.json"),
    workers: Annotated[int, typer.Option(min=1)] = 2,
) -> None:
    """Grade SWE-bench-format predictions; writes `{instance_id: report}` like SWE-bench."""
    from envgym.environments.swe.env import load_tasks
    from envgym.environments.swe.grading import Grader
    from envgym.environments.swe.schema import read_predictions

    by_id = {t.instance_id: t for t in load_tasks(tasks)}
    preds = read_predictions(predictions)
    unknown = [p.instance_id for p in preds if p.instance_id not in by_id]
    if unknown:
        raise typer.BadParameter(f"unknown instance ids: {unknown[:5]}")
    with (
        _progress() as progress,
        Grader(pool_size=workers) as grader,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        bar = progress.add_task("grading predictions", total=len(preds))
        futures = [pool.submit(grader.grade_patch, by_id[p.instance_id], p.model_patch or "") for p in preds]
        results = []
        for future in futures:
            results.append(future.result())
            progress.advance(bar)
    report = {r.instance_id: r.report().model_dump() for r in results}
    out.write_text(json.dumps(report, indent=1))
    resolved = sum(r.resolved for r in results)
    console.print(f"{resolved}/{len(results)} resolved; report in {out}")
