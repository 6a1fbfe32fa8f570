"""Project images: one per recipe, on the offline base image, with the pinned test wheels baked in.

Why this shape: the sdist and the wheels are fetched on the host (`pip download`, cached under
`~/.cache/envgym/swe`), so the build needs no network inside the container; the tag is a hash of everything that
goes in (recipe, base tag, Dockerfile), so `envgym swe build` is idempotent and a changed recipe is a new image.
The image holds no project source at all (a clean copy anywhere in it would leak the fix): the task tree is
uploaded from the host at reset, and any copy of the project's modules that Debian or pip vendor (six,
more_itertools, ...) is deleted at build time.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

from envgym.environments.swe.recipes import ProjectRecipe
from envgym.extras import require

REPO_DIR = "/repo"
VENV_DIR = "/opt/envgym-venv"
IMAGE_REPOSITORY = "envgym/swe"
IMAGE_BUILDER_VERSION = 2
PYTHON_VERSION = "3.11"  # Debian bookworm's python3, which the base image ships


class ImageBuildError(RuntimeError):
    """An image could not be built; the message says which step and how to fix it."""


def cache_dir() -> Path:
    root = Path(os.environ.get("ENVGYM_CACHE", Path.home() / ".cache" / "envgym")) / "swe"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pip_download(args: list[str], dest: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "-d", str(dest), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise ImageBuildError(f"`pip download {' '.join(args)}` failed (is PyPI reachable?):\n{proc.stderr[-2000:]}")


def fetch_sdist(recipe: ProjectRecipe) -> Path:
    """The recipe's sdist from the cache or PyPI, checked against its pinned sha256."""
    dest = cache_dir() / "sdists"
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / recipe.sdist
    if not path.exists():
        _pip_download(["--no-deps", "--no-binary", ":all:", recipe.spec], dest)
    if not path.exists():
        raise ImageBuildError(f"pip downloaded {recipe.spec} but {recipe.sdist} is not in {dest}")
    if _sha256(path) != recipe.sha256:
        raise ImageBuildError(f"{path} does not match the pinned sha256 of {recipe.spec}; delete it and retry")
    return path


def fetch_wheels(recipe: ProjectRecipe) -> list[Path]:
    """Pinned test wheels for the image's Python, downloaded on the host (the build has no network)."""
    dest = cache_dir() / "wheels"
    dest.mkdir(parents=True, exist_ok=True)
    platform_args = ["--only-binary", ":all:", "--python-version", PYTHON_VERSION, "--no-deps"]
    platform_args += ["--platform", "manylinux2014_x86_64", "--implementation", "cp"]
    found = []
    for spec in recipe.test_wheels:
        name, _, version = spec.partition("==")
        stem = f"{name.replace('-', '_')}-{version}-"
        matches = sorted(p for p in dest.glob("*.whl") if p.name.lower().startswith(stem.lower()))
        if not matches:
            _pip_download([*platform_args, spec], dest)
            matches = sorted(p for p in dest.glob("*.whl") if p.name.lower().startswith(stem.lower()))
        if not matches:
            raise ImageBuildError(f"no wheel for {spec} in {dest} after pip download")
        found.append(matches[0])
    return found


def module_names(recipe: ProjectRecipe) -> list[str]:
    """Top-level importable names of the project (files/dirs under its source paths)."""
    return sorted({Path(p).name for p in recipe.source_paths})


