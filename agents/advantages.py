"""Advantage estimators: one function each, looked up by name in `ESTIMATORS`.

Why a table: swapping or adding an estimator touches one function and one table entry; the trainer only ever
calls `ESTIMATORS[name](batch)` and gets per-episode, per-turn advantages back. Episode-level estimators
(NOTES-RL §11.3) compute one advantage per episode from its group and broadcast it to every turn; `rebn`
works per turn (returns-to-go normalised over the batch, GEM).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

EPS = 1e-6


@dataclass
class AdvantageBatch:
    """What every estimator may use: per episode its return, its group (task seed) and its turn rewards."""

    returns: Sequence[float]
    groups: Sequence[int]
    turn_rewards: Sequence[Sequence[float]]
    gamma: float = 1.0


GroupFn = Callable[[np.ndarray, float], np.ndarray]
"""(returns of one group, std of all returns in the batch) -> advantages of that group."""


def _rloo(rg: np.ndarray, batch_std: float) -> np.ndarray:
    n = len(rg)
    return np.zeros_like(rg) if n < 2 else rg - (rg.sum() - rg) / (n - 1)


def _grpo(rg: np.ndarray, batch_std: float) -> np.ndarray:
    std = rg.std()
    return np.zeros_like(rg) if std < EPS else (rg - rg.mean()) / (std + EPS)


def _drgrpo(rg: np.ndarray, batch_std: float) -> np.ndarray:
    return rg - rg.mean()


def _lite(rg: np.ndarray, batch_std: float) -> np.ndarray:
    return np.zeros_like(rg) if batch_std < EPS else (rg - rg.mean()) / (batch_std + EPS)


GROUP_ESTIMATORS: dict[str, GroupFn] = {"rloo": _rloo, "grpo": _grpo, "drgrpo": _drgrpo, "lite": _lite}


def group_advantages(returns: Sequence[float], groups: Sequence[int], estimator: str = "rloo") -> list[float]:
    """One advantage per episode; `groups[i]` names the task seed episode i was run on (std: population)."""
    if estimator not in GROUP_ESTIMATORS:
        raise ValueError(f"{estimator!r} is not an episode-level estimator; choose one of {sorted(GROUP_ESTIMATORS)}")
    fn = GROUP_ESTIMATORS[estimator]
    r = np.asarray(returns, dtype=np.float64)
    g = np.asarray(groups)
    adv = np.zeros_like(r)
    batch_std = float(r.std()) if len(r) else 0.0
    for key in np.unique(g):
        idx = np.nonzero(g == key)[0]
        adv[idx] = fn(r[idx], batch_std)
    return [float(a) for a in adv]


def rebn_advantages(turn_rewards: Sequence[Sequence[float]], gamma: float = 1.0) -> list[list[float]]:
    """Per-turn returns-to-go G_t = Σ_k γ^(k−t) r_k, normalised over every turn in the batch (ReBN)."""
    togo: list[list[float]] = []
    for rewards in turn_rewards:
        g, out = 0.0, []
        for reward in reversed(rewards):
            g = float(reward) + gamma * g
            out.append(g)
        togo.append(out[::-1])
    flat = np.asarray([x for t in togo for x in t], dtype=np.float64)
    if flat.size == 0:
        return [[] for _ in togo]
    mean, std = flat.mean(), flat.std()
    return [[0.0 if std < EPS else (x - mean) / (std + EPS) for x in t] for t in togo]


def _broadcast(name: str) -> Callable[[AdvantageBatch], list[list[float]]]:
    def estimate(batch: AdvantageBatch) -> list[list[float]]:
        adv = group_advantages(batch.returns, batch.groups, name)
        return [[a] * len(t) for a, t in zip(adv, batch.turn_rewards, strict=True)]

    estimate.__doc__ = f"`{name}` per episode, the same value on every turn."
    return estimate


def _rebn(batch: AdvantageBatch) -> list[list[float]]:
    return rebn_advantages(batch.turn_rewards, batch.gamma)


ESTIMATORS: dict[str, Callable[[AdvantageBatch], list[list[float]]]] = {
    **{name: _broadcast(name) for name in GROUP_ESTIMATORS},
    "rebn": _rebn,
}
