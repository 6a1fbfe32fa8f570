"""The counts the README and the docs state are the counts the code has (and they agree with each other)."""

import json
import re
from pathlib import Path

from envgym.registry import ENTRIES

ROOT = Path(__file__).resolve().parents[2]
WORDS = {"Eleven": 11, "Twelve": 12, "Ten": 10, "Nine": 9, "Thirteen": 13}


def read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def test_puzzle_family_count() -> None:
    families = [e for e in ENTRIES if e.family == "puzzles" and e.id != "envgym/Puzzle-v0"]
    readme = re.search(r"(\d+) procedurally generated puzzle families", read("README.md"))
    docs = re.search(r"^(\w+) procedurally generated", read("docs/puzzles.md"), re.M)
    assert readme and docs
    assert int(readme.group(1)) == WORDS[docs.group(1)] == len(families)
    for entry in families:  # and the README's table names every one of them
        assert entry.id.removeprefix("envgym/") in read("README.md"), entry.id


def test_bundled_swe_suite_counts() -> None:
    files = sorted((ROOT / "environments" / "swe" / "data").glob("*.jsonl"))
    tasks = [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]
    projects = {str(t.get("project") or t.get("repo")).split("==")[0] for t in tasks}
    stated = f"{len(tasks)} bundled tasks from {len(projects)} projects"
    assert stated in read("README.md")
    assert f"{len(tasks)} tasks from {len(projects)} projects" in read("docs/swe.md")
    for number in re.findall(r"all (\d+) tasks", read("docs/swe.md")):
        assert int(number) == len(tasks)
