"""Sokoban: push every box `$` onto a goal `.`; you `@` can push one box at a time and never pull.

Generation is reverse play: carve a connected room, put the boxes on their goals, then walk the player
backwards at random, pulling boxes off the goals. Reverse play can only reach solvable positions and its
trace, replayed backwards, is a solution; a push-level BFS (over box sets and the player's reachable region,
pruning dead squares) then finds the fewest-pushes solution, whose walk length sets the turn budget. If the
BFS passes its node cap the reverse trace is the (deterministic) fallback plan.

Everything runs on Python integers as bit sets over the flat grid (floor, boxes, goals, the player's
region), so a flood fill is a handful of shifts and a reset takes well under a millisecond.

Difficulty grows the room (4×4 → 6×6 interior), the boxes (1 → 3), the reverse-play walk and the required
pushes, and shrinks the budget's slack (+200% → +30% of the plan's moves). Pushing a box onto a dead square
(a corner or a wall stretch with no goal: it can never reach a goal) ends the episode as failed.
"""

from __future__ import annotations

import functools
import heapq
import math
from typing import ClassVar, Self

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from envgym.actions import Tool, ToolCall
from envgym.core import Feedback, StepOutcome
from envgym.environments.puzzles.base import PuzzleEnv, PuzzleParams, lerp_int
from envgym.environments.puzzles.maze import DIRECTION_HELP, DIRECTIONS, Direction, parse_direction

SEARCH_NODE_CAP = 4000


class Push(Tool):
    """Move one square; walking into a box pushes it one square further if that square is free floor.
    Walls and a second box block the move (it costs the turn and nothing changes)."""

    model_config = ConfigDict(frozen=True)  # a call is a value: the env may reuse it for the same text
    name: ClassVar[str] = "move"
    direction: Direction = Field(description="which way to move or push: up, down, left or right")


class SokobanParams(PuzzleParams):
    width: int = Field(default=5, ge=3, le=12, description="interior width of the room")
    height: int = Field(default=5, ge=3, le=12, description="interior height of the room")
    boxes: int = Field(default=2, ge=1, le=6, description="number of boxes (and goals)")
    wall_density: float = Field(default=0.15, ge=0.0, le=0.4, description="fraction of interior turned to wall")
    reverse_steps: int = Field(default=30, ge=1, le=1000, description="length of the reverse-play walk")
    min_pushes: int = Field(default=1, ge=1, le=100, description="reject instances solvable in fewer pushes")
    slack_ratio: float = Field(default=0.8, ge=0.0, le=10.0, description="extra turns as a fraction of the plan")
    end_on_deadlock: bool = Field(default=True, description="a box pushed onto a dead square ends the episode")

    @model_validator(mode="after")
    def _room_for_boxes(self) -> Self:
        if self.boxes > self.width * self.height // 4:
            raise ValueError(f"{self.boxes} boxes do not fit a {self.width}x{self.height} room (at most area/4)")
        return self


def _shift(mask: int, k: int) -> int:
    return mask << k if k > 0 else mask >> -k


@functools.cache
def _interior(width: int, height: int) -> tuple[list[int], int]:
    """Interior squares of a room with a one-square wall border, as a list and as a bit set."""
    squares = [r * width + c for r in range(1, height - 1) for c in range(1, width - 1)]
    return squares, sum(1 << i for i in squares)


def _flood(seed: int, free: int, w: int) -> int:
    """Squares of `free` reachable from the `seed` squares (a bit set), by repeated 4-neighbour growth."""
    region = seed
    while True:
        grown = (region | region << 1 | region >> 1 | region << w | region >> w) & free
        if grown == region:
            return region
        region = grown


def _bits(mask: int) -> list[int]:
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


