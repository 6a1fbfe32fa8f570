"""Mastermind: find the hidden colour code; each guess is scored with black pegs (right colour, right place)
and white pegs (right colour, wrong place).

Difficulty raises the code length (3 → 5 pegs) and the palette (4 → 8 colours), i.e. 64 → 32,768 codes,
removes the turn budget's slack (+3 → +0 guesses) and, above 0.25, the hint that counts the codes still
consistent with the feedback. The solver is the "first consistent code" strategy with a Knuth-style opening
(AABB...): at generation it plays against the secret, and the budget is its guess count plus slack, so the
oracle provably fits. Code spaces and the solver's game tree are cached per (pegs, colours, repeats), so
a reset costs a table walk, not a search.
"""

from __future__ import annotations

import functools
import re
from typing import ClassVar, Self

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from envgym.actions import Tool, ToolCall
from envgym.core import Feedback, StepOutcome
from envgym.environments.puzzles.base import PuzzleEnv, PuzzleParams, lerp_int

COLOURS = "RGBYOPCWMK"
COLOUR_NAMES = ("red", "green", "blue", "yellow", "orange", "purple", "cyan", "white", "magenta", "black")
_MEMO_LIMIT = 100_000
_READS_LIMIT, _READ_CHARS = 4_096, 40  # guess texts kept per code space, and the longest kept
_EAGER_LIMIT = 5_000  # code spaces up to this size get the solver's whole game tree at first use (<0.1 s)
_SEPARATORS = re.compile(r"[\s,\-]")
_TEXT_FORM = re.compile(r"(?:guess\s*:?\s*)?([A-Za-z](?:[\s,\-]*[A-Za-z]){0,11})\.?", re.I)


class GuessCode(Tool):
    """Guess the hidden code: a string of colour letters, one per peg (e.g. "RGBY"). The answer says how
    many pegs have the right colour in the right place (black) and the right colour in the wrong place
    (white)."""

    model_config = ConfigDict(frozen=True)  # a call is a value: the env may reuse it for the same text
    name: ClassVar[str] = "guess"
    code: str = Field(description="one colour letter per peg, e.g. RGBY; letters as listed in the task")


class MastermindParams(PuzzleParams):
    pegs: int = Field(default=4, ge=2, le=6, description="code length")
    colours: int = Field(default=6, ge=2, le=10, description="palette size (letters RGBYOPCWMK)")
    allow_repeats: bool = Field(default=True, description="the code may repeat colours")
    slack: int = Field(default=2, ge=0, le=50, description="guesses allowed beyond the solver's count")
    show_consistent: bool = Field(default=False, description="say how many codes remain consistent")

    @model_validator(mode="after")
    def _enough_colours(self) -> Self:
        if not self.allow_repeats and self.colours < self.pegs:
            raise ValueError("without repeats, colours must be at least pegs")
        return self


