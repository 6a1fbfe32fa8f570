"""Build the server's container image offline: a wheelhouse made on the host, layered on envgym's base image.

Why a wheelhouse: no registry is reachable from a build here, and the base image has Python but no envgym;
so the host builds envgym's wheel from this checkout and downloads the exact versions of its runtime
dependencies installed here, and the Dockerfile (`envgym/server/Dockerfile`) installs them with `--no-index`.
The tag is a content hash of the recipe, base and wheels (see `sandboxes/images/recipe_builder.py`).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

DOCKERFILE = Path(__file__).with_name("Dockerfile")
# what `envgym serve` needs at run time (openenv-core is a test-time client, not shipped in the image)
RUNTIME = ("gymnasium", "numpy", "pydantic", "typer", "rich", "pyyaml", "fastapi", "uvicorn", "websockets", "mcp")


class ServerImageError(RuntimeError):
    """The image could not be built; the message names the step."""


def project_root() -> Path:
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").exists():
        raise ServerImageError("build the server image from an envgym source checkout (no pyproject.toml found)")
    return root


def _pip(args: list[str]) -> None:
    cmd = [sys.executable, "-m", "pip", *args, "--quiet", "--disable-pip-version-check"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        raise ServerImageError(f"`pip {' '.join(args[:2])} ...` failed (is PyPI reachable?):\n{proc.stderr[-2000:]}")


def pinned_requirements() -> list[str]:
    """The runtime packages at the versions installed here, so the image runs what the tests ran."""
    return [f"{name}=={metadata.version(name)}" for name in RUNTIME]


def build_server_image(log: Callable[[str], None] = lambda line: None) -> str:
    """Build (or find) `envgym/serve:<hash>` and return its tag."""
    from envgym.sandboxes.images.recipe_builder import build_recipe

    with tempfile.TemporaryDirectory(prefix="envgym-serve-") as ctx:
        wheels = Path(ctx) / "wheels"
        log("building the envgym wheel")
        _pip(["wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(project_root())])
        log("downloading runtime wheels")
        _pip(["download", "--only-binary=:all:", "-d", str(wheels), *pinned_requirements()])
        log("building the image")
        return build_recipe(DOCKERFILE, "serve", context=ctx, log=log)
