"""The leaderboard under hostile requests: ids that are not there, the documented order of bundle checks,
bounded requests, a server without an isolation boundary, and the readable page (intervals, dates, references)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from envgym.agents.policies.scripted import OracleAgent, RandomAgent
from envgym.leaderboard.bundle import Bundle, build_bundle

from .conftest import Server, record_run


class ModelAgent(OracleAgent):
    """A non-reference agent (its name is not a scripted reference), so its rows are ranked."""

    name = "model-x"


class WeakModel(RandomAgent):
    name = "model-y"


def post(server: Server, data: bytes, token: str) -> httpx.Response:
    return httpx.post(
        server.url + "/api/submissions", content=data, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


@pytest.mark.parametrize(
    "sid", ["9" * 23, "12345678901234567890", "-1", "abc", "1e3", "0x10", "x" * 3000, "99999", "%00", "１２"]
)
@pytest.mark.parametrize("suffix", ["", "/tasks"])
def test_absent_or_malformed_ids_are_404(server: Server, sid: str, suffix: str) -> None:
    response = httpx.get(f"{server.url}/api/submissions/{sid}{suffix}", timeout=10)
    assert response.status_code == 404, response.text
    assert response.json()["error"].startswith("no submission #")
    assert len(response.text) < 400  # an overlong id is not echoed back whole
    page = httpx.get(f"{server.url}/submissions/{sid}", timeout=10)
    assert page.status_code == 404


def test_bundle_checks_run_in_the_documented_order(server: Server, tmp_path: Path) -> None:
    """schema -> hashes -> content -> duplicate -> split: a tampered re-upload is 400, an exact one 409."""
    run = record_run(tmp_path / "order", "envgym/Sudoku-v0", ModelAgent())
    bundle = build_bundle(run, split="mini", model="order")
    token = server.token("order")
    assert post(server, bundle.pack(), token).status_code == 202
    tampered_files = {**bundle.files, "predictions.jsonl": bundle.files["predictions.jsonl"] + b"\n"}
    tampered = Bundle(manifest=bundle.manifest, files=tampered_files).pack()  # same manifest digest
    response = post(server, tampered, token)
    assert response.status_code == 400, response.text  # hashes before duplicate
    assert "hash mismatch for predictions.jsonl" in response.json()["error"]
    again = post(server, bundle.pack(), token)
    assert again.status_code == 409 and "duplicate" in again.json()["error"]
    off_split = build_bundle(run, split="nope", model="order")  # new digest, well formed, unknown split
    assert post(server, off_split.pack(), token).status_code == 422


def test_requests_are_bounded(server: Server, oracle_run: Path) -> None:
    long_token = post(server, build_bundle(oracle_run, split="mini").pack(), "egl_" + "a" * 20_000)
    assert long_token.status_code in (401, 431)
    for params in ({"split": "x" * 5000}, {"env": "envgym/" + "y" * 500}, {"split": "<script>"}):
        response = httpx.get(server.url + "/api/leaderboard", params=params, timeout=10)
        assert response.status_code == 422 and response.json()["error"] == "invalid request", response.text
    page = httpx.get(server.url + "/", params={"split": "z" * 5000}, timeout=10)
    assert page.status_code == 422


@pytest.fixture(scope="module")
def unconfined_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("noboundary"), sandbox="none")
    srv.start()
    yield srv
    srv.stop()


def test_a_server_without_a_boundary_refuses_code_running_envs_at_upload(
    unconfined_server: Server, oracle_run: Path, tmp_path: Path
) -> None:
    token = unconfined_server.token("refused")
    response = post(unconfined_server, build_bundle(oracle_run, split="mini").pack(), token)  # Sudoku + ToolUse
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert "envgym/ToolUse-v0" in error and "no isolation boundary" in error and "unconfined" in error
    board = httpx.get(unconfined_server.url + "/api/leaderboard", timeout=10).json()
    assert board == []  # nothing stored, nothing queued
    puzzles = record_run(tmp_path / "puzzles", "envgym/Sudoku-v0", ModelAgent())
    accepted = post(unconfined_server, build_bundle(puzzles, split="mini").pack(), token)
    assert accepted.status_code == 202, accepted.text  # envs that run no agent code are still graded
    assert unconfined_server.wait_graded(accepted.json()["id"])["status"] == "graded"


def test_page_shows_intervals_dates_links_and_unranked_references(
    server: Server, oracle_run: Path, tmp_path: Path
) -> None:
    strong = record_run(tmp_path / "strong", "envgym/Sudoku-v0", ModelAgent())
    weak = record_run(tmp_path / "weak", "envgym/Sudoku-v0", WeakModel(seed=3))
    ids = []
    for run, model in ((strong, "strong-model"), (weak, "weak-model"), (oracle_run, "the-oracle")):
        response = post(server, build_bundle(run, split="mini", model=model).pack(), server.token(model))
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    for sid in ids:
        server.wait_graded(sid)
    board = httpx.get(server.url + "/api/leaderboard", params={"env": "envgym/Sudoku-v0"}, timeout=10).json()
    rows = {row["submission_id"]: row for row in board}
    assert rows[ids[2]]["reference"] and rows[ids[2]]["rank"] is None
    ranked = [row for row in board if not row["reference"] and row["split"] == "mini"]
    assert [row["rank"] for row in ranked] == list(range(1, len(ranked) + 1))
    assert rows[ids[0]]["rank"] < rows[ids[1]]["rank"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", rows[ids[0]]["date"])
    page = httpx.get(server.url + "/", params={"split": "mini"}, timeout=10).text
    strong_row = re.search(rf"<tr data-submission='{ids[0]}'>(.*?)</tr>", page)
    assert strong_row is not None and "100.0% <span class='ci'>[44%&ndash;100%]</span>" in strong_row.group(1)
    assert f"<a href='/submissions/{ids[0]}'>" in strong_row.group(1) and rows[ids[0]]["date"] in strong_row.group(1)
    oracle_row = re.search(rf"<tr data-submission='{ids[2]}' class='reference'><td class='num'>reference", page)
    assert oracle_row is not None
    detail = httpx.get(f"{server.url}/submissions/{ids[0]}", timeout=10)
    assert detail.status_code == 200 and "strong-model" in detail.text
    assert detail.text.count("envgym/Sudoku-v0@") == 3  # one row per task


def test_submit_dry_run_needs_no_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, envgym_cli: Any) -> None:
    from envgym.cli import _load_plugins, app

    run = record_run(tmp_path / "dry", "envgym/Sudoku-v0", ModelAgent())
    monkeypatch.delenv("ENVGYM_TOKEN", raising=False)
    _load_plugins()
    result = CliRunner().invoke(app, ["submit", str(run), "--split", "mini", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert (run / "bundle.tar.gz").is_file() and "nothing uploaded" in result.output
    missing = envgym_cli.invoke(app, ["submit", str(run), "--split", "mini"])  # as the `envgym` command runs it
    assert missing.exit_code == 2 and missing.stdout == "" and missing.stderr.startswith("error: --to URL")
    assert len(missing.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    "line", [b"[" * 100_000, b'{"env_id": ' + b"[" * 3000 + b"1" + b"]" * 3000 + b"}", b"\xff\xfe"]
)
def test_hostile_bundle_files_are_400_not_500(server: Server, oracle_run: Path, line: bytes) -> None:
    """Files re-hashed so they pass the hash check: the content check must still answer in words."""
    from envgym.leaderboard.bundle import FileEntry, Manifest, sha256_hex

    bundle = build_bundle(oracle_run, split="mini", model=f"hostile-{len(line)}")
    files = {**bundle.files, "trajectories.jsonl": line + b"\n" + bundle.files["trajectories.jsonl"]}
    entries = {name: FileEntry(sha256=sha256_hex(data), bytes=len(data)) for name, data in files.items()}
    manifest = Manifest.model_validate({**bundle.manifest.model_dump(), "files": entries})
    response = post(server, Bundle(manifest=manifest, files=files).pack(), server.token("hostile"))
    assert response.status_code == 400, response.text
    assert "trajectories.jsonl is malformed" in response.json()["error"]


def rehashed(bundle: Bundle, **files: bytes) -> bytes:
    """`bundle` with some files replaced and the manifest's hashes recomputed (a consistent edit)."""
    from envgym.leaderboard.bundle import FileEntry, Manifest, sha256_hex

    merged = {**bundle.files, **{name.replace("_", "."): data for name, data in files.items()}}
    entries = {name: FileEntry(sha256=sha256_hex(data), bytes=len(data)) for name, data in merged.items()}
    manifest = Manifest.model_validate({**bundle.manifest.model_dump(), "files": entries})
    return Bundle(manifest=manifest, files=merged).pack()


