"""Recover the patch a SWE-v0 episode submitted, for its leaderboard prediction.

Why replay: a trajectory's recorded patch (the submit step's `info["patch"]`) is a claim. Replaying the
actions before `submit` in a fresh sandbox and asking the env for `agent_patch()` gives exactly the diff
SWE-v0's grader computes, so the server can re-grade it. Only SWE's public API is used.
"""

from __future__ import annotations

from envgym.trajectory import Episode


def patch_from_replay(episode: Episode) -> str:
    """Replay the episode's actions up to (not including) its submit; return the library-source diff."""
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
        base = env.unwrapped
        for turn in episode.turns:
            if base.is_submit(turn.action):
                break
            _, _, terminated, truncated, _ = env.step(turn.action)
            if terminated or truncated:
                break
        return str(base.agent_patch())
    finally:
        env.close()
