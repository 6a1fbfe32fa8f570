"""envgym puzzles vs GEM (`gem-llm`) and reasoning-gym, side by side on this machine, sizes matched.

    .venv/bin/python benchmarks/puzzles_vs_peers.py [--seconds 0.5] [--repeats 5] [--clock cpu|wall]

What is measured, per family both ship:
  * reset + first valid step: time per episode start (what a batched rollout pays per new task);
  * whole episodes of valid moves: time per step over complete episodes (reset included), so families whose
    episodes differ in length are still compared per unit of work; mean episode lengths are printed.
reasoning-gym is single-turn (a dataset): its "reset + step" is generating one item and scoring its answer.

Fairness rules (printed with the table):
  * sizes matched to GEM's "easy" presets (envgym gets the same native parameters through `params=`);
  * every system plays valid moves computed *outside* the timer: envgym's oracle, a planner per GEM game that
    reads the game's state, reasoning-gym's own answer; the timed loop only replays them;
  * each system runs in its own process (peers in a side venv `.peers/` created by this script from PyPI, so
    their pins never touch ours); one worker measures at a time, in interleaved order (repeat by repeat,
    family by family, systems rotated), so load drift hits every system alike; min and median over repeats.
The ratio is peer time / envgym time (> 1: envgym faster), taken on medians.
Clock: `cpu` (default) is each worker's own CPU time (`time.process_time`), so time a worker spends
descheduled by other jobs on a shared machine is not counted; `wall` is `time.perf_counter`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / ".peers"
PEER_PACKAGES = ["gem-llm==0.1.0", "reasoning-gym==0.1.25"]
PLANNED_SEEDS = 64

# family -> (envgym id, envgym params, GEM id, GEM kwargs, reasoning-gym dataset, its config). Sizes: GEM easy.
FAMILIES: dict[str, tuple[str, dict[str, Any], str | None, dict[str, Any], str | None, dict[str, Any]]] = {
    "GuessNumber 1-10": (
        "envgym/GuessNumber-v0",
        {"upper": 10, "slack": 0},
        "game:GuessTheNumber-v0-easy",
        {},
        None,
        {},
    ),
    "Mastermind 2x6": (
        "envgym/Mastermind-v0",
        {"pegs": 2, "colours": 6, "allow_repeats": False, "slack": 8},
        "game:Mastermind-v0-easy",
        {},
        None,
        {},
    ),
    "Minesweeper 5x5/5": (
        "envgym/Minesweeper-v0",
        {"rows": 5, "cols": 5, "mines": 5},
        "game:Minesweeper-v0-easy",
        {},
        None,
        {},
    ),
    "Hanoi 3 discs": (
        "envgym/Hanoi-v0",
        {"discs": 3},
        "game:TowerofHanoi-v0-easy",
        {},
        "tower_of_hanoi",
        {"min_disks": 3, "max_disks": 3, "min_pegs": 3, "max_pegs": 3},
    ),
    "Sliding 2x2": ("envgym/Sliding-v0", {"size": 2, "scramble": 3}, "game:FifteenPuzzle-v0-easy", {}, None, {}),
    "Sudoku 4x4/6 blanks": (
        "envgym/Sudoku-v0",
        {"size": 4, "blanks": 6},
        "game:Sudoku-v0-easy",
        {},
        "mini_sudoku",
        {"min_empty": 6, "max_empty": 6},
    ),
    "Sokoban 6x6/2 boxes": (
        "envgym/Sokoban-v0",
        {"width": 6, "height": 6, "boxes": 2},
        "game:Sokoban-v0-easy",
        {},
        "sokoban",
        {"min_w": 6, "max_w": 6, "min_h": 6, "max_h": 6, "min_boxes": 2, "max_boxes": 2},
    ),
}

NOTES = """fairness notes:
  - sizes: GEM easy presets; envgym gets the same native parameters (params=...); reasoning-gym configs set
    to the same sizes (mini_sudoku for 4x4). GEM's 2x2 sliding board is a random permutation (half are
    unsolvable: its episodes then run to the turn limit with valid moves); envgym's is scrambled by 3 moves.
  - actions: computed outside the timer and replayed (envgym oracle; GEM planners reading the game state;
    reasoning-gym's reference answer). GEM Sokoban has no planner here: its whole-episode cell is empty.
  - each system in its own process and venv, one at a time, interleaved. Wrappers: `gem.make` returns the
    bare env (no wrappers); `gym.make` adds OrderEnforcing + PassiveEnvChecker, so the table times envgym's
    `.unwrapped` env (bare against bare) and prints what the wrapper stack adds on a line of its own.
  - RNG: GEM reseeds Python's and NumPy's global generators on every reset(seed) (part of its time); envgym
    (puzzles v1) draws from a per-task counter-based generator that needs no seeding work.
  - parse memo: envgym's puzzles reuse the validated call of an action text seen before (bounded, per env
    class, frozen calls only); replayed plans repeat their texts, so the timed steps hit it, as an agent that
    writes the canonical JSON or short form does. GEM runs its regex on every step.
  - contract work only envgym does per step: validated tool call, structured feedback and info, observation
    sanitised into the text space; GEM and reasoning-gym do a regex and a string."""


# ----- planners (outside the timer) ---------------------------------------------------------------------------
def _episode(reset: Callable[[int], Any], step: Callable[[str], tuple], plan: Callable[[], str | None], seed: int):
    """Play one episode with `plan` from the live state; the actions, replayable after reset(seed)."""
    reset(seed)
    actions: list[str] = []
    while len(actions) < 500:
        action = plan()
        if action is None:
            break
        actions.append(action)
        if step(action)[2]:
            break
    return actions


def envgym_plans(env_id: str, params: dict[str, Any]) -> tuple[Any, list[tuple[int, list[str]]]]:
    import gymnasium as gym

    import envgym  # noqa: F401

    env: Any = gym.make(env_id, params=params).unwrapped
    plans = []
    for seed in range(PLANNED_SEEDS):
        actions = _episode(lambda s: env.reset(seed=s), env.step, env.oracle_action, seed)
        plans.append((seed, actions))
    return env, plans


def _gem_planner(game: str, env: Any) -> Callable[[], str | None]:
    """Valid next move from the GEM game's own state (GEM ships no solvers)."""
    import copy
    import itertools

    def guess() -> str:
        low, high = env.min_number, env.max_number
        for g in env.previous_guesses:
            low, high = (max(low, g + 1), high) if g < env.game_number else (low, min(high, g - 1))
        return f"\\boxed{{{(low + high) // 2}}}"

    def pegs(code: tuple[int, ...], guess: tuple[int, ...]) -> tuple[int, int]:
        black = sum(a == b for a, b in zip(code, guess, strict=True))
        common = sum(min(code.count(v), guess.count(v)) for v in set(guess))
        return black, common - black

    def mastermind() -> str:
        for cand in itertools.permutations(range(1, env.num_numbers + 1), env.code_length):
            if cand in env.previous_guesses:
                continue
            if all(pegs(cand, g) == pegs(tuple(env.game_code), g) for g in env.previous_guesses):
                return "\\boxed{" + " ".join(map(str, cand)) + "}"
        raise RuntimeError("no consistent code")

    def minesweeper() -> str | None:
        if env.first_reveal:
            return f"\\boxed{{reveal {env.rows // 2} {env.cols // 2}}}"
        for r in range(env.rows):
            for c in range(env.cols):
                if not env.revealed[r][c] and env.grid[r][c] != -1:
                    return f"\\boxed{{reveal {r} {c}}}"
        return None

    def hanoi() -> str:
        moves: list[tuple[str, str]] = []

        def solve(n: int, src: str, dst: str, via: str) -> None:
            if n:
                solve(n - 1, src, via, dst)
                moves.append((src, dst))
                solve(n - 1, via, dst, src)

        solve(env.num_disks, "A", "C", "B")
        src, dst = moves[env.turn_count]
        return f"\\boxed{{{src} {dst}}}"

    def sliding() -> str:
        def key(e: Any) -> tuple:
            return tuple(t for row in e.board for t in row)

        start, frontier, seen = copy.deepcopy(env), [], {key(env)}
        for d in ("up", "down", "left", "right"):
            nxt = copy.deepcopy(start)
            if nxt._move(d):
                frontier.append((nxt, d))
        first_valid = frontier[0][1]
        while frontier:
            state, first = frontier.pop(0)
            if state._is_solved():
                return f"\\boxed{{{first}}}"
            if key(state) in seen:
                continue
            seen.add(key(state))
            for d in ("up", "down", "left", "right"):
                nxt = copy.deepcopy(state)
                if nxt._move(d) and key(nxt) not in seen:
                    frontier.append((nxt, first))
        return f"\\boxed{{{first_valid}}}"  # unsolvable permutation: valid moves until the turn limit

    def sudoku() -> str | None:
        for r, row in enumerate(env.board):
            for c, value in enumerate(row):
                if value == 0:
                    return f"\\boxed{{{r + 1} {c + 1} {env.full_grid[r][c]}}}"
        return None

    def sokoban() -> str:
        return next(f"\\boxed{{{d}}}" for d in env.action_space if not env._would_collide_with_wall(d))

    planners = {
        "GuessNumber": guess,
        "Mastermind": mastermind,
        "Minesweeper": minesweeper,
        "Hanoi": hanoi,
        "Sliding": sliding,
        "Sudoku": sudoku,
        "Sokoban": sokoban,
    }
    return planners[game]