def dockerfile(recipe: ProjectRecipe, base_tag: str, wheel_names: list[str]) -> str:
    """Python venv + pinned test wheels. No project source: the tree is uploaded from the host (see trees.py)."""
    names = " ".join(module_names(recipe))
    wheels = " ".join("/tmp/wheels/" + w for w in wheel_names)
    return f"""FROM {base_tag}
USER root
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY wheels/ /tmp/wheels/
RUN python3 -m venv {VENV_DIR} && {VENV_DIR}/bin/pip install --no-index --no-cache-dir {wheels} && rm -rf /tmp/wheels
# Debian and pip vendor copies of some projects (six, more_itertools): delete every copy of the project's
# modules, sources, bytecode and wheels, so the only one in the container is the task's (buggy) tree.
RUN for n in {names}; do \\
      find / -xdev -not -path '/proc/*' \\( -name "$n" -o -name "$n-*.whl" -o -name "${{n%.py}}-*.whl" \\
        -o -name "${{n%.py}}" -o -name "${{n%.py}}.*.pyc" \\) -prune -exec rm -rf {{}} + ; done \\
 && mkdir -p {REPO_DIR} && chown 1000:1000 {REPO_DIR}
ENV PATH={VENV_DIR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR {REPO_DIR}
RUN cd / && python -c "import importlib.util as u, sys; \\
bad=[n for n in sys.argv[1:] if u.find_spec(n.removesuffix('.py'))]; sys.exit(f'leak: {{bad}}' if bad else 0)" {names}
"""


def image_tag(recipe: ProjectRecipe, base_tag: str) -> str:
    """Content-hashed tag: recipe + base image + Dockerfile + builder version."""
    wheel_specs = sorted(recipe.test_wheels)
    payload = "\n".join(
        [recipe.model_dump_json(), base_tag, dockerfile(recipe, base_tag, wheel_specs), str(IMAGE_BUILDER_VERSION)]
    )
    return f"{IMAGE_REPOSITORY}:{recipe.slug}-{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


def _docker():  # type: ignore[no-untyped-def]
    require("docker")
    import docker

    return docker.from_env(timeout=600)


def image_exists(tag: str) -> bool:
    import docker.errors

    try:
        _docker().images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def base_image_tag(log: Callable[[str], None] = lambda line: None) -> str:
    """The sandboxes team's offline base image (built on first use)."""
    from envgym.sandboxes.images import ensure_base_image

    return ensure_base_image(log=log)


def build_image(recipe: ProjectRecipe, log: Callable[[str], None] = lambda line: None, force: bool = False) -> str:
    """Build (or find) the project image for `recipe`; returns its tag."""
    base_tag = base_image_tag(log)
    tag = image_tag(recipe, base_tag)
    fetch_sdist(recipe)  # the host builds task trees from it at reset: fetch now, so run time needs no network
    if not force and image_exists(tag):
        return tag
    wheels = fetch_wheels(recipe)
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        df = dockerfile(recipe, base_tag, [w.name for w in wheels]).encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(df)
        tar.addfile(info, io.BytesIO(df))
        for wheel in wheels:
            tar.add(wheel, arcname=f"wheels/{wheel.name}")
    context.seek(0)
    # Direct docker SDK use (minimal, marked): the sandboxes package has no Dockerfile-on-base helper yet.
    client = _docker()
    labels = {"envgym.recipe": recipe.spec, "envgym.recipe_hash": tag.rsplit("-", 1)[-1], "envgym.base": base_tag}
    try:
        for chunk in client.api.build(
            fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True, labels=labels, decode=True
        ):
            if "stream" in chunk and chunk["stream"].strip():
                log(chunk["stream"].rstrip())
            if "error" in chunk:
                raise ImageBuildError(f"building {tag} failed: {chunk['error']}")
    except ImageBuildError:
        raise
    except Exception as exc:  # docker.errors.* and connection errors
        raise ImageBuildError(f"building {tag} failed: {exc}. Is the Docker engine running (`docker info`)?") from exc
    return tag


def extract_sdist(recipe: ProjectRecipe, dest: Path) -> Path:
    """Unpack the sdist on the host (synthesis reads the pristine source from here)."""
    sdist = fetch_sdist(recipe)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tarfile.open(sdist) as tar:
        members = []
        for member in tar.getmembers():
            parts = member.name.split("/", 1)
            if len(parts) < 2 or not parts[1] or member.issym() or member.islnk():
                continue
            member.name = parts[1]
            members.append(member)
        tar.extractall(dest, members=members, filter="data")
    return dest
