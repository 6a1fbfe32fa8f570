"""`envgym/ToolUse-Lookup-v0`: multi-hop questions over a generated knowledge base of people, companies,
cities and countries, answered with `search` (keyword search over pages) and `lookup` (read a page by title).

Difficulty raises the number of hops (pages that must be read in a chain, 1 → 4), adds near-duplicate
entities (same names with a middle initial) and misleading facts ("used to work at"), and at the top end
describes the starting entity instead of naming it, so the agent must search for it first.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from pydantic import Field

from envgym.actions import Tool
from envgym.core import Feedback, StepOutcome, handles
from envgym.environments.tools.answers import Expected, SubmitAnswer
from envgym.environments.tools.base import ToolParams, ToolTask, ToolTaskEnv, lerp_int
from envgym.environments.tools.vocab import (
    CITIES,
    COMPANY_HEADS,
    COMPANY_KINDS,
    COMPANY_TAILS,
    COUNTRIES,
    HOBBIES,
    full_names,
)

_TOKEN = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset({"the", "a", "an", "of", "in", "is", "was", "at", "and", "to", "who", "which", "what"})


class Search(Tool):
    """Keyword search over the knowledge base; returns up to 5 page titles with a snippet, best first."""

    name: ClassVar[str] = "search"
    query: str = Field(description="keywords, e.g. a name or a distinctive fact")


class Lookup(Tool):
    """Read the full page with this exact title (case-insensitive)."""

    name: ClassVar[str] = "lookup"
    title: str = Field(description="a page title, e.g. from search results")


class LookupParams(ToolParams):
    hops: int = Field(default=2, ge=1, le=5, description="pages that must be read in a chain")
    people: int = Field(default=20, ge=6, le=200)
    duplicates: int = Field(default=2, ge=0, le=20, description="near-duplicate entities (middle initials)")
    misleading_facts: bool = Field(default=False, description="pages also state former employers/homes")
    describe_start: bool = Field(default=False, description="describe the first entity instead of naming it")
    candidates: int = Field(default=5, ge=1, le=20)


@dataclass
class Entity:
    title: str
    kind: str  # person | company | city | country
    facts: dict[str, str] = field(default_factory=dict)  # relation -> title or value
    misleading: dict[str, str] = field(default_factory=dict)


# relation -> (from kind, to kind or None for a value, phrase used inside a question)
RELATIONS: dict[str, tuple[str, str | None, str]] = {
    "works_at": ("person", "company", "the company that {x} works at"),
    "born_in": ("person", "city", "the city where {x} was born"),
    "headquarters": ("company", "city", "the city where {x} has its headquarters"),
    "founder": ("company", "person", "the founder of {x}"),
    "country": ("city", "country", "the country that {x} is in"),
    "mayor": ("city", "person", "the mayor of {x}"),
    "capital": ("country", "city", "the capital of {x}"),
}
# terminal attributes: relation -> (kind, answer kind, question)
ATTRIBUTES: dict[str, tuple[str, str, str]] = {
    "hobby": ("person", "text", "What is the hobby of {x}?"),
    "birth_year": ("person", "number", "In which year was {x} born?"),
    "founded": ("company", "number", "In which year was {x} founded?"),
    "industry": ("company", "text", "What industry is {x} in?"),
    "population": ("city", "number", "What is the population of {x}?"),
    "currency": ("country", "text", "What is the currency of {x}?"),
}
CURRENCIES = ("crown", "mark", "florin", "ducat", "thaler", "lira", "real", "peso", "dinar", "rand", "krona", "sol")


def tokens(text: str) -> set[str]:
    return {t for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS}


class LookupEnv(ToolTaskEnv):
    env_id: ClassVar[str] = "envgym/ToolUse-Lookup-v0"
    family: ClassVar[str] = "lookup"
    tools: ClassVar[tuple[type[Tool], ...]] = (Search, Lookup, SubmitAnswer)
    Params: ClassVar[type[ToolParams]] = LookupParams

    params: LookupParams

    def params_for(self, difficulty: float) -> LookupParams:
        return LookupParams(
            hops=lerp_int(difficulty, 1, 4),
            people=lerp_int(difficulty, 10, 40),
            duplicates=lerp_int(difficulty, 0, 8),
            misleading_facts=difficulty >= 0.5,
            describe_start=difficulty >= 0.75,
            hints=difficulty <= 0.5,
            slack=lerp_int(difficulty, 4, 2),
            candidates=lerp_int(difficulty, 3, 10),
        )

    # ----- world ------------------------------------------------------------------------------------------
    def _world(self, p: LookupParams) -> dict[str, Entity]:
        rng = self.task_rng

        def sample(pool: list[str], n: int) -> list[str]:
            return [pool[i] for i in rng.choice(len(pool), size=min(n, len(pool)), replace=False)]

        countries = sample(list(COUNTRIES), max(3, p.people // 8))
        cities = sample(list(CITIES), max(4, p.people // 4))
        companies = sample(
            [f"{h}{t} {k}" for h in COMPANY_HEADS for t in COMPANY_TAILS for k in COMPANY_KINDS], max(4, p.people // 3)
        )
        people = sample(full_names(), p.people)
        currencies = sample(list(CURRENCIES), len(countries))
        kb: dict[str, Entity] = {}

        def pick(pool: list[str]) -> str:
            return pool[int(rng.integers(len(pool)))]

        for name, currency in zip(countries, currencies, strict=True):
            kb[name] = Entity(name, "country", {"currency": currency})
        for name in cities:
            kb[name] = Entity(
                name,
                "city",
                {
                    "country": pick(countries),
                    "population": str(int(rng.integers(2, 900)) * 1000 + int(rng.integers(0, 1000))),
                },
            )
        for country in countries:
            own = [c for c in cities if kb[c].facts["country"] == country] or cities
            kb[country].facts["capital"] = pick(own)
        for name in companies:
            kb[name] = Entity(
                name,
                "company",
                {
                    "headquarters": pick(cities),
                    "founded": str(int(rng.integers(1890, 2021))),
                    "industry": name.rsplit(" ", 1)[1].lower(),
                },
            )
        for name in people:
            kb[name] = Entity(
                name,
                "person",
                {
                    "works_at": pick(companies),
                    "born_in": pick(cities),
                    "birth_year": str(int(rng.integers(1950, 2004))),
                    "hobby": pick(list(HOBBIES)),
                },
            )
        for name in companies:
            kb[name].facts["founder"] = pick(people)
        for name in cities:
            kb[name].facts["mayor"] = pick(people)
        if p.misleading_facts:
            for e in kb.values():
                if e.kind == "person":
                    e.misleading["used to work at"] = pick(companies)
                    e.misleading["once lived in"] = pick(cities)
                elif e.kind == "company":
                    e.misleading["was once headquartered in"] = pick(cities)
        for twin in sample(people, p.duplicates):
            first, last = twin.split(" ", 1)
            name = f"{first} {chr(ord('A') + int(rng.integers(26)))}. {last}"
            if name not in kb:
                kb[name] = Entity(
                    name,
                    "person",
                    {
                        "works_at": pick(companies),
                        "born_in": pick(cities),
                        "birth_year": str(int(rng.integers(1950, 2004))),
                        "hobby": pick(list(HOBBIES)),
                    },
                )
        return kb

    @staticmethod
    def _page(e: Entity) -> str:
        x, f = e.title, e.facts
        if e.kind == "person":
            lines = [
                f"{x} is a person. {x} was born in {f['born_in']} in {f['birth_year']}.",
                f"{x} works at {f['works_at']}.",
                f"{x}'s hobby is {f['hobby']}.",
            ]
        elif e.kind == "company":
            lines = [
                f"{x} is a company in the {f['industry']} industry, founded in {f['founded']}.",
                f"{x} was founded by {f['founder']}.",
                f"{x} has its headquarters in {f['headquarters']}.",
            ]
        elif e.kind == "city":
            lines = [
                f"{x} is a city in {f['country']} with a population of {f['population']}.",
                f"The mayor of {x} is {f['mayor']}.",
            ]
        else:
            lines = [
                f"{x} is a country. Its capital is {f['capital']}.",
                f"The currency of {x} is the {f['currency']}.",
            ]
        lines += [f"{x} {verb} {value}." for verb, value in e.misleading.items()]
        return f"# {x}\n" + "\n".join(lines)

    # ----- task -------------------------------------------------------------------------------------------
    def _chain(self, kb: dict[str, Entity], hops: int, avoid_first: str = "") -> tuple[list[str], list[str], str]:
        """A random walk: entity titles read in order, relations followed, terminal attribute."""
        rng = self.task_rng
        people = [e.title for e in kb.values() if e.kind == "person" and "." not in e.title]
        for _ in range(500):
            path = [people[int(rng.integers(len(people)))]]
            rels: list[str] = []
            while len(path) < hops:
                kind = kb[path[-1]].kind
                options = [r for r, (src, _, _) in RELATIONS.items() if src == kind and (rels or r != avoid_first)]
                rel = options[int(rng.integers(len(options)))]
                nxt = kb[path[-1]].facts[rel]
                if nxt in path:
                    break
                rels.append(rel)
                path.append(nxt)
            if len(path) == hops:
                kind = kb[path[-1]].kind
                attrs = [a for a, (src, _, _) in ATTRIBUTES.items() if src == kind]
                return path, rels, attrs[int(rng.integers(len(attrs)))]
        raise RuntimeError("could not find a chain; try another seed")

    def _describe(self, kb: dict[str, Entity], title: str) -> tuple[str, str] | None:
        """A unique description of a person and the search query that finds it, if one exists."""
        f = kb[title].facts
        same = [
            e
            for e in kb.values()
            if e.kind == "person" and e.facts["born_in"] == f["born_in"] and e.facts["birth_year"] == f["birth_year"]
        ]
        if len(same) != 1:
            return None
        query = f"born {f['born_in']} {f['birth_year']}"
        if title not in [t for t, _ in self._search(query)[:3]]:
            return None
        return f"the person who was born in {f['born_in']} in {f['birth_year']}", query

    def _build(self, p: LookupParams) -> ToolTask:  # type: ignore[override]
        rng = self.task_rng
        self.kb = self._world(p)
        self.pages = {t: self._page(e) for t, e in self.kb.items()}
        self.page_tokens = {t: tokens(text) for t, text in self.pages.items()}
        self.title_tokens = {t: tokens(t) for t in self.pages}
        path, rels, attr = self._chain(self.kb, p.hops, "born_in" if p.describe_start else "")
        start = path[0]
        gold: list[Tool] = []
        described = self._describe(self.kb, start) if p.describe_start else None
        if described is not None:
            start, query = described
            gold.append(Search(query=query))
        steps, phrase = [], start
        if described is not None:
            steps, phrase = [f"Let P be {start}."], "P"
        for letter, rel in zip("ABCDEFG", rels, strict=False):
            steps.append(f"Let {letter} be {RELATIONS[rel][2].format(x=phrase)}.")
            phrase = letter
        _, answer_kind, question = ATTRIBUTES[attr]
        question = " ".join([*steps, question.format(x=phrase)])
        answer = self.kb[path[-1]].facts[attr]
        gold += [Lookup(title=t) for t in path]
        same_kind = sorted({e.facts[attr] for e in self.kb.values() if attr in e.facts} - {answer})
        others = [same_kind[i] for i in rng.permutation(len(same_kind))[: p.candidates - 1]]
        candidates = [others[i] if i < len(others) else answer for i in range(len(others) + 1)]
        candidates = [candidates[i] for i in rng.permutation(len(candidates))]
        if answer_kind == "number":
            expected = Expected(kind="number", value=float(answer))
        else:
            expected = Expected(kind="text", value=answer)
        intro = (
            f"You can search a knowledge base of {len(self.pages)} pages (people, companies, cities, countries) with "
            "`search` and read a page with `lookup`.\n\n"
            f"Question: {question}\n"
            "When you know the answer, call `submit_answer` (one submission)."
        )
        return ToolTask(intro, expected, gold, answer, candidates)

    # ----- tools ------------------------------------------------------------------------------------------
    def _search(self, query: str) -> list[tuple[str, int]]:
        wanted = tokens(query)
        scored = []
        for title, toks in self.page_tokens.items():
            score = len(wanted & toks) + 2 * len(wanted & self.title_tokens[title])
            if score:
                scored.append((title, score))
        scored.sort(key=lambda ts: (-ts[1], ts[0]))
        return scored[:5]

    @handles(Search)
    def _search_call(self, call: Search) -> StepOutcome:
        hits = self._search(call.query)
        if not hits:
            return StepOutcome(
                feedback=Feedback(
                    summary=f"No pages match {call.query[:80]!r}.",
                    hint=self.hint("use fewer, distinctive keywords (a name, a place, a year)"),
                )
            )
        lines = [f"- {t}: {self.pages[t].splitlines()[1][:100]}" for t, _ in hits]
        return StepOutcome(feedback=Feedback(summary=f"{len(hits)} result(s):", details="\n".join(lines)))

    @handles(Lookup)
    def _lookup(self, call: Lookup) -> StepOutcome:
        wanted = call.title.strip().lstrip("#").strip().casefold()
        for title, text in self.pages.items():
            if title.casefold() == wanted:
                return StepOutcome(feedback=Feedback(summary=f"Page {title!r}:", details=text))
        close = difflib.get_close_matches(call.title.strip(), list(self.pages), n=3, cutoff=0.6)
        hint = f"close titles: {', '.join(close)}" if close else "use `search` to find exact page titles"
        return StepOutcome(feedback=Feedback(summary=f"No page titled {call.title[:80]!r}.", hint=self.hint(hint)))

    def _random_call(self, tool: type[Tool], rng: np.random.Generator) -> Tool:
        titles = list(self.pages)
        title = titles[int(rng.integers(len(titles)))]
        if tool is Lookup:
            return Lookup(title=title)
        words = sorted(self.page_tokens[title])
        return Search(query=words[int(rng.integers(len(words)))])
