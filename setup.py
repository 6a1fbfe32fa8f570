"""Maps the four top-level code folders into the `envgym` namespace.

Why a setup.py: setuptools' declarative config cannot discover sub-packages under a remapped folder, and we
do not want every new sub-package to need a pyproject edit.
"""

from setuptools import find_packages, setup

ROOTS = {
    "envgym": "envgym",
    "envgym.environments": "environments",
    "envgym.agents": "agents",
    "envgym.sandboxes": "sandboxes",
}

packages = []
for namespace, folder in ROOTS.items():
    packages.append(namespace)
    packages += [f"{namespace}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=ROOTS)