def gem_plans(family: str, gem_id: str, kwargs: dict[str, Any]) -> tuple[Any, list[tuple[int, list[str]]]]:
    import gem

    env = gem.make(gem_id, **kwargs)
    planner = _gem_planner(family.split()[0], env)
    plans = [(seed, _episode(lambda s: env.reset(seed=s), env.step, planner, seed)) for seed in range(PLANNED_SEEDS)]
    if family.startswith("Sokoban"):
        plans = [(seed, actions[:1]) for seed, actions in plans]  # first step only: no GEM Sokoban planner
    return env, plans


# ----- timed loops (inside the worker) --------------------------------------------------------------------
def time_episodes(
    reset: Callable[[int], Any],
    step: Callable[[str], Any],
    plans: list[tuple[int, list[str]]],
    mode: str,
    seconds: float,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Replay planned episodes for about `seconds` of `clock`; µs per episode start, or per step of whole
    episodes."""
    first = mode == "first"
    units = episodes = 0
    started = clock()
    while True:
        for seed, actions in plans:
            reset(seed)
            todo = actions[:1] if first else actions
            for action in todo:
                step(action)
            units += 1 if first else len(todo)
            episodes += 1
        elapsed = clock() - started
        if elapsed >= seconds:
            return {"us": elapsed / units * 1e6, "length": units / episodes}


def _seeded_reset(env: Any) -> Callable[[int], Any]:
    """`env.reset(seed=...)` as a one-argument callable (the same call shape for every system)."""

    def reset(seed: int) -> Any:
        return env.reset(seed=seed)

    return reset


def worker(system: str) -> None:
    """Serve measurement requests (one JSON line each) on stdin; plans are made once per family, untimed."""
    cache: dict[str, tuple[Callable[[int], Any], Callable[[str], Any], list[tuple[int, list[str]]]]] = {}
    wrapped: dict[str, tuple[Callable[[int], Any], Callable[[str], Any], list[tuple[int, list[str]]]]] = {}
    for line in sys.stdin:
        request = json.loads(line)
        family, mode = request["family"], request["mode"]
        clock = time.process_time if request.get("clock", "cpu") == "cpu" else time.perf_counter
        env_id, params, gem_id, gem_kwargs, rg_name, rg_config = FAMILIES[family]
        if request.get("wrapped"):  # the same env through gym.make's wrapper stack (plans from the bare one)
            if family not in wrapped:
                import gymnasium as gym

                wrapped_env = gym.make(env_id, params=params)
                _, plans = envgym_plans(env_id, params)
                wrapped[family] = (_seeded_reset(wrapped_env), wrapped_env.step, plans)
            reset, step, plans = wrapped[family]
            print(json.dumps(time_episodes(reset, step, plans, mode, float(request["seconds"]), clock)), flush=True)
            continue
        if family not in cache:
            if system == "envgym":
                env, plans = envgym_plans(env_id, params)
                cache[family] = (_seeded_reset(env), env.step, plans)
            elif system == "gem":
                env, plans = gem_plans(family, str(gem_id), gem_kwargs)
                cache[family] = (_seeded_reset(env), env.step, plans)
            else:
                import reasoning_gym

                ds = reasoning_gym.create_dataset(str(rg_name), **rg_config, size=100_000, seed=1)
                answers = [ds[i]["answer"] for i in range(PLANNED_SEEDS)]
                items: dict[str, Any] = {}

                def generate(i: int, ds: Any = ds, items: dict[str, Any] = items) -> None:
                    items["now"] = ds[i]

                def score(answer: str, ds: Any = ds, items: dict[str, Any] = items) -> None:
                    ds.score_answer(answer, items["now"])

                cache[family] = (generate, score, [(i, [answers[i]]) for i in range(PLANNED_SEEDS)])
        reset, step, plans = cache[family]
        result = time_episodes(reset, step, plans, mode, float(request["seconds"]), clock)
        print(json.dumps(result), flush=True)


# ----- coordinator ------------------------------------------------------------------------------------------
def ensure_peers() -> Path:
    python = PEERS / "bin" / "python"
    if not python.exists():
        print(f"creating {PEERS} (PyPI: {' '.join(PEER_PACKAGES)}) ...", flush=True)
        subprocess.run(["python3", "-m", "venv", str(PEERS)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
    return python


class Worker:
    def __init__(self, system: str, python: str) -> None:
        self.system = system
        self.proc = subprocess.Popen(
            [python, __file__, "--worker", system],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )

    def measure(
        self, family: str, mode: str, seconds: float, wrapped: bool = False, clock: str = "cpu"
    ) -> dict[str, float] | None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        request = {"family": family, "mode": mode, "seconds": seconds, "wrapped": wrapped, "clock": clock}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _cell(samples: list[float]) -> str:
    return f"{min(samples):8.1f} {statistics.median(samples):8.1f}" if samples else f"{'-':>8} {'-':>8}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=0.5, help="per measurement")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--families",
        nargs="*",
        default=list(FAMILIES),
        choices=list(FAMILIES),
        metavar="FAMILY",
        help="which rows (default: all): " + "; ".join(FAMILIES),
    )
    parser.add_argument(
        "--clock", choices=["cpu", "wall"], default="cpu", help="each worker's CPU time (default) or wall time"
    )
    parser.add_argument("--worker", choices=["envgym", "gem", "rgym"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    peers = str(ensure_peers())
    workers = [Worker("envgym", sys.executable), Worker("gem", peers), Worker("rgym", peers)]
    results: dict[tuple[str, str, str], list[float]] = {}
    lengths: dict[tuple[str, str, str], float] = {}
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average, {os.cpu_count()} cores)", flush=True)
    for repeat in range(args.repeats):
        for family in args.families:
            _, _, gem_id, _, rg_name, _ = FAMILIES[family]
            present = {"envgym": True, "gem": gem_id is not None, "rgym": rg_name is not None}
            for mode in ("first", "episode"):
                order = workers[repeat % 3 :] + workers[: repeat % 3]
                for w in order:
                    if not present[w.system] or (w.system == "rgym" and mode == "episode"):
                        continue
                    got = w.measure(family, mode, args.seconds, clock=args.clock)
                    if got is None:
                        raise SystemExit(f"{w.system} worker died on {family}")
                    if mode == "episode" and family.startswith("Sokoban") and w.system == "gem":
                        continue
                    results.setdefault((family, mode, w.system), []).append(got["us"])
                    lengths[(family, mode, w.system)] = got["length"]
                    if w.system == "envgym" and mode == "first":  # right after the bare run: same conditions
                        got = w.measure(family, mode, args.seconds, wrapped=True, clock=args.clock)
                        if got is None:
                            raise SystemExit(f"envgym worker died on {family} (wrapped)")
                        results.setdefault((family, mode, "envgym-wrapped"), []).append(got["us"])
        print(f"repeat {repeat + 1}/{args.repeats} done", flush=True)
    for w in workers:
        w.close()
    print(f"load after: {os.getloadavg()[0]:.2f}")
    _print_table(results, lengths, args)


def _ratio(results: dict[tuple[str, str, str], list[float]], family: str, mode: str, peer: str) -> str:
    ours, theirs = results.get((family, mode, "envgym")), results.get((family, mode, peer))
    if not ours or not theirs:
        return "-"
    return f"{statistics.median(theirs) / statistics.median(ours):.2f}x"


def _print_table(
    results: dict[tuple[str, str, str], list[float]], lengths: dict[tuple[str, str, str], float], args: Any
) -> None:
    clock = "CPU time of each worker" if args.clock == "cpu" else "wall time"
    print(f"\n{args.repeats} interleaved repeats of {args.seconds}s ({clock}) each; times in µs, min and median")
    head = f"{'family':22} {'envgym min/med':>17} {'GEM min/med':>17} {'x GEM':>6} {'rgym min/med':>17} {'x rgym':>7}"
    for mode, title in (("first", "reset + first valid step, µs per episode"), ("episode", "whole episodes, µs/step")):
        print(f"\n{title}\n{head}")
        for family in args.families:
            cells = [_cell(results.get((family, mode, s), [])) for s in ("envgym", "gem", "rgym")]
            print(
                f"{family:22} {cells[0]:>17} {cells[1]:>17} {_ratio(results, family, mode, 'gem'):>6} "
                f"{cells[2]:>17} {_ratio(results, family, mode, 'rgym'):>7}"
            )
        if mode == "episode":
            print(
                "mean steps per episode: "
                + "; ".join(
                    f"{f}: envgym {lengths.get((f, mode, 'envgym'), 0):.1f}, GEM {lengths.get((f, mode, 'gem'), 0):.1f}"
                    for f in args.families
                )
            )
    print(
        "\ngym.make's wrapper stack (OrderEnforcing + PassiveEnvChecker), reset + first step, median µs, "
        "wrapped vs bare envgym: "
        + "; ".join(
            f"{f.split()[0]} {statistics.median(w):.1f} vs {statistics.median(b):.1f}"
            for f in args.families
            if (w := results.get((f, "first", "envgym-wrapped"))) and (b := results.get((f, "first", "envgym")))
        )
    )
    print("\n" + NOTES)


if __name__ == "__main__":
    main()
