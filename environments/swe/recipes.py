"""Pinned project recipes: which PyPI sdist, where its source and tests live, how its suite runs.

Why pinned sdists: PyPI is the one code host reachable from everywhere we run, and a pinned file with a sha256 is
a stable, versioned source; the same recipe rebuilds the same image and the same tasks. Each recipe was checked
by hand: the sdist ships its tests and the suite passes in a few seconds with only the pinned test wheels.
"""

from __future__ import annotations

import fnmatch
import posixpath

from pydantic import BaseModel, Field

# One pytest for every project image: the grader's JUnit reading and the test-id scheme depend on it.
PYTEST_WHEELS: tuple[str, ...] = ("pytest==8.3.5", "pluggy==1.5.0", "iniconfig==2.0.0", "packaging==24.2")

# Paths that are test infrastructure in every project: an agent's patch may never touch them, the grader
# restores them from the base. Matched against each path component / the basename.
TEST_INFRA_BASENAMES: tuple[str, ...] = (
    "conftest.py",
    "pytest.ini",
    "tox.ini",
    "setup.cfg",
    "setup.py",
    "pyproject.toml",
    "noxfile.py",
    ".coveragerc",
    "sitecustomize.py",
    "usercustomize.py",
    "*.pth",
    "test_*.py",
    "*_test.py",
    "tests.py",
)
TEST_INFRA_DIRS: tuple[str, ...] = ("test", "tests", "testing")


class ProjectRecipe(BaseModel):
    """How to turn one PyPI project version into a test-ready image and mutation targets."""

    name: str = Field(description="PyPI project name")
    version: str
    sdist: str = Field(description="sdist file name on PyPI")
    sha256: str
    repo: str = Field(description="upstream owner/name, used as SWE-bench's `repo`")
    source_paths: list[str] = Field(description="files/dirs (relative to the sdist root) holding library code")
    test_paths: list[str] = Field(description="files/dirs holding tests and test config")
    test_args: list[str] = Field(description="pytest arguments selecting the suite (paths)")
    test_wheels: list[str] = Field(default_factory=lambda: list(PYTEST_WHEELS))
    exclude_files: list[str] = Field(default_factory=list, description="source files never mutated (glob)")
    test_timeout_s: float = 120.0

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}"

    @property
    def slug(self) -> str:
        return f"{self.name.lower().replace('_', '-')}-{self.version}"

    @property
    def test_command(self) -> str:
        return "python -m pytest -p no:cacheprovider -q " + " ".join(self.test_args)

    def is_test_path(self, path: str) -> bool:
        return is_test_infra(path, self.test_paths)

    def is_source_path(self, path: str) -> bool:
        return is_allowed_source(path, self.source_paths, self.test_paths)


def is_test_infra(path: str, test_paths: list[str] | tuple[str, ...] = ()) -> bool:
    """True for tests and anything that can change how pytest runs or reports (never taken from an agent)."""
    norm = posixpath.normpath(path.lstrip("/"))
    parts = norm.split("/")
    if any(part in TEST_INFRA_DIRS for part in parts[:-1]):
        return True
    if any(fnmatch.fnmatch(parts[-1], pattern) for pattern in TEST_INFRA_BASENAMES):
        return True
    return any(norm == p.rstrip("/") or norm.startswith(p.rstrip("/") + "/") for p in test_paths)


def is_allowed_source(path: str, source_paths: list[str], test_paths: list[str]) -> bool:
    """Whether an agent's patch may change `path`: a Python file under a source path that is not test infra."""
    norm = posixpath.normpath(path.lstrip("/"))
    if norm.startswith("..") or is_test_infra(norm, test_paths) or not norm.endswith(".py"):
        return False
    if not source_paths:
        return True
    return any(norm == p.rstrip("/") or norm.startswith(p.rstrip("/") + "/") for p in source_paths)


RECIPES: dict[str, ProjectRecipe] = {
    r.name: r
    for r in [
        ProjectRecipe(
            name="boltons",
            version="26.2.0",
            sdist="boltons-26.2.0.tar.gz",
            sha256="d39cfd15c1a1c3bd4d705c82252fa9edb8e4f5e8cc039f8e39afac7b1b47e92c",
            repo="mahmoud/boltons",
            source_paths=["boltons"],
            test_paths=["tests", "pyproject.toml", "tox.ini"],
            test_args=["tests"],
            exclude_files=["boltons/debugutils.py", "boltons/deprutils.py"],
        ),
        ProjectRecipe(
            name="inflection",
            version="0.5.1",
            sdist="inflection-0.5.1.tar.gz",
            sha256="1a29730d366e996aaacffb2f1f1cb9593dc38e2ddd30c91250c6dde09ea9b417",
            repo="jpvanhoof/inflection",
            source_paths=["inflection"],
            test_paths=["test_inflection.py", "setup.cfg", "setup.py"],
            test_args=["test_inflection.py"],
        ),
        ProjectRecipe(
            name="more-itertools",
            version="10.1.0",
            sdist="more-itertools-10.1.0.tar.gz",
            sha256="626c369fa0eb37bac0291bce8259b332fd59ac792fa5497b59837309cd5b114a",
            repo="more-itertools/more-itertools",
            source_paths=["more_itertools"],
            test_paths=["tests", "pyproject.toml", "setup.cfg", "setup.py", "tox.ini"],
            test_args=["tests"],
        ),
        ProjectRecipe(
            name="six",
            version="1.17.0",
            sdist="six-1.17.0.tar.gz",
            sha256="ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81",
            repo="benjaminp/six",
            source_paths=["six.py"],
            test_paths=["test_six.py", "setup.cfg", "setup.py"],
            test_args=["test_six.py"],
        ),
        ProjectRecipe(
            name="tabulate",
            version="0.10.0",
            sdist="tabulate-0.10.0.tar.gz",
            sha256="e2cfde8f79420f6deeffdeda9aaec3b6bc5abce947655d17ac662b126e48a60d",
            repo="astanin/python-tabulate",
            source_paths=["tabulate"],
            test_paths=["test", "pyproject.toml", "setup.cfg", "tox.ini"],
            test_args=["test"],
        ),
        ProjectRecipe(
            name="toolz",
            version="1.2.0",
            sdist="toolz-1.2.0.tar.gz",
            sha256="9667a038e9d6ecba37995e26cb2f59ec6420b6ad8dd9677de59db9b956b08490",
            repo="pytoolz/toolz",
            source_paths=["toolz", "tlz"],
            test_paths=["toolz/tests", "toolz/sandbox/tests", "pyproject.toml", "setup.cfg", "setup.py"],
            test_args=["toolz"],
            exclude_files=["toolz/_version.py", "tlz/_build_tlz.py", "toolz/compatibility.py"],
        ),
    ]
}


def recipe_for(spec: str) -> ProjectRecipe:
    """Look up `NAME` or `NAME==VERSION`; raises KeyError listing the bundled recipes."""
    name, _, version = spec.partition("==")
    recipe = RECIPES.get(name) or RECIPES.get(name.replace("_", "-"))
    if recipe is None or (version and version != recipe.version):
        known = ", ".join(r.spec for r in RECIPES.values())
        raise KeyError(f"no recipe for {spec!r}; bundled recipes: {known} (add one in envgym.environments.swe.recipes)")
    return recipe
