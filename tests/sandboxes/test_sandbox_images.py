"""Image helpers that need no engine: content-hashed tags, mirror discovery, import stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from envgym.sandboxes.images import BaseImageSpec, recipe_hash, recipe_path
from envgym.sandboxes.images.base_image import configured_debian_mirror


def test_recipe_hash_changes_with_recipe_base_args_and_context(tmp_path: Path):
    (tmp_path / "a.py").write_text("x = 1\n")
    base = recipe_hash("FROM x\n", "envgym/base:1", tmp_path, {})
    assert base == recipe_hash("FROM x\n", "envgym/base:1", tmp_path, {})
    assert base != recipe_hash("FROM y\n", "envgym/base:1", tmp_path, {})
    assert base != recipe_hash("FROM x\n", "envgym/base:2", tmp_path, {})
    assert base != recipe_hash("FROM x\n", "envgym/base:1", tmp_path, {"A": "1"})
    (tmp_path / "a.py").write_text("x = 2\n")
    assert base != recipe_hash("FROM x\n", "envgym/base:1", tmp_path, {})


def test_base_spec_tag_is_content_hashed():
    spec = BaseImageSpec()
    assert spec.tag().startswith("envgym/base:")
    assert spec.tag() == BaseImageSpec().tag()
    assert spec.tag() != BaseImageSpec(packages=[*spec.packages, "curl"]).tag()
    assert {"python3", "python3-venv", "python3-pip", "git", "python3-pytest"} <= set(spec.packages)


def test_shipped_recipes_exist():
    assert "BASE_IMAGE" in recipe_path("python-project").read_text()
    assert "python:3" in recipe_path("python-slim").read_text()


def test_mirror_is_discovered():
    assert configured_debian_mirror().startswith("http")


def test_importing_sandboxes_does_not_import_docker():
    code = "import envgym.sandboxes, sys; print('docker' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