def test_the_same_run_laid_out_differently_is_a_duplicate(server: Server, tmp_path: Path) -> None:
    """Red team, 2026-12-01: a blank line or CRLF line ends (re-hashed) were accepted again, ranks 1-3."""
    run = record_run(tmp_path / "dup", "envgym/Sudoku-v0", ModelAgent())
    bundle = build_bundle(run, split="mini", model="dup")
    token = server.token("dup")
    assert post(server, bundle.pack(), token).status_code == 202
    predictions, trajectories = bundle.files["predictions.jsonl"], bundle.files["trajectories.jsonl"]
    resorted = b"\n".join(
        json.dumps(json.loads(line), sort_keys=True, indent=None).encode() for line in predictions.splitlines()
    )
    for variant in (
        {"predictions_jsonl": predictions + b"\n\n"},
        {
            "predictions_jsonl": predictions.replace(b"\n", b"\r\n"),
            "trajectories_jsonl": trajectories.replace(b"\n", b"\r\n"),
        },
        {"predictions_jsonl": resorted + b"\n"},
    ):
        response = post(server, rehashed(bundle, **variant), token)
        assert response.status_code == 409, response.text
    board = httpx.get(server.url + "/api/leaderboard", params={"split": "mini"}, timeout=10).json()
    assert sum(1 for row in board if row.get("model") == "dup") <= 1


