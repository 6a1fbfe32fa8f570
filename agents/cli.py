"""`envgym train`, `envgym eval` and `envgym plot` (registered on the main CLI by `register(app)`).

Why thin: all logic lives in the trainer, evaluation and plotting modules; this file parses options, shows
progress and prints the curve, so the same run works from Python and from the shell.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer

DEFAULT_CONFIG = "guess_number_smollm.yaml"


def default_config_path() -> Path:
    return Path(str(resources.files("envgym.agents") / "configs" / DEFAULT_CONFIG))


def loading(what: str) -> Any:
    """A spinner while something slow loads (a model takes seconds to minutes): no silent wait over 2 s."""
    from rich.console import Console

    return Console().status(what, spinner="dots")


def sparkline(values: list[float]) -> str:
    bars = "▁▂▃▄▅▆▇█"
    return "".join(bars[min(7, max(0, int(v * 7.999)))] for v in values)


def train(
    env: Annotated[str | None, typer.Option("--env", help="env id (overrides the config)")] = None,
    policy: Annotated[str | None, typer.Option(help="model: smollm2-135m, tiny, a local dir or a hub id")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML TrainConfig (default: the packaged SmolLM2 job)")] = None,
    run_dir: Annotated[Path, typer.Option(help="run directory; re-running resumes from its checkpoint")] = Path(
        "runs/train"
    ),
    steps: Annotated[int | None, typer.Option(help="total steps (overrides the config)")] = None,
    seed: Annotated[int | None, typer.Option(help="seed (overrides the config)")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads")] = None,
) -> None:
    """Train a policy with trajectory-level RL; metrics, trajectories and checkpoints go to RUN_DIR."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from envgym.agents.plotting import plot_run
    from envgym.agents.trainer import TrainConfig, Trainer

    console = Console()
    cfg = TrainConfig.from_yaml(config or default_config_path())
    updates: dict[str, Any] = {}
    if env:
        updates["env_id"] = env
    if steps:
        updates["steps"] = steps
    if seed is not None:
        updates["seed"] = seed
    if threads:
        updates["threads"] = threads
    policy_updates = {k: v for k, v in {"model": policy, "device": device}.items() if v}
    if policy_updates:
        updates["policy"] = cfg.policy.model_copy(update=policy_updates)
    cfg = TrainConfig.model_validate({**cfg.model_dump(), **{k: v for k, v in updates.items() if k != "policy"}})
    if "policy" in updates:
        cfg.policy = updates["policy"]
    with loading(f"loading {cfg.policy.model} and {cfg.env_id}"):
        trainer = Trainer(cfg, run_dir)
    console.print(
        f"[bold]envgym train[/] {cfg.env_id} policy={cfg.policy.model} device={trainer.device} "
        f"steps={cfg.steps} ({cfg.tasks_per_step}×{cfg.group_size} episodes/step) run_dir={run_dir}"
        + (f" (resumed at step {trainer.step})" if trainer.step else "")
    )
    history: list[dict[str, Any]] = []
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.fields[stats]}"), console=Console(stderr=True),
    ) as progress:  # fmt: skip
        task = progress.add_task("train", total=cfg.steps, completed=trainer.step, stats="")
        held = progress.add_task("held-out", total=1, visible=False, stats="")
        last = {"stats": ""}

        def on_progress(phase: str, done: int, total: int) -> None:
            if phase == "held-out":  # a second bar while the held-out seeds are scored (minutes on a CPU)
                progress.update(held, completed=done, total=total, visible=done < total,
                                stats=f"held-out episodes, step {trainer.step}")  # fmt: skip
            else:
                progress.update(task, stats=f"step {done + 1}: {phase}  {last['stats']}")

        def on_step(m: dict[str, Any]) -> None:
            history.append(m)
            last["stats"] = f"success {m['success']:.2f} entropy {m['entropy']:.2f} {m['tokens_per_s']:.0f} tok/s"
            progress.update(task, completed=m["step"], stats=last["stats"])

        trainer.train(on_step, on_progress)
    from envgym.agents.plotting import read_metrics

    rows = read_metrics(run_dir)
    curve = [float(r["success"] or 0.0) for r in rows]
    console.print("step    " + " ".join(f"{r['step']:>4d}" for r in rows))
    console.print("success " + " ".join(f"{v:4.2f}" for v in curve))
    console.print(f"curve   {sparkline(curve)}")
    elapsed = sum(r["rollout_s"] + r["learn_s"] for r in rows)
    tokens = sum(r["action_tokens_per_episode"] * r["episodes"] for r in rows)
    console.print(
        f"{len(rows)} steps in {elapsed:.0f} s of compute, {tokens / max(elapsed, 1e-9):.1f} sampled tokens/s"
    )
    from envgym.agents.plotting import heldout_summary

    for line in heldout_summary(run_dir):  # the evidence of learning: the same held-out seeds before and after
        console.print(f"[bold]{line}[/]")
    png = plot_run(run_dir)
    console.print(
        f"curves: {png}\nmetrics: {run_dir / 'metrics.jsonl'}\ntrajectories: {run_dir / 'trajectories.jsonl'}"
    )


