"""Recover the patch a SWE-v0 episode submitted, for its leaderboard prediction.

Why replay: SWE-v0's trajectory records the agent's actions, not the diff its submit graded. Replaying the
actions before `submit` in a fresh sandbox and diffing the library sources against a fresh buggy tree gives
exactly the diff SWE-v0's grader computes (same snapshot and diff functions), so the server can re-grade it.
"""

from __future__ import annotations

from typing import Any

from envgym.trajectory import Episode


def _is_submit(action: str, env: Any) -> bool:
    from envgym.actions import parse_action

    base = env.unwrapped
    parsed = parse_action(action, base._tool_map, base._text_form, base.text_form_help)
    return getattr(parsed, "name", None) == "submit"


def patch_from_replay(episode: Episode) -> str:
    """Replay the episode's actions up to (not including) its submit; return the library-source diff."""
    from envgym.environments.swe.grading import diff_trees, snapshot_sources
    from envgym.environments.swe.repo_state import install_buggy_tree
    from envgym.environments.swe.sandboxing import fresh_sandbox
    from envgym.replay import make_env

    env = make_env(episode)
    try:
        _, info = env.reset(seed=episode.seed, options=dict(episode.options))
        if info.get("infra_error"):
            raise RuntimeError(f"cannot rebuild the SWE task: {info['infra_error']}")
        recorded = episode.task.get("params", {}).get("instance_id")
        rebuilt = info.get("task", {}).get("params", {}).get("instance_id")
        if recorded != rebuilt:
            raise RuntimeError(
                f"seed {episode.seed} now gives SWE task {rebuilt}, the trajectory solved {recorded}: "
                "the task suite changed since the run; re-run with the current suite"
            )
        for turn in episode.turns:
            if _is_submit(turn.action, env):
                break
            _, _, terminated, truncated, _ = env.step(turn.action)
            if terminated or truncated:
                break
        base = env.unwrapped
        task, sandbox = base.current, base.sandbox
        after = snapshot_sources(sandbox, task)
        with fresh_sandbox(task) as clean:
            install_buggy_tree(clean, task)
            before = snapshot_sources(clean, task)
        return diff_trees(before, after)
    finally:
        env.close()