@pytest.mark.parametrize("env_id", ["CartPole-v1", "LunarLander-v3", "phys2d/CartPole-v1", "envgym/NoSuch-v0"])
def test_only_envgym_envs_are_accepted_and_never_a_500(
    server: Server, oracle_run: Path, tmp_path: Path, env_id: str
) -> None:
    """Red team: gymnasium ids outside envgym were looked up in gymnasium's registry (500 when their module
    could not be imported, 202 and a ranked table otherwise). A consistent bundle (built from edited records)."""
    text = (oracle_run / "trajectories.jsonl").read_text()
    (tmp_path / "trajectories.jsonl").write_text(
        text.replace('"envgym/Sudoku-v0"', json.dumps(env_id)).replace('"env_version":"1"', '"env_version":""')
    )
    bundle = build_bundle(tmp_path, split="mini", model=f"foreign-{env_id}")
    response = post(server, bundle.pack(), server.token("foreign"))
    assert response.status_code == 422, response.text
    assert f"{env_id} is not an env this server can grade" in response.json()["problems"], response.text


def test_parsing_is_bounded_by_the_objects_a_file_may_hold(server: Server, oracle_run: Path) -> None:
    """Red team: 48 MiB of tiny turns (0.2 MB gzipped) took the server from 95 MiB to 2.3 GiB before its 400.
    The objects are counted before anything is parsed."""
    from envgym.leaderboard.bundle import MAX_JSON_OBJECTS

    bundle = build_bundle(oracle_run, split="mini", model="objects")
    flood = b'{"turns":[' + b",".join([b"{}"] * (MAX_JSON_OBJECTS + 1)) + b"]}\n"
    response = post(server, rehashed(bundle, trajectories_jsonl=flood), server.token("objects"))
    assert response.status_code == 400 and "JSON objects" in response.text, response.text[:300]


@pytest.mark.parametrize(
    "name",
    ["gpt\x00-4o", "model-x\u202e", "m\u200bodel-x", "m\u043edel-x", "model-x ", " model-x", "model  x", "a\nb"],
)
def test_board_names_are_printable_ascii_words(server: Server, oracle_run: Path, name: str) -> None:
    """Red team: a NUL in the model name is refused by PostgreSQL's text columns (a 500), and bidi overrides,
    zero-width characters, a Cyrillic 'о' or a trailing space let a submission pose as another's model."""
    from envgym.leaderboard.bundle import BundleError, Manifest

    with pytest.raises(BundleError, match="printable ASCII"):
        build_bundle(oracle_run, split="mini", model=name)
    bundle = build_bundle(oracle_run, split="mini", model="fine name v1.2 (org/x)")
    forged = Manifest.model_construct(**{**dict(bundle.manifest), "model": name})  # a hand-made manifest
    response = post(server, Bundle.model_construct(manifest=forged, files=bundle.files).pack(), server.token("n"))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert "model" in error and "\n" not in error and name not in error, error
