"""The verifying server on loopback: honest bundles are graded and ranked; hostile ones are refused or scored honestly."""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from envgym.agents.policies.scripted import OracleAgent
from envgym.leaderboard.bundle import Bundle, build_bundle
from envgym.trajectory import TrajectoryWriter, read_episodes

from .conftest import Server, dump_dom, record_run


def post(server: Server, data: bytes, token: str) -> httpx.Response:
    return httpx.post(
        server.url + "/api/submissions", content=data, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def forge(run_dir: Path, out_dir: Path) -> Path:
    """Rewrite every episode to claim success (rewards, outcome, all consistent): only re-grading can tell."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with TrajectoryWriter(out_dir / "trajectories.jsonl") as writer:
        for ep in read_episodes(run_dir / "trajectories.jsonl"):
            ep.turns[-1].reward = 1.0
            ep.turns[-1].observation = "Solved!"
            ep.turns[-1].terminated, ep.turns[-1].truncated = True, False
            assert ep.outcome is not None
            ep.outcome.return_ = sum(t.reward for t in ep.turns)
            ep.outcome.success, ep.outcome.terminated, ep.outcome.truncated = True, True, False
            writer.write(ep)
    return out_dir


def test_valid_submission_is_graded_and_ranked(server: Server, oracle_run: Path) -> None:
    token = server.token("alice")
    bundle = build_bundle(oracle_run, split="mini", model="oracle-1")
    response = post(server, bundle.pack(), token)
    assert response.status_code == 202, response.text
    status = server.wait_graded(response.json()["id"])
    assert status["status"] == "graded"
    assert status["progress"] == {"graded": 6, "total": 6}
    for score in status["scores"].values():
        assert score["success_rate"] == 1.0 and score["replayed"] == 3 and score["diverged"] == 0
    board = httpx.get(server.url + "/api/leaderboard", params={"split": "mini"}, timeout=10).json()
    mine = [row for row in board if row["submission_id"] == response.json()["id"]]
    assert {row["env_id"] for row in mine} == {"envgym/Sudoku-v0", "envgym/ToolUse-v0"}
    # the scripted oracle is a reference line, never ranked; its interval is Wilson's for 3/3
    assert all(row["rank"] is None and row["reference"] and row["model"] == "oracle-1" for row in mine)
    assert all(row["ci_high"] == 1.0 and 0.4 < row["ci_low"] < 0.5 for row in mine)


def test_forged_scores_get_the_true_score(server: Server, random_run: Path, tmp_path: Path) -> None:
    true_solved = sum(ep.outcome.success for ep in read_episodes(random_run / "trajectories.jsonl"))  # type: ignore[union-attr]
    forged = build_bundle(forge(random_run, tmp_path / "forged"), split="mini", model="forger")
    assert forged.manifest.claimed["envgym/Sudoku-v0"].solved == 3
    response = post(server, forged.pack(), server.token("mallory"))
    assert response.status_code == 202, response.text
    status = server.wait_graded(response.json()["id"])
    score = status["scores"]["envgym/Sudoku-v0"]
    assert score["claimed_success_rate"] == 1.0
    assert score["solved"] == true_solved < 3
    assert score["diverged"] == 3 and len(status["divergences"]) == 3
    board = httpx.get(server.url + "/api/leaderboard", params={"env": "envgym/Sudoku-v0"}, timeout=10).json()
    forger = next(row for row in board if row["model"] == "forger")
    assert forger["success_rate"] == true_solved / 3


def _repack(bundle: Bundle, **files: bytes) -> bytes:
    """Pack with some files replaced but the manifest (and its hashes) left as they were."""
    return Bundle(manifest=bundle.manifest, files={**bundle.files, **files}).pack()


def test_tampered_file_is_rejected(server: Server, oracle_run: Path) -> None:
    bundle = build_bundle(oracle_run, split="mini", model="tamper")
    trajectories = bundle.files["trajectories.jsonl"].replace(b'"reward":0.0', b'"reward":0.5', 1)
    response = post(server, _repack(bundle, **{"trajectories.jsonl": trajectories}), server.token("t"))
    assert response.status_code == 400
    assert "hash mismatch for trajectories.jsonl" in response.json()["error"]


def test_wrong_and_missing_token_are_rejected(server: Server, oracle_run: Path) -> None:
    data = build_bundle(oracle_run, split="mini").pack()
    response = post(server, data, "egl_not-a-token")
    assert response.status_code == 401 and "invalid or revoked API token" in response.json()["error"]
    response = httpx.post(server.url + "/api/submissions", content=data, timeout=10)
    assert response.status_code == 401 and "missing API token" in response.json()["error"]


def test_oversized_bundle_is_rejected(server: Server) -> None:
    response = post(server, b"\0" * 400_000, server.token("big"))  # limit is 0.25 MB
    assert response.status_code == 413 and "exceeds" in response.json()["error"]


def test_malformed_manifest_is_rejected(server: Server, oracle_run: Path) -> None:
    bundle = build_bundle(oracle_run, split="mini")
    manifest = json.loads(bundle.manifest.model_dump_json())
    del manifest["model"]
    manifest["format_version"] = 99
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in {"manifest.json": json.dumps(manifest).encode(), **bundle.files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    response = post(server, buffer.getvalue(), server.token("m"))
    assert response.status_code == 400
    assert "malformed manifest" in response.json()["error"] and "model" in response.json()["error"]
    response = post(server, b"this is not a tarball", server.token("m"))
    assert response.status_code == 400 and "not a bundle" in response.json()["error"]


def test_duplicate_submission_is_rejected(server: Server, tmp_path: Path) -> None:
    run = record_run(tmp_path / "dup", "envgym/Sudoku-v0", OracleAgent())
    token = server.token("dup")
    first = post(server, build_bundle(run, split="mini", model="dup").pack(), token)
    assert first.status_code == 202, first.text
    again = post(server, build_bundle(run, split="mini", model="dup").pack(), server.token("someone-else"))
    assert again.status_code == 409 and "duplicate submission" in again.json()["error"]


def test_bundle_off_split_is_rejected(server: Server, tmp_path: Path) -> None:
    run = record_run(tmp_path / "easy", "envgym/Sudoku-v0", OracleAgent(), seeds=[0, 1, 7])
    response = post(server, build_bundle(run, split="mini").pack(), server.token("s"))
    assert response.status_code == 422
    assert any("needs seeds 0..2" in p for p in response.json()["problems"])


def test_leaderboard_page_renders_in_headless_chromium(server: Server, oracle_run: Path, tmp_path: Path) -> None:
    forged = build_bundle(forge(oracle_run, tmp_path / "f"), split="mini", model="page-forger")
    sid = post(server, forged.pack(), server.token("page")).json()["id"]
    server.wait_graded(sid)
    dom = dump_dom(server.url + "/?split=mini")
    assert "envgym leaderboard" in dom
    rows = re.findall(r'<tr data-submission="(\d+)"[^>]*>(.*?)</tr>', dom)  # reference rows carry a class
    assert rows, dom[:2000]
    page_forger = [cells for row_id, cells in rows if row_id == str(sid)]
    assert page_forger and all("page-forger" in cells for cells in page_forger)
    assert any('class="num verified">100.0%' in cells for cells in page_forger)  # honest oracle actions


def test_submit_cli_prints_verified_score(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from envgym.cli import _load_plugins, app

    run = record_run(tmp_path / "cli", "envgym/ToolUse-v0", OracleAgent())
    monkeypatch.setenv("ENVGYM_TOKEN", server.token("cli"))
    _load_plugins()
    result = CliRunner().invoke(
        app, ["submit", str(run), "--to", server.url, "--split", "mini", "--model", "cli-model", "--regrade", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "graded" in result.output and "100.0%" in result.output
    assert result.output.count("local re-grade") == 2
    monkeypatch.setenv("ENVGYM_TOKEN", "wrong")
    result = CliRunner().invoke(app, ["submit", str(run), "--to", server.url, "--split", "mini"])
    assert result.exit_code == 1 and "401" in result.output


def test_restart_mid_grading_resumes_without_loss_or_double_count(tmp_path: Path, oracle_run: Path) -> None:
    srv = Server(tmp_path, task_pause=1.0)
    srv.start()
    try:
        response = post(srv, build_bundle(oracle_run, split="mini", model="crash").pack(), srv.token("c"))
        assert response.status_code == 202, response.text
        sid = response.json()["id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            progress = httpx.get(f"{srv.url}/api/submissions/{sid}", timeout=10).json()["progress"]
            if progress["graded"] >= 1:
                break
            time.sleep(0.1)
        srv.kill()
        assert 1 <= progress["graded"] < 6
        srv.start(task_pause=0.0)
        status = srv.wait_graded(sid)
        assert status["status"] == "graded" and status["job"]["attempts"] == 2
        assert status["progress"] == {"graded": 6, "total": 6}
        tasks = httpx.get(f"{srv.url}/api/submissions/{sid}/tasks", timeout=10).json()
        assert len(tasks) == len({t["task_key"] for t in tasks}) == 6
        assert all(t["verified_success"] for t in tasks)
    finally:
        srv.stop()
