"""A difficulty controller that keeps each env family's training tasks learnable, and a gymnasium wrapper.

Why: groups whose episodes all succeed or all fail carry no signal for group-baseline RL (their advantages
are zero). Per family we keep an EMA of measured success p̂ on a ladder of difficulty levels, sample levels
up to a frontier in proportion to the learnability p̂(1 − p̂) + ε, move the frontier up when it is mastered
and back when the level below it is forgotten (two thresholds: hysteresis), and replay easier levels.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


class CurriculumConfig(BaseModel):
    """Ladder, thresholds and replay; defaults follow NOTES-RL §11.5."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not a silent default

    levels: list[float] = Field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])
    ema: float = Field(default=0.1, gt=0.0, le=1.0, description="weight of a new success sample")
    up: float = Field(default=0.7, description="advance the frontier when its p̂ exceeds this")
    down: float = Field(default=0.3, description="retreat when the level below the frontier falls under this")
    min_samples: int = Field(default=16, ge=1, description="samples of the family since the last move before the next")
    replay: float = Field(default=0.2, ge=0.0, le=1.0, description="share of tasks drawn from passed levels")
    epsilon: float = Field(default=0.02, ge=0.0, description="floor of the learnability weight")
    prior: float = Field(default=0.5, ge=0.0, le=1.0, description="optimistic p̂ of unseen levels")

    @model_validator(mode="after")
    def _check(self) -> CurriculumConfig:
        if not self.levels or sorted(self.levels) != self.levels or not all(0 <= x <= 1 for x in self.levels):
            raise ValueError("levels must be a non-empty ascending list of difficulties in [0, 1]")
        if not self.down < self.up:
            raise ValueError("hysteresis needs down < up")
        return self


class FamilyState(BaseModel):
    p_hat: list[float]
    counts: list[int]
    frontier: int = 0
    since_move: int = 0


class DifficultyController:
    """Per-family difficulty picker driven by recent measured success."""

    def __init__(self, config: CurriculumConfig | None = None, seed: int | None = None) -> None:
        self.config = config or CurriculumConfig()
        self.rng = np.random.default_rng(seed)
        self.families: dict[str, FamilyState] = {}

    def _state(self, family: str) -> FamilyState:
        if family not in self.families:
            n = len(self.config.levels)
            self.families[family] = FamilyState(p_hat=[self.config.prior] * n, counts=[0] * n)
        return self.families[family]

    def level_of(self, difficulty: float) -> int:
        levels = np.asarray(self.config.levels)
        return int(np.argmin(np.abs(levels - difficulty)))

    def weights(self, family: str) -> np.ndarray:
        """Sampling probabilities over levels 0..frontier (learnability-weighted, no replay)."""
        st = self._state(family)
        p = np.asarray(st.p_hat[: st.frontier + 1])
        w = p * (1 - p) + self.config.epsilon
        return np.asarray(w / w.sum())

    def sample(self, family: str) -> float:
        """The difficulty of the next task of this family."""
        st = self._state(family)
        if st.frontier > 0 and self.rng.random() < self.config.replay:
            return self.config.levels[int(self.rng.integers(0, st.frontier))]
        idx = int(self.rng.choice(st.frontier + 1, p=self.weights(family)))
        return self.config.levels[idx]

    def update(self, family: str, difficulty: float, success: float) -> None:
        """Record one episode's success at `difficulty`, then move the frontier if warranted."""
        st = self._state(family)
        self._record(st, self.level_of(difficulty), float(success), episodes=1)
        self._maybe_move(st)

    def update_batch(self, family: str, outcomes: Sequence[tuple[float, float, Hashable]]) -> None:
        """Record a batch of (difficulty, success, task) outcomes, then consider moving the frontier once.

        Why not `update` per episode: episodes of one task (a GRPO group) succeed or fail together, so fed one
        by one in group order a single lucky group of 8 moves p̂ from 0.3 to 0.7 and can push the frontier up
        mid-batch. Here each task counts once (its mean success) and the frontier is judged after the batch.
        """
        st = self._state(family)
        tasks: dict[Hashable, list[float]] = {}
        level: dict[Hashable, int] = {}
        for difficulty, success, task in outcomes:
            tasks.setdefault(task, []).append(float(success))
            level[task] = self.level_of(difficulty)
        for task, values in tasks.items():
            self._record(st, level[task], sum(values) / len(values), episodes=len(values))
        self._maybe_move(st)

    def _record(self, st: FamilyState, level: int, success: float, episodes: int) -> None:
        st.p_hat[level] = (1 - self.config.ema) * st.p_hat[level] + self.config.ema * success
        st.counts[level] += episodes
        st.since_move += episodes

    def _maybe_move(self, st: FamilyState) -> None:
        cfg = self.config
        if st.since_move < cfg.min_samples:
            return
        if st.frontier + 1 < len(cfg.levels) and st.p_hat[st.frontier] > cfg.up:
            st.frontier += 1
            st.since_move = 0
        elif st.frontier > 0 and st.p_hat[st.frontier - 1] < cfg.down:
            st.frontier -= 1
            st.since_move = 0

    def summary(self) -> dict[str, Any]:
        """Per family: frontier difficulty and p̂ per level (for metrics)."""
        return {
            fam: {
                "frontier": self.config.levels[st.frontier],
                "p_hat": {f"{lv:g}": round(p, 4) for lv, p in zip(self.config.levels, st.p_hat, strict=True)},
            }
            for fam, st in self.families.items()
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "families": {k: v.model_dump() for k, v in self.families.items()},
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.families = {k: FamilyState.model_validate(v) for k, v in state["families"].items()}
        self.rng.bit_generator.state = state["rng"]


def family_of(env: gym.Env) -> str:
    """The family an env belongs to (its `family` class attribute, else its id)."""
    base = env.unwrapped
    family = getattr(base, "family", None)
    if family and family not in {"puzzle", "puzzles"}:
        return str(family)
    return str(getattr(base, "env_id", env.spec.id if env.spec else type(base).__name__))


class CurriculumWrapper(gym.Wrapper):
    """Sets `options["difficulty"]` on reset (unless given) and feeds episode success back to the controller.

    Usable in any loop: `env = CurriculumWrapper(gym.make("envgym/Maze-v0"), DifficultyController())`.
    """

    def __init__(self, env: gym.Env, controller: DifficultyController | None = None) -> None:
        super().__init__(env)
        self.controller = controller or DifficultyController()
        self.family = family_of(env)
        self.current_difficulty: float | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        opts = dict(options or {})
        if "difficulty" not in opts:
            opts["difficulty"] = self.controller.sample(self.family)
        self.current_difficulty = float(opts["difficulty"])
        return self.env.reset(seed=seed, options=opts)  # type: ignore[no-any-return]

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if (terminated or truncated) and self.current_difficulty is not None and not info.get("infra_error"):
            self.controller.update(self.family, self.current_difficulty, float(bool(info.get("solved", False))))
            self.current_difficulty = None
        return obs, float(reward), bool(terminated), bool(truncated), info
