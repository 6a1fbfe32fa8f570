"""The API reference builds from docstrings with no pdoc warning (scripts/api_docs.py)."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def api_docs():  # scripts/ is not a package: load the build script by path
    spec = importlib.util.spec_from_file_location("api_docs", ROOT / "scripts" / "api_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_api_reference_builds_without_warnings(tmp_path: Path) -> None:
    docs = api_docs()
    assert docs.build(tmp_path) == []
    page = (tmp_path / "envgym" / "trajectory.html").read_text()
    assert "Episode.start" in page and "only constructors" in page
    assert (tmp_path / "index.html").is_file()


def test_a_docstring_pdoc_cannot_render_fails_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_mod.py").write_text('"""A module."""\n\n\ndef f(x: "list[") -> None:\n    """Takes x."""\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "broken_mod", raising=False)
    assert api_docs().build(tmp_path / "out", ["broken_mod"]) != []