class CodeSpace:
    """All codes of one shape, with the solver's game tree memoised by feedback history."""

    def __init__(self, pegs: int, colours: int, repeats: bool) -> None:
        self.pegs, self.colours = pegs, colours
        idx = np.arange(colours**pegs)
        codes = (idx[:, None] // colours ** np.arange(pegs - 1, -1, -1)) % colours  # lexicographic order
        if not repeats:
            codes = codes[np.array([len(set(row)) == pegs for row in codes.tolist()], dtype=bool)]
        self.codes = codes.astype(np.int8)
        self.counts = np.stack([(self.codes == c).sum(1) for c in range(colours)], axis=1).astype(np.int8)
        opening = [min(i // 2, colours - 1) for i in range(pegs)] if repeats else list(range(pegs))
        self.opening = tuple(opening)
        # Python tuples make the per-reset work NumPy-free; very large spaces (a user override) build them lazily.
        self.tuples: list[tuple[int, ...]] | None = (
            [tuple(row) for row in self.codes.tolist()] if len(self.codes) <= 200_000 else None
        )
        # feedback history along the solver's play -> (codes still consistent, the solver's next guess)
        self.root = (np.arange(len(self.codes)), self.opening)
        self.memo: dict[tuple[int, ...], tuple[np.ndarray, tuple[int, ...]]] = {(): self.root}
        self.counts_by_secret: dict[int, int] = {}
        self.reads: dict[str, tuple[str, tuple[int, ...] | None, str]] = {}  # see `read`
        if len(self.codes) <= _EAGER_LIMIT:
            self._build_tree()

    def _build_tree(self) -> None:
        """Play the solver against every secret at once (splitting candidates by feedback), so resets only
        look numbers up. Single-candidate branches are not stored: `child` makes them on demand."""
        win = self.pegs * (self.pegs + 1)
        stack: list[tuple[int, ...]] = [()]
        while stack:
            key = stack.pop()
            cands, guess = self.memo[key]
            depth = len(key) + 1
            fbs = self.scores(guess, cands)
            order = np.argsort(fbs, kind="stable")  # stable: each group stays in code order
            sorted_fbs = fbs[order]
            cuts = np.flatnonzero(np.diff(sorted_fbs)) + 1
            for group, fb in zip(np.split(cands[order], cuts), sorted_fbs[np.r_[0, cuts]].tolist(), strict=True):
                if fb == win:
                    self.counts_by_secret[int(group[0])] = depth
                elif len(group) == 1:
                    self.counts_by_secret[int(group[0])] = depth + 1
                else:
                    new = (*key, fb)
                    self.memo[new] = (group, self.code(int(group[0])))
                    stack.append(new)

    def read(self, code: str) -> tuple[str, tuple[int, ...] | None, str]:
        """A guess as written -> (its letters, the code as colour indices or None, what is wrong with it or "").
        A pure function of the text for this shape, and agents repeat their guesses: short texts are kept
        (bounded), so a guess costs one lookup instead of a case fold, a palette check and an index per peg."""
        hit = self.reads.get(code)
        if hit is None:
            # letters only (the common case) means no separator to strip: skip the regex
            letters = code.upper() if code.isalpha() else _SEPARATORS.sub("", code).upper()
            palette = COLOURS[: self.colours]
            # `strip` leaves something exactly when a letter is outside the palette (one C call)
            bad = sorted({ch for ch in letters if ch not in palette}) if letters.strip(palette) else []
            problems = []
            if len(letters) != self.pegs:
                problems.append(f"the code needs {self.pegs} letters, got {len(letters)}")
            if bad:
                problems.append(f"{', '.join(repr(ch) for ch in bad)} not in the palette {palette}")
            hit = (letters, None if problems else tuple(map(palette.index, letters)), "; ".join(problems))
            if len(code) <= _READ_CHARS:
                if len(self.reads) >= _READS_LIMIT:
                    self.reads.clear()
                self.reads[code] = hit
        return hit

    def code(self, index: int) -> tuple[int, ...]:
        if self.tuples is None:
            return tuple(self.codes[index].tolist())
        return self.tuples[index]

    def scores(self, guess: tuple[int, ...], cands: np.ndarray) -> np.ndarray:
        """Feedback of every candidate (as secret) against `guess`, encoded black * (pegs + 1) + white."""
        g = np.array(guess, dtype=np.int8)
        gcount = np.bincount(g, minlength=self.colours)[: self.colours].astype(np.int8)
        sub = self.codes[cands]
        blacks = (sub == g).sum(1)
        whites = np.minimum(self.counts[cands], gcount).sum(1) - blacks
        return blacks * (self.pegs + 1) + whites  # type: ignore[no-any-return]

    def strategy_guess(self, key: tuple[int, ...]) -> tuple[int, ...]:
        return self.memo[key][1]

    def child(self, key: tuple[int, ...], fb: int) -> tuple[int, ...]:
        """Follow the solver's tree: the node after its guess at `key` was answered with `fb`."""
        new = (*key, fb)
        if new not in self.memo:
            cands, guess = self.memo[key]
            cands = cands[self.scores(guess, cands) == fb]
            if len(self.memo) >= _MEMO_LIMIT:
                self.memo = {(): self.root, key: self.memo[key]}
            self.memo[new] = (cands, self.code(int(cands[0])) if len(cands) else guess)
        return new

    def solver_guesses(self, index: int) -> int:
        """How many guesses the solver needs against code `index` (the last one is the secret itself)."""
        count = self.counts_by_secret.get(index)
        if count is None:
            secret = self.code(index)
            key: tuple[int, ...] = ()
            count = 1
            while (guess := self.memo[key][1]) != secret:
                key = self.child(key, score(guess, secret, self.pegs))
                count += 1
            self.counts_by_secret[index] = count
        return count


@functools.cache
def code_space(pegs: int, colours: int, repeats: bool) -> CodeSpace:
    return CodeSpace(pegs, colours, repeats)


@functools.cache
def _palette_texts(colours: int, pegs: int) -> tuple[str, str]:
    """The intro's palette listing and example code (the same for every task of one shape)."""
    palette = ", ".join(f"{COLOURS[i]}={COLOUR_NAMES[i]}" for i in range(colours))
    return palette, "".join(COLOURS[i % colours] for i in range(pegs))


@functools.lru_cache(maxsize=1024)
def _intro(pegs: int, colours: int, repeats: bool, budget: int) -> str:
    """The task text: the same for every secret of one shape and budget."""
    palette, example = _palette_texts(colours, pegs)
    rule = "may repeat colours" if repeats else "uses each colour at most once"
    return (
        f"Mastermind: find the hidden code of {pegs} pegs in at most {budget} guesses.\n"
        f"Colours: {palette}. The code {rule}.\n"
        "Each guess is scored: black = right colour in the right place, white = right colour in the wrong "
        "place.\n"
        f'Guess with {{"name": "guess", "arguments": {{"code": "{example}"}}}} or just write `{example}`.'
    )


_SCORES: dict[tuple[tuple[int, ...], tuple[int, ...], int], int] = {}
_SCORE_CACHE_LIMIT = 20_000  # (guess, secret) pairs: about 3 MB when full


def score(guess: tuple[int, ...], secret: tuple[int, ...], pegs: int) -> int:
    """Encoded feedback black * (pegs + 1) + white of one guess against one secret (memoised: ~3 µs to count,
    and agents keep playing the same few codes)."""
    key = (guess, secret, pegs)
    fb = _SCORES.get(key)
    if fb is None:
        blacks = sum(a == b for a, b in zip(guess, secret, strict=True))
        common = sum(min(guess.count(c), secret.count(c)) for c in set(guess))
        fb = blacks * (pegs + 1) + common - blacks
        if len(_SCORES) >= _SCORE_CACHE_LIMIT:
            _SCORES.clear()
        _SCORES[key] = fb
    return fb


class MastermindEnv(PuzzleEnv):
    env_id: ClassVar[str] = "envgym/Mastermind-v0"
    family: ClassVar[str] = "mastermind"
    tools: ClassVar[tuple[type[Tool], ...]] = (GuessCode,)
    Params: ClassVar[type[PuzzleParams]] = MastermindParams
    text_form_help: ClassVar[str] = "the code as colour letters, e.g. `RGBY` (or `guess R G B Y`)"

    params: MastermindParams

    def params_for(self, difficulty: float) -> MastermindParams:
        return MastermindParams(
            pegs=lerp_int(difficulty, 3, 5),
            colours=lerp_int(difficulty, 4, 8),
            slack=lerp_int(difficulty, 3, 0),
            show_consistent=difficulty <= 0.25,
        )

    def _new_puzzle(self, params: MastermindParams) -> tuple[str, int]:  # type: ignore[override]
        self.space = code_space(params.pegs, params.colours, params.allow_repeats)
        index = self.only_draw(len(self.space.codes))  # = rng.randrange(codes), the task's only draw
        self.secret = self.space.code(index)
        self.history: list[tuple[tuple[int, ...], int]] = []
        self._board_lines: list[str] = []  # one per guess in `history`, appended as guesses come
        self._consistent: np.ndarray | None = None
        self.solver_count = self.space.solver_guesses(index)
        budget = self.solver_count + params.slack
        return _intro(params.pegs, params.colours, params.allow_repeats, budget), budget

    # ----- views ---------------------------------------------------------------------------------------
    def spell(self, code: tuple[int, ...]) -> str:
        return "".join(COLOURS[c] for c in code)

    def pegs_of(self, fb: int) -> tuple[int, int]:
        return divmod(fb, self.params.pegs + 1)

    def board(self) -> str:
        self._sync_lines()
        return "Guesses so far:\n" + "\n".join(self._board_lines)

    def _sync_lines(self) -> None:
        if len(self._board_lines) != len(self.history):  # history changed behind our back: rebuild the lines
            self._board_lines = [self._board_line(i, self.spell(g), fb) for i, (g, fb) in enumerate(self.history)]

    def _board_line(self, i: int, spelled: str, fb: int) -> str:
        b, w = self.pegs_of(fb)
        return f"{i + 1:>2}. {spelled}  black {b}, white {w}"

    def consistent(self) -> np.ndarray:
        """Indices of the codes consistent with all feedback so far (walks the cached solver tree while the
        history follows the solver, filters from there on)."""
        if self._consistent is None:
            space = self.space
            key: tuple[int, ...] | None = ()
            cands = space.memo[()][0]
            for guess, fb in self.history:
                if key is not None and guess == space.strategy_guess(key):
                    key = space.child(key, fb)
                    cands = space.memo[key][0]
                else:
                    key = None
                    cands = cands[space.scores(guess, cands) == fb]
            self._consistent = cands
        return self._consistent

    # ----- actions -------------------------------------------------------------------------------------
    def _text_form(self, text: str) -> ToolCall | None:
        match = _TEXT_FORM.fullmatch(text.strip())
        return ToolCall(name="guess", arguments={"code": match.group(1)}) if match else None

    def _apply(self, call: GuessCode) -> StepOutcome:  # type: ignore[override]
        p = self.params
        letters, guess, problems = self.space.read(call.code)
        if guess is None:
            return StepOutcome(
                feedback=Feedback(summary="Invalid code; not scored (this cost a turn).", error=problems),
                state=self.board() if self.history else None,
            )
        pegs, history = p.pegs, self.history
        fb = score(guess, self.secret, pegs)
        contradicts = [i + 1 for i, (g, f) in enumerate(history) if score(guess, g, pegs) != f] if history else None
        self._sync_lines()
        self._board_lines.append(self._board_line(len(history), letters, fb))  # letters: the guess spelled
        history.append((guess, fb))
        self._consistent = None
        if guess == self.secret:
            return self.solved(f"{letters} is the code! Solved in {self.turn} guesses.", self.board())
        b, w = divmod(fb, pegs + 1)  # = pegs_of(fb)
        left = self.max_turns - self.turn
        details = None
        if contradicts:
            details = (f"{letters} could not have been the code: it contradicts the feedback to guess(es) "
                       f"{', '.join(map(str, contradicts))}.")  # fmt: skip
        hint = None
        if p.show_consistent:
            cands = self.consistent()
            hint = f"{len(cands)} codes are still consistent with all feedback"
            if len(cands) <= 6:
                hint += ": " + ", ".join(self.spell(self.space.code(int(i))) for i in cands)
        # positional (summary, details, error, hint): a keyword call into the dataclasses' __init__ costs about
        # twice as much (hot path)
        summary = f"{letters}: {b} black, {w} white. {left} guesses left."
        return StepOutcome(Feedback(summary, details, None, hint), self.board())

    def oracle_action(self) -> str:
        guess = self.space.opening if not self.history else self.space.code(int(self.consistent()[0]))
        return GuessCode(code=self.spell(guess)).to_action()

    def random_action(self, rng: np.random.Generator) -> str:
        index = int(rng.integers(len(self.space.codes)))
        return GuessCode(code=self.spell(self.space.code(index))).to_action()
