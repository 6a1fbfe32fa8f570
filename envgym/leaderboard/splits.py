"""Task splits the server ranks on: which seeds, reset options and env kwargs a submission must have used.

Why fixed splits: a ranking is only fair if everyone faced the same tasks under the same budgets. A bundle
whose env configuration differs from its split (other seeds, an easier difficulty, `instance_id` picked by
hand, a larger `max_turns`) is rejected before grading.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from envgym.leaderboard.bundle import EnvSpec


class SplitSpec(BaseModel):
    name: str
    seeds: list[int] = Field(description="every env in a submission must cover exactly these seeds")
    options: dict[str, Any] = Field(default_factory=lambda: {"difficulty": 0.5})
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    envs: list[str] | None = Field(default=None, description="env ids allowed on this split; None = any registered")

    def check(self, spec: EnvSpec) -> list[str]:
        """Why `spec` does not belong to this split (empty when it does)."""
        problems = []
        if self.envs is not None and spec.env_id not in self.envs:
            problems.append(f"{spec.env_id} is not part of split {self.name!r} (allowed: {', '.join(self.envs)})")
        if sorted(spec.seeds) != sorted(self.seeds):
            problems.append(
                f"{spec.env_id}: split {self.name!r} needs seeds {_ranges(self.seeds)}, got {_ranges(spec.seeds)}"
            )
        if spec.options != self.options:
            problems.append(f"{spec.env_id}: split {self.name!r} needs options {self.options}, got {spec.options}")
        if spec.env_kwargs != self.env_kwargs:
            problems.append(
                f"{spec.env_id}: split {self.name!r} needs env kwargs {self.env_kwargs}, got {spec.env_kwargs}"
            )
        return problems


def _ranges(seeds: list[int]) -> str:
    s = sorted(seeds)
    if s and s == list(range(s[0], s[-1] + 1)):
        return f"{s[0]}..{s[-1]}" if len(s) > 1 else str(s[0])
    return str(s[:20]) + ("..." if len(s) > 20 else "")


DEFAULT_SPLITS: dict[str, SplitSpec] = {
    "dev": SplitSpec(name="dev", seeds=list(range(10))),
    "test": SplitSpec(name="test", seeds=list(range(1000, 1050))),
}


def load_splits(path: Path | None) -> dict[str, SplitSpec]:
    """Splits from a JSON file (a list of SplitSpec objects), or the defaults."""
    if path is None:
        return dict(DEFAULT_SPLITS)
    data = json.loads(path.read_text(encoding="utf-8"))
    return {s.name: s for s in (SplitSpec.model_validate(item) for item in data)}