# eval settings that do not change which episodes a run directory holds: they may differ when resuming
NOT_RUN_IDENTITY = frozenset({"episodes", "out", "timeout", "retries", "concurrency", "probe"})


def evaluate(
    ctx: typer.Context,
    env: Annotated[str, typer.Option("--env", help="env id")] = "envgym/GuessNumber-v0",
    policy: Annotated[str, typer.Option(help="oracle, random, hf, openai")] = "oracle",
    model: Annotated[str | None, typer.Option(help="hf: model/dir/run checkpoint export; openai: model name")] = None,
    base_url: Annotated[str | None, typer.Option(help="openai: endpoint base URL")] = None,
    episodes: Annotated[int, typer.Option(min=1)] = 32,
    difficulty: Annotated[float | None, typer.Option(min=0.0, max=1.0)] = None,
    seed: Annotated[int, typer.Option()] = 10_000,
    max_turns: Annotated[int | None, typer.Option(help="cap on turns per episode")] = None,
    temperature: Annotated[float, typer.Option(help="hf/openai sampling temperature")] = 0.0,
    run: Annotated[
        Path | None, typer.Option(help="hf: an `envgym train` run dir; use its policy config and trained weights")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="hf: take the policy settings (prompt, action prefix, ...) from this train YAML"),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="run directory (trajectories.jsonl, run.json); re-running the same command resumes")
    ] = Path("runs/eval"),
    system_prompt: Annotated[str | None, typer.Option(help="openai: system message")] = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="openai: max tokens per reply")] = 512,
    tools: Annotated[bool, typer.Option("--tools/--no-tools", help="openai: send the env's tool schemas")] = True,
    tool_choice: Annotated[str, typer.Option(help="openai: auto, required, none, a tool name, or omit")] = "auto",
    native_tools: Annotated[
        bool, typer.Option("--native-tools/--text-tools", help="openai: tool_calls + tool messages, or text")
    ] = True,
    prefill: Annotated[
        str | None, typer.Option(help="openai: assistant prefill the reply continues (the hf action prefix)")
    ] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="openai: seconds per request")] = 120.0,
    retries: Annotated[int, typer.Option(min=0, help="openai: retries of 429/5xx/timeouts, with backoff")] = 2,
    concurrency: Annotated[int, typer.Option(min=1, help="openai: episodes in flight at once")] = 8,
    max_context: Annotated[
        int | None, typer.Option(help="openai: context budget in tokens (prompt + max tokens)")
    ] = None,
    on_overflow: Annotated[
        str, typer.Option(help="openai: over the budget, stop (truncated) or trim the oldest exchanges")
    ] = "stop",
    probe: Annotated[
        bool,
        typer.Option(
            "--feedback-probe",
            help="also run the same seeds with every observation after an action hidden: does the policy use "
            "the feedback? (check before turning on self-distillation, `sdpo_weight`)",
        ),
    ] = False,
) -> None:
    """Success rate of any policy on any env (same seeds for every policy).

    Re-running the same command with the same --out continues where it stopped; --episodes may grow.
    """
    import json

    from rich.console import Console

    from envgym.agents.evaluation import evaluate as run_eval
    from envgym.agents.trainer import make_env
    from envgym.run_dir import RunDir, invocation_words, shell_command

    agent: Any
    if probe and policy in {"oracle", "random"}:
        raise typer.BadParameter("--feedback-probe needs a model policy (hf or openai): scripted agents read the env")
    identity = {k: str(v) if isinstance(v, Path) else v for k, v in ctx.params.items() if k not in NOT_RUN_IDENTITY}
    resume = shell_command(invocation_words(ctx, always=("env", "policy", "episodes", "out")))
    run_dirs = [RunDir.open(out, "eval", identity, resume)]  # refused before a model loads
    if probe:
        run_dirs.append(RunDir.open(out / "hidden-feedback", "eval", {**identity, "hide_feedback": True}, resume))
    wanted = range(seed, seed + episodes)
    if (resuming := run_dirs[0].resuming_line(wanted)) is not None:
        Console().print(resuming, soft_wrap=True, markup=False, highlight=False)
    if policy in {"oracle", "random"}:
        from envgym.agents.policies.scripted import make_scripted_agent

        agent = make_scripted_agent(policy, seed)
    elif policy == "hf":
        from envgym.agents.policies.hf import HFPolicyConfig
        from envgym.agents.trainer import make_policy

        settings = run / "config.yaml" if run is not None else config
        if settings is not None:
            from envgym.agents.trainer import TrainConfig, load_trained_weights

            update: dict[str, Any] = {"temperature": temperature}
            if model and run is None:  # a run's weights only fit the model it was trained from
                update["model"] = model
            with loading("loading the model"):
                agent = make_policy(TrainConfig.from_yaml(settings).policy.model_copy(update=update))
                if run is not None:
                    load_trained_weights(agent.model, run)
        else:
            with loading(f"loading {model or 'smollm2-135m'}"):
                agent = make_policy(HFPolicyConfig(model=model or "smollm2-135m", temperature=temperature))
    elif policy == "openai":
        from envgym.agents.policies.openai_policy import OpenAIPolicy, OpenAIPolicyConfig

        if on_overflow not in ("stop", "trim"):
            raise typer.BadParameter(f"--on-overflow must be stop or trim, not {on_overflow!r}")

        agent = OpenAIPolicy(
            OpenAIPolicyConfig(model=model or "gpt-4o-mini", base_url=base_url, temperature=temperature,
                               system_prompt=system_prompt, max_tokens=max_tokens, use_tools=tools,
                               tool_choice=None if tool_choice == "omit" else tool_choice, native_tools=native_tools,
                               prefill=prefill, timeout_s=timeout, max_retries=retries, concurrency=concurrency,
                               max_context_tokens=max_context,
                               on_context_overflow="trim" if on_overflow == "trim" else "stop")
        )  # fmt: skip
    else:
        raise typer.BadParameter(f"unknown policy {policy!r}: choose oracle, random, hf or openai")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    def run_with_bar(label: str, run_dir: RunDir, **kw: Any) -> Any:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, transient=True) as bar, run_dir:
            task = bar.add_task(label, total=episodes, completed=run_dir.recorded(wanted))
            try:
                return run_eval(lambda: make_env(env), agent, episodes, difficulty, seed, max_turns=max_turns,
                                batch_size=concurrency if policy == "openai" else 16, out=run_dir,
                                on_done=lambda n: bar.advance(task, n), **kw)  # fmt: skip
            except KeyboardInterrupt:
                bar.stop()
                Console().print(run_dir.interrupted_line(episodes), soft_wrap=True, markup=False, highlight=False)
                raise typer.Exit(130) from None

    result = run_with_bar(f"{env} ({policy})", run_dirs[0])
    Console().print(
        f"[bold]{env}[/] policy={result.policy} difficulty={difficulty}: success rate "
        f"[bold]{result.success_rate:.1%}[/] over {result.episodes} episodes, mean turns {result.mean_turns:.1f}"
        + (f", infra errors {result.infra_errors} (excluded; first: {result.first_infra_error})"
           if result.infra_errors else "")
        + (f", truncated {result.truncated}" if result.truncated else "")
    )  # fmt: skip
    (out / "eval.json").write_text(json.dumps(result.model_dump(), indent=2))
    if probe:
        hidden = run_with_bar(f"{env} ({policy}, feedback hidden)", run_dirs[1], hide_feedback=True)
        gap = result.success_rate - hidden.success_rate
        verdict = "uses the feedback" if gap > 0 else "no gain from feedback: self-distillation has no teacher signal"
        Console().print(f"feedback probe: with feedback {result.success_rate:.1%}, hidden {hidden.success_rate:.1%} "
                        f"(gap {gap:+.1%}): {verdict}")  # fmt: skip
        summary = {"with_feedback": result.success_rate, "hidden_feedback": hidden.success_rate, "episodes": episodes}
        (out / "feedback_probe.json").write_text(json.dumps(summary, indent=2))


def plot(
    run_dir: Annotated[Path, typer.Argument(help="an `envgym train` run directory")],
    out: Annotated[Path | None, typer.Option(help="PNG path (default RUN_DIR/curves.png)")] = None,
) -> None:
    """Render a run's learning curves (success, entropy, zero-variance groups, ...) to PNG."""
    from envgym.agents.plotting import plot_run

    with loading("rendering the curves"):
        png = plot_run(run_dir, out)
    typer.echo(str(png))


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("eval")(evaluate)
    app.command("plot")(plot)