class Room:
    """Static geometry of one level as bit sets over the flat (height+2) x (width+2) grid."""

    def __init__(self, width: int, floor: int, goals: int) -> None:
        self.w = width
        self.floor = floor
        self.goals = goals
        self.steps = (-width, width, -1, 1)  # up, down, left, right
        self.live, self.push_dist = self._push_distances()

    def flood(self, seed: int, free: int) -> int:
        return _flood(seed, free, self.w)

    def _push_distances(self) -> tuple[int, list[int]]:
        """Squares from which a lone box can still be pushed onto some goal (the others are dead), and
        each square's fewest pushes to the nearest goal (a large number on dead squares)."""
        live, floor = self.goals, self.floor
        dist = [1 << 20] * (floor.bit_length() + self.w + 2)
        for i in _bits(live):
            dist[i] = 0
        k = 0
        while True:
            grown = live
            for e in self.steps:
                grown |= _shift(live, -e) & floor & _shift(floor, e)
            if grown == live:
                return live, dist
            k += 1
            for i in _bits(grown & ~live):
                dist[i] = k
            live = grown

    def distance(self, start: int, target: int, free: int) -> int:
        """Walking distance between two squares through `free` (-1 if unreachable)."""
        w, region, goal, d = self.w, 1 << start, 1 << target, 0
        while not region & goal:
            grown = (region | region << 1 | region >> 1 | region << w | region >> w) & free
            if grown == region:
                return -1
            region, d = grown, d + 1
        return d

    def path(self, start: int, target: int, free: int) -> list[int]:
        """Shortest walk (list of step offsets) between two squares through `free`."""
        w, layers, goal = self.w, [1 << start], 1 << target
        while not layers[-1] & goal:
            region = layers[-1]
            grown = (region | region << 1 | region >> 1 | region << w | region >> w) & free
            if grown == region:
                return []
            layers.append(grown)
        steps: list[int] = []
        cur = target
        for layer in reversed(layers[:-1]):
            for e in self.steps:
                if layer >> (cur - e) & 1:
                    steps.append(e)
                    cur -= e
                    break
        return steps[::-1]

    def solve(self, player: int, boxes: int, cap: int = SEARCH_NODE_CAP) -> list[tuple[int, int]] | None:
        """Fewest-pushes solution as (box square, step) pairs, or None (unsolvable or over `cap` expansions).

        A* over (box set, player region) states; the heuristic (each box's lone push distance to its nearest
        goal) is consistent, so the first goal popped is optimal. The player's region (a flood fill, the
        costly part) is computed only for states popped, not for every child pushed."""
        floor, live, goals, w, dist = self.floor, self.live, self.goals, self.w, self.push_dist
        closed: dict[tuple[int, int], tuple[tuple[int, int], int, int] | None] = {}
        seen: dict[tuple[int, int], int] = {(boxes, player): 0}
        root: tuple[int, int] = (0, 0)
        h0 = sum(dist[i] for i in _bits(boxes))
        heap = [(h0, 0, 0, h0, boxes, player, root, -1, 0)]
        counter = 0
        while heap:
            _, neg_g, _, h, bx, pl, parent, square, step = heapq.heappop(heap)
            reg = _flood(1 << pl, floor & ~bx, w)
            key = (bx, reg & -reg)
            if key in closed:
                continue
            closed[key] = None if square < 0 else (parent, square, step)
            if bx == goals:
                return self._unwind(closed, key)
            if len(closed) > cap:
                return None
            g = 1 - neg_g
            free_live = live & ~bx
            for e in self.steps:
                pushable = bx & (reg << e) & (free_live >> e) if e > 0 else bx & (reg >> -e) & (free_live << -e)
                while pushable:
                    b = pushable & -pushable
                    pushable ^= b
                    nbx = bx ^ b | (b << e if e > 0 else b >> -e)
                    sq = b.bit_length() - 1
                    if seen.get((nbx, sq), 1 << 30) <= g:
                        continue
                    seen[(nbx, sq)] = g
                    counter += 1
                    nh = h - dist[sq] + dist[sq + e]
                    heapq.heappush(heap, (g + nh, -g, counter, nh, nbx, sq, key, sq, e))
        return None

    @staticmethod
    def _unwind(parents: dict, key: tuple[int, int]) -> list[tuple[int, int]]:
        pushes = []
        while parents[key] is not None:
            key, square, e = parents[key]
            pushes.append((square, e))
        return pushes[::-1]

    def expand(self, player: int, boxes: int, pushes: list[tuple[int, int]]) -> list[int]:
        """Turn a push plan into single steps (walks between pushes included)."""
        steps: list[int] = []
        for square, e in pushes:
            steps += self.path(player, square - e, self.floor & ~boxes)
            steps.append(e)
            boxes = boxes ^ (1 << square) | (1 << (square + e))
            player = square
        return steps

    def plan_length(self, player: int, boxes: int, pushes: list[tuple[int, int]]) -> int:
        total = 0
        for square, e in pushes:
            total += self.distance(player, square - e, self.floor & ~boxes) + 1
            boxes = boxes ^ (1 << square) | (1 << (square + e))
            player = square
        return total


