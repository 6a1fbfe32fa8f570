"""envgym/Sokoban-v0: the generator's guarantees (optimal plans,
solvable levels) and the rules (pushes, blocked moves, deadlocks)."""

from collections import deque

import numpy as np
import pytest

import envgym  # noqa: F401  (registers the ids)
from envgym.environments.puzzles.sokoban import Room, SokobanEnv


def load(env: SokobanEnv, level: str) -> None:
    """Replace the current level with a hand-drawn one (# wall, _ floor, . goal, $ box, * box on goal, @ you)."""
    rows = level.strip().splitlines()
    env.H, env.W = len(rows), len(rows[0])
    floor = goals = boxes = 0
    for r, row in enumerate(rows):
        for c, ch in enumerate(row):
            i = r * env.W + c
            if ch != "#":
                floor |= 1 << i
            if ch in ".*+":
                goals |= 1 << i
            if ch in "$*":
                boxes |= 1 << i
            if ch in "@+":
                env.player = i
    env.room, env.boxes = Room(env.W, floor, goals), boxes
    env.start = (env.player, env.boxes)
    env._oracle = {}
    env._hopeless = set()


def reference_pushes(room: Room, player: int, boxes: int) -> int:
    """Plain breadth-first search over (player square, box set): fewest pushes, by brute force."""
    w, floor = room.w, room.floor
    start = (player, boxes)
    best = {start: 0}
    queue = deque([(0, start)])
    done = None
    # 0-1 BFS: walking costs 0 pushes, pushing costs 1
    while queue:
        cost, (p, bx) = queue.popleft()
        if cost > best[(p, bx)]:
            continue
        if bx == room.goals:
            done = cost if done is None else min(done, cost)
            continue
        for e in (-w, w, -1, 1):
            q = p + e
            if not floor >> q & 1:
                continue
            if bx >> q & 1:
                t = q + e
                if not floor >> t & 1 or bx >> t & 1:
                    continue
                state, c2 = (q, bx ^ (1 << q) | (1 << t)), cost + 1
                if best.get(state, 1 << 30) > c2:
                    best[state] = c2
                    queue.append((c2, state))
            else:
                state = (q, bx)
                if best.get(state, 1 << 30) > cost:
                    best[state] = cost
                    queue.appendleft((cost, state))
    assert done is not None
    return done


@pytest.mark.parametrize("difficulty", [0.0, 0.5])
def test_solver_finds_the_fewest_pushes(difficulty: float) -> None:
    env = SokobanEnv()
    for seed in range(25):
        env.reset(seed=seed, options={"difficulty": difficulty})
        assert env.plan_pushes is not None
        player, boxes = env.start
        assert len(env.plan_pushes) == reference_pushes(env.room, player, boxes)


def test_levels_are_unsolved_at_start_and_fit_the_budget() -> None:
    env = SokobanEnv()
    means = []
    for d in (0.0, 0.5, 1.0):
        lengths = []
        for seed in range(30):
            env.reset(seed=seed, options={"difficulty": d})
            assert env.boxes != env.room.goals
            assert env.boxes.bit_count() == env.room.goals.bit_count() == env.params.boxes
            assert 0 < env.optimal < env.max_turns
            lengths.append(env.optimal)
        means.append(float(np.mean(lengths)))
    assert means[0] < means[1] < means[2]


def test_reverse_play_trace_is_a_solution() -> None:
    env = SokobanEnv()
    for seed in range(30):
        env.reset(seed=seed, options={"difficulty": 0.7})  # the tries below draw from where the level left off
        attempt = env._attempt(env.params)
        if attempt is None:
            continue
        room, player, boxes, forward = attempt
        for e in forward:
            dest = player + e
            assert room.floor >> dest & 1
            if boxes >> dest & 1:
                assert room.floor >> (dest + e) & 1 and not boxes >> (dest + e) & 1
                boxes = boxes ^ (1 << dest) | (1 << (dest + e))
            player = dest
        assert boxes == room.goals


def test_push_onto_goal_solves() -> None:
    env = SokobanEnv()
    env.reset(seed=0)
    load(env, "######\n#@$_.#\n######")
    env.step("right")
    _, reward, terminated, _, info = env.step("right")
    assert terminated and reward == 1.0 and info["solved"]
    assert "onto a goal" in info["feedback"]["summary"]


def test_push_into_a_corner_is_a_deadlock() -> None:
    env = SokobanEnv()
    env.reset(seed=0)
    load(env, "#####\n#@$_#\n#___#\n#__.#\n#####")
    obs, reward, terminated, _, info = env.step("right")
    assert terminated and reward == 0.0 and not info["solved"]
    assert "Deadlock" in info["feedback"]["summary"] and "corner" in info["feedback"]["summary"]
    assert "$" in obs


def test_deadlock_can_be_reported_without_ending() -> None:
    env = SokobanEnv()
    env.reset(seed=0, options={"params": {"end_on_deadlock": False}})
    load(env, "#####\n#@$_#\n#___#\n#__.#\n#####")
    _, _, terminated, _, info = env.step("right")
    assert not terminated and "Deadlock" in info["feedback"]["summary"]


def test_blocked_pushes_and_walls_are_explained() -> None:
    env = SokobanEnv()
    env.reset(seed=0)
    load(env, "######\n#@$#.#\n#_$__#\n#_$._#\n######")
    _, _, terminated, _, info = env.step("right")
    assert "is a wall" in info["feedback"]["summary"] and not terminated
    _, _, _, _, info = env.step("up")
    assert "Bumped into the wall" in info["feedback"]["summary"]
    env.step("down")  # walk to (2, 1)
    _, _, _, _, info = env.step("right")  # box at (2, 2) pushed into (2, 3): free
    assert "Pushed the box" in info["feedback"]["summary"]
    load(env, "######\n#@$$.#\n#____#\n#_._.#\n######")
    _, _, _, _, info = env.step("right")
    assert "another box" in info["feedback"]["summary"]


def test_board_legend() -> None:
    env = SokobanEnv()
    obs, _ = env.reset(seed=1)
    assert "@" in obs or "+" in obs
    assert "$" in obs and "#" in obs
    assert "Legend" in obs


def test_oracle_recovers_after_random_moves() -> None:
    env = SokobanEnv(max_turns=400)
    rng = np.random.default_rng(0)
    checked = 0
    for seed in range(40):
        env.reset(seed=seed, options={"difficulty": 0.5, "params": {"end_on_deadlock": False}})
        for _ in range(6):
            env.step(env.random_action(rng))
        if env.done or env.room.solve(env.player, env.boxes, cap=100_000) is None:
            continue
        checked += 1
        terminated = False
        while not terminated:
            *_, terminated, truncated, info = env.step(env.oracle_action())
            assert not truncated
        assert info["solved"]
    assert checked >= 10
