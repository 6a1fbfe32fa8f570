"""`envgym view`: one self-contained HTML file, loaded in headless Chromium, shows what the trajectories hold."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import gymnasium as gym
import pytest

import envgym  # noqa: F401
from envgym.agents.policies.scripted import OracleAgent, RandomAgent
from envgym.runner import run_episode
from envgym.trajectory import RateSummary, TrajectoryWriter, read_episodes
from envgym.viewer import family_of, outcome_class, render_html, summary_rows

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom(url: str) -> str:
    """The DOM after scripts ran, from Debian's chromium (apt-get install -y chromium)."""
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but chromium is not installed (apt-get install -y chromium)")
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", url]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout


@pytest.fixture(scope="module")
def trajectories(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("view") / "trajectories.jsonl"
    with TrajectoryWriter(path) as writer:
        for env_id, agent, seeds in (
            ("envgym/ToolUse-v0", OracleAgent(), range(3)),
            ("envgym/Sudoku-v0", RandomAgent(seed=0), range(2)),
        ):
            env = gym.make(env_id)
            for seed in seeds:
                writer.write(run_episode(env, agent, seed=seed, options={"difficulty": 0.5}))  # type: ignore[arg-type]
            env.close()
    return path


def test_html_is_self_contained_and_escaped(trajectories: Path) -> None:
    page = render_html(read_episodes(trajectories))
    assert "<script src" not in page and "<link" not in page and "http://" not in page and "https://" not in page
    episodes = list(read_episodes(trajectories))
    episodes[0].turns[0].observation = "<img src=x onerror=alert(1)></script>"
    assert "<img src=x" not in render_html(episodes)


def test_view_cli_writes_report(trajectories: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from envgym.cli import _load_plugins, app

    _load_plugins()
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["view", str(trajectories), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!doctype html>")


def test_page_in_headless_chromium_shows_episodes_and_filters(trajectories: Path, tmp_path: Path) -> None:
    episodes = list(read_episodes(trajectories))
    out = tmp_path / "report.html"
    out.write_text(render_html(episodes), encoding="utf-8")
    dom = dump_dom(out.as_uri())
    assert f"showing {len(episodes)} of {len(episodes)} episodes" in dom  # the script ran
    assert dom.count('class="ep"') == len(episodes)
    tool = episodes[0].turns[0].tool_call or {}
    assert f"<code>{tool['name']}</code>" in dom  # tool calls are shown
    assert "submit_answer" in dom and "reward" in dom
    wanted = sum(outcome_class(e) == "failure" for e in episodes)
    dom = dump_dom(out.as_uri() + "#filter=failure")
    assert f"showing {wanted} of {len(episodes)} episodes" in dom
    hidden = re.findall(r'<details class="ep" data-outcome="(\w+)"[^>]*hidden', dom)
    assert len(hidden) == len(episodes) - wanted and "failure" not in hidden


def test_summary_header_counts_families_and_keeps_infra_apart(trajectories: Path) -> None:
    episodes = list(read_episodes(trajectories))
    broken = episodes[-1].model_copy(deep=True)
    assert broken.outcome is not None
    broken.outcome.infra_error, broken.outcome.success = "image missing", False
    rows = dict(summary_rows([*episodes, broken]))
    overall = RateSummary.of(episodes)
    assert rows["all"].infra_errors == 1 and rows["all"].scored == overall.scored
    assert rows["all"].success_rate == overall.success_rate
    sudoku = rows["Sudoku · random"]  # two policies on the page: rows are per family and policy
    assert sudoku.episodes == 3 and sudoku.infra_errors == 1
    families = {f"{family_of(e)} · oracle" for e in episodes if e.env_id == "envgym/ToolUse-v0"}
    assert families and families <= set(rows)  # a mixture's episodes are grouped by their sampled family
    page = render_html([*episodes, broken])
    head = page[: page.index("<main>")]
    assert RateSummary.of([*episodes, broken]).line() in head and "infra errors 1 (excluded)" in head


def test_turns_are_one_line_with_raw_text_folded(trajectories: Path) -> None:
    episode = next(iter(read_episodes(trajectories)))
    page = render_html([episode])
    turn = episode.turns[0]
    assert turn.tool_call and f"<code>{turn.tool_call['name']}</code>" in page
    assert page.count("action and observation text") == len(episode.turns)