class SokobanEnv(PuzzleEnv):
    env_id: ClassVar[str] = "envgym/Sokoban-v0"
    family: ClassVar[str] = "sokoban"
    tools: ClassVar[tuple[type[Tool], ...]] = (Push,)
    Params: ClassVar[type[PuzzleParams]] = SokobanParams
    text_form_help: ClassVar[str] = DIRECTION_HELP

    params: SokobanParams

    def params_for(self, difficulty: float) -> SokobanParams:
        side = lerp_int(difficulty, 4, 6)
        return SokobanParams(
            width=side,
            height=side,
            boxes=lerp_int(difficulty, 1, 3),
            reverse_steps=lerp_int(difficulty, 12, 80),
            min_pushes=lerp_int(difficulty, 1, 4),
            slack_ratio=2.0 - 1.7 * difficulty,
        )

    # ----- generation ----------------------------------------------------------------------------------
    def _new_puzzle(self, params: SokobanParams) -> tuple[str, int]:  # type: ignore[override]
        self.W, self.H = params.width + 2, params.height + 2
        # Each box's lone push distance to the nearest goal is a lower bound on the pushes needed, so tries
        # are screened with it before the (costlier) search runs once on the chosen one.
        chosen: tuple[int, Room, int, int, list[int]] | None = None
        best: tuple[int, Room, int, int, list[int], list[tuple[int, int]] | None]
        for _ in range(12):
            attempt = self._attempt(params)
            if attempt is None:
                continue
            room, player, boxes, trace = attempt
            bound = sum(room.push_dist[i] for i in _bits(boxes))
            if chosen is None or bound > chosen[0]:
                chosen = (bound, room, player, boxes, trace)
            if bound >= params.min_pushes:
                break
        if chosen is None:
            best = self._fallback_level(params)
        else:
            _, room, player, boxes, trace = chosen
            best = (0, room, player, boxes, trace, room.solve(player, boxes))
        _, self.room, self.player, self.boxes, trace, pushes = best
        self.start = (self.player, self.boxes)
        if pushes is not None:
            self.plan_pushes: list[tuple[int, int]] | None = pushes
            self.optimal = self.room.plan_length(self.player, self.boxes, pushes)
            self._plan_steps: list[int] | None = None
        else:  # BFS gave up: the reverse-play trace is the plan
            self.plan_pushes = None
            self.optimal = len(trace)
            self._plan_steps = trace
        self._oracle: dict[tuple[int, int], int] = {}
        self._hopeless: set[tuple[int, int]] = set()
        budget = self.optimal + max(2, math.ceil(self.optimal * params.slack_ratio))
        intro = (
            f"Sokoban: push every box onto a goal in at most {budget} moves. You can push one box at a time "
            "(never pull), and a box cannot be pushed into a wall or another box.\n"
            "Legend: # wall, _ floor, . goal, $ box, * box on goal, @ you, + you on a goal. Rows count down "
            "from 0 at the top, columns right from 0.\n"
            "A box pushed into a corner (or along a wall with no goal) can never reach a goal: that ends the "
            "episode.\n"
            'Move with {"name": "move", "arguments": {"direction": "left"}} or just write `left`.\n\n' + self.board()
        )
        return intro, budget

    def _attempt(self, params: SokobanParams) -> tuple[Room, int, int, list[int]] | None:
        """One reverse-play try: (room, player square, box set, forward solution steps) or None."""
        rng = self.rng
        W = self.W
        interior, floor = _interior(W, self.H)
        n_walls = round(params.wall_density * len(interior))
        if n_walls:
            for k in rng.sample(range(len(interior)), min(n_walls * 2, len(interior))):
                if n_walls == 0:
                    break
                trial = floor & ~(1 << interior[k])
                if _flood(trial & -trial, trial, W) == trial:  # keep the floor connected
                    floor, n_walls = trial, n_walls - 1
        cells = _bits(floor)
        if len(cells) < params.boxes + 2:
            return None
        picks = rng.sample(range(len(cells)), params.boxes)
        goals = sum(1 << cells[i] for i in picks)
        # start next to a goal, so the first pulls come early instead of after a long wander
        near = _bits(floor & ~goals & (goals << 1 | goals >> 1 | goals << W | goals >> W)) or _bits(floor & ~goals)
        player = near[int(rng.random() * len(near))]
        room = Room(W, floor, goals)
        dist = room.push_dist
        boxes = goals
        steps = room.steps
        random = rng.random
        trace: list[int] = []  # reverse moves as step offsets; pulls marked by +1000
        free = floor & ~boxes
        # Walk the planned number of steps; if the boxes are still too close to their goals (by the push
        # distance lower bound), keep walking a while: cheaper than carving a new room.
        budget, walked = params.reverse_steps, 0
        while True:
            for _ in range(budget):
                moves = [e for e in steps if free >> (player + e) & 1]
                pulls = [e for e in moves if boxes >> (player - e) & 1]
                if pulls and random() < 0.75:
                    e = pulls[int(random() * len(pulls))]
                    behind = player - e
                    boxes = boxes ^ (1 << behind) | (1 << player)
                    free = floor & ~boxes
                    trace.append(e + 1000)
                elif moves:
                    e = moves[int(random() * len(moves))]
                    trace.append(e)
                else:
                    break
                player += e
            walked += budget
            if walked >= 3 * params.reverse_steps or sum(dist[i] for i in _bits(boxes)) >= params.min_pushes:
                break
            budget = max(1, params.reverse_steps // 4)
        if boxes == goals:
            return None
        forward = [-(e - 1000 if e > 500 else e) for e in reversed(trace)]
        return room, player, boxes, forward

    def _fallback_level(self, params: SokobanParams) -> tuple[int, Room, int, int, list[int], list[tuple[int, int]]]:
        """A level that always exists: one box one push left of its goal in the top row."""
        W = self.W
        floor = sum(1 << (r * W + c) for r in range(1, self.H - 1) for c in range(1, W - 1))
        goal, box, player = W + 1, W + 2, W + 3
        room = Room(W, floor, 1 << goal)
        return 1, room, player, 1 << box, [-1], [(box, -1)]

    # ----- views ---------------------------------------------------------------------------------------
    def board(self) -> str:
        room = self.room
        if getattr(self, "_template_of", None) is not room:  # static squares, drawn once per level
            self._template = ["_" if room.floor >> i & 1 else "#" for i in range(self.W * self.H)]
            for i in _bits(room.goals):
                self._template[i] = "."
            self._template_of = room
        chars = list(self._template)
        for i in _bits(self.boxes):
            chars[i] = "*" if chars[i] == "." else "$"
        chars[self.player] = "+" if chars[self.player] == "." else "@"
        W = self.W
        rows = ["".join(chars[r * W : (r + 1) * W]) for r in range(self.H)]
        on_goal = (self.boxes & room.goals).bit_count()
        total = self.boxes.bit_count()
        return f"Boxes on goals: {on_goal}/{total}. You are at {self.rc(self.player)}.\n" + "\n".join(rows)

    def rc(self, square: int) -> tuple[int, int]:
        return divmod(square, self.W)

    def _is_corner(self, square: int) -> bool:
        wall = [not self.room.floor >> (square + e) & 1 for e in self.room.steps]  # up, down, left, right
        return (wall[0] or wall[1]) and (wall[2] or wall[3])

    # ----- actions -------------------------------------------------------------------------------------
    def _text_form(self, text: str) -> ToolCall | None:
        direction = parse_direction(text)
        return ToolCall(name="move", arguments={"direction": direction}) if direction else None

    def _apply(self, call: Push) -> StepOutcome:  # type: ignore[override]
        room, e = self.room, self.room.steps[DIRECTIONS.index(call.direction)]
        dest = self.player + e
        if not room.floor >> dest & 1:
            return self._blocked(f"Bumped into the wall at {self.rc(dest)}; you stay at {self.rc(self.player)}.")
        note = f"Moved {call.direction} to {self.rc(dest)}."
        if self.boxes >> dest & 1:
            beyond = dest + e
            if not room.floor >> beyond & 1 or self.boxes >> beyond & 1:
                what = "a wall" if not room.floor >> beyond & 1 else "another box"
                return self._blocked(
                    f"Cannot push the box at {self.rc(dest)} {call.direction}: {self.rc(beyond)} is {what}. "
                    "Nothing moved."
                )
            self.boxes = self.boxes ^ (1 << dest) | (1 << beyond)
            on_goal = " onto a goal" if room.goals >> beyond & 1 else ""
            note = f"Pushed the box from {self.rc(dest)} to {self.rc(beyond)}{on_goal}."
            self.player = dest
            if self.boxes == room.goals:
                return self.solved(f"{note} All boxes are on goals: solved in {self.turn} moves!", self.board())
            if not room.live >> beyond & 1:
                where = "a corner" if self._is_corner(beyond) else "a wall stretch"
                why = (
                    f"Deadlock: the box at {self.rc(beyond)} is stuck in {where} with no goal and can never reach one."
                )
                if self.params.end_on_deadlock:
                    return self.failed(f"{note} {why} Episode over.", self.board())
                note += " " + why
        self.player = dest
        left = self.max_turns - self.turn
        return StepOutcome(feedback=Feedback(summary=f"{note} {left} moves left."), state=self.board())

    def _blocked(self, summary: str) -> StepOutcome:
        return StepOutcome(
            feedback=Feedback(summary=summary, error="blocked move (this cost a turn)"), state=self.board()
        )

    def _valid_steps(self) -> list[int]:
        room, valid = self.room, []
        for k, e in enumerate(room.steps):
            dest = self.player + e
            if not room.floor >> dest & 1:
                continue
            if self.boxes >> dest & 1 and (not room.floor >> (dest + e) & 1 or self.boxes >> (dest + e) & 1):
                continue
            valid.append(k)
        return valid

    def oracle_action(self) -> str:
        state = (self.player, self.boxes)
        if state not in self._oracle:
            region = self.room.flood(1 << self.player, self.room.floor & ~self.boxes)
            where = (self.boxes, region & -region)  # every square of the player's region is equivalent
            if where not in self._hopeless:
                self._oracle = self._plan_from(state)
                if state not in self._oracle:
                    self._hopeless.add(where)  # remembered, so a stuck oracle does not search every turn
        k = self._oracle.get(state)
        if k is None:  # unsolvable from here (or too hard for the capped search): make any legal move
            valid = self._valid_steps()
            k = valid[0] if valid else 0
        return Push(direction=DIRECTIONS[k]).to_action()

    def _plan_from(self, state: tuple[int, int]) -> dict[tuple[int, int], int]:
        """Map each state along a solution from `state` to the index of the direction to take there."""
        room = self.room
        player, boxes = state
        if state == self.start and self._plan_steps is None and self.plan_pushes is not None:
            self._plan_steps = room.expand(player, boxes, self.plan_pushes)
        if state == self.start and self._plan_steps is not None:
            steps = self._plan_steps
        else:
            pushes = room.solve(player, boxes, cap=SEARCH_NODE_CAP * 5)
            if pushes is None:
                return {}
            steps = room.expand(player, boxes, pushes)
        plan: dict[tuple[int, int], int] = {}
        for e in steps:
            plan[(player, boxes)] = room.steps.index(e)
            dest = player + e
            if boxes >> dest & 1:
                boxes = boxes ^ (1 << dest) | (1 << (dest + e))
            player = dest
        return plan

    def random_action(self, rng: np.random.Generator) -> str:
        valid = self._valid_steps() or [0, 1, 2, 3]
        return Push(direction=DIRECTIONS[valid[int(rng.integers(len(valid)))]]).to_action()
