"""Maps the four top-level code folders into the `envgym` namespace, with the data folders they carry.

Why a setup.py: setuptools' declarative config cannot discover sub-packages under a remapped folder, and we
do not want every new sub-package to need a pyproject edit. For the same reason, files in a plain folder
inside a package (e.g. `agents/configs/*.yaml`, `environments/swe/data/*.jsonl`) are shipped as that
package's data here: `package-data` patterns in pyproject only see files in package folders themselves.
"""

from pathlib import Path

from setuptools import find_packages, setup

ROOTS = {
    "envgym": "envgym",
    "envgym.environments": "environments",
    "envgym.agents": "agents",
    "envgym.sandboxes": "sandboxes",
}
SKIP = {"__pycache__"}
# data files inside package folders themselves (kept here, not in pyproject: pyproject's package-data would
# replace the whole mapping below instead of adding to it)
PACKAGE_FILES = ["*.json", "*.jsonl", "*.txt", "*.yaml", "Dockerfile", "*.Dockerfile", "*.sh", "*.tar.gz", "*.html"]


def data_folders(package_dir: Path) -> list[str]:
    """Files under `package_dir`'s sub-folders that are not packages themselves (relative paths)."""
    files = []
    for sub in sorted(p for p in package_dir.iterdir() if p.is_dir() and p.name not in SKIP):
        if (sub / "__init__.py").exists():
            continue
        files += [
            str(f.relative_to(package_dir))
            for f in sorted(sub.rglob("*"))
            if f.is_file() and not SKIP & set(f.parts) and f.suffix != ".pyc"
        ]
    return files


packages = []
package_data: dict[str, list[str]] = {"*": PACKAGE_FILES}
for namespace, folder in ROOTS.items():
    names = [namespace] + [f"{namespace}.{sub}" for sub in find_packages(folder)]
    packages += names
    for name in names:
        data = data_folders(Path(folder, *name.split(".")[len(namespace.split(".")) :]))
        if data:
            package_data[name] = data

setup(packages=packages, package_dir=ROOTS, package_data=package_data)
