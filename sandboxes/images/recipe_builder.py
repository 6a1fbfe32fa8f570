"""Dockerfile recipes layered on the base image, tagged by a hash of everything that goes into them.

Why: a changed recipe (or base, or build context) must be a new image and an unchanged one must never be
rebuilt; `envgym/<name>:<hash>` gives both, and the hash is what trajectories record.
A recipe starts `ARG BASE_IMAGE` / `FROM ${BASE_IMAGE}` to sit on our offline base, or names any image it
likes (`FROM python:3.12-slim`) where a registry is reachable.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from envgym.sandboxes.base import SandboxInfraError
from envgym.sandboxes.images.base_image import ensure_base_image, image_exists

RECIPES_DIR = Path(__file__).parent / "recipes"


def recipe_path(name: str) -> Path:
    """A recipe shipped with envgym, e.g. `recipe_path("python-project")`."""
    path = RECIPES_DIR / f"{name}.Dockerfile"
    if not path.exists():
        known = sorted(p.name.removesuffix(".Dockerfile") for p in RECIPES_DIR.glob("*.Dockerfile"))
        raise FileNotFoundError(f"no recipe {name!r}; shipped recipes: {known}")
    return path


def recipe_hash(dockerfile: str, base: str, context: Path | None, build_args: dict[str, str]) -> str:
    h = hashlib.sha256()
    for part in (dockerfile, base, repr(sorted(build_args.items()))):
        h.update(part.encode())
        h.update(b"\0")
    if context is not None:
        for path in sorted(p for p in context.rglob("*") if p.is_file()):
            h.update(str(path.relative_to(context)).encode() + b"\0")
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:12]


def build_recipe(
    dockerfile: str | os.PathLike[str],
    name: str,
    context: str | os.PathLike[str] | None = None,
    base: str | None = None,
    build_args: dict[str, str] | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> str:
    """Build `dockerfile` (a path, or the recipe text) as `envgym/<name>:<hash>` unless it exists.

    `BASE_IMAGE` is passed as a build arg (the offline base unless `base` is given); `context` is the build
    context directory (none: an empty one). Returns the tag.
    """
    import docker.errors

    from envgym.sandboxes.docker_client import docker_client

    text = Path(dockerfile).read_text() if isinstance(dockerfile, os.PathLike) else str(dockerfile)
    if "\n" not in text and Path(text).exists():
        text = Path(text).read_text()
    uses_base = "BASE_IMAGE" in text
    base_tag = (base or ensure_base_image(log)) if uses_base else ""
    ctx = Path(context) if context is not None else None
    args = {**(build_args or {}), **({"BASE_IMAGE": base_tag} if uses_base else {})}
    tag = f"envgym/{name}:{recipe_hash(text, base_tag, ctx, args)}"
    if image_exists(tag):
        return tag
    client = docker_client()
    with tempfile.TemporaryDirectory(prefix="envgym-build-") as empty:
        build_dir = str(ctx) if ctx is not None else empty
        dockerfile_path = Path(empty) / "envgym.Dockerfile"
        dockerfile_path.write_text(text)
        try:
            stream = client.api.build(
                path=build_dir,
                dockerfile=str(dockerfile_path),
                tag=tag,
                buildargs=args,
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
                labels={"envgym.recipe": name, "envgym.recipe_hash": tag.rsplit(":", 1)[1]},
            )
            for chunk in stream:
                if "stream" in chunk and chunk["stream"].strip():
                    log(chunk["stream"].rstrip())
                if "error" in chunk:
                    raise SandboxInfraError(f"building recipe {name!r} failed: {chunk['error'].strip()}")
        except docker.errors.APIError as exc:
            raise SandboxInfraError(f"building recipe {name!r} failed: {exc}") from exc
    return tag
