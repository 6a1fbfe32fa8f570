"""Build the API reference (HTML, from docstrings) with pdoc; any pdoc warning fails the build.

Usage: `.venv/bin/python scripts/api_docs.py [OUT_DIR]` (default `build/api`). The modules are the public
surface a user codes against: the env contract, records, registry, sandboxes' front door, rollouts and
policies. A test runs this, so a docstring pdoc cannot render (or a module that no longer imports) fails CI.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

MODULES = [
    "envgym",
    "envgym.core",
    "envgym.actions",
    "envgym.text",
    "envgym.registry",
    "envgym.trajectory",
    "envgym.runner",
    "envgym.run_dir",
    "envgym.families",
    "envgym.curriculum",
    "envgym.extras",
    "envgym.viewer",
    "envgym.sandboxes",
    "envgym.sandboxes.base",
    "envgym.sandboxes.front_door",
    "envgym.agents.rollout",
    "envgym.agents.policies.base",
    "envgym.agents.policies.scripted",
]


def build(out: Path, modules: list[str] = MODULES) -> list[str]:
    """Write the reference for `modules` to `out`; return pdoc's warnings (empty when clean)."""
    import pdoc
    import pdoc.render

    pdoc.render.configure(docformat="markdown", footer_text="envgym API reference")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*modules, output_directory=out)
    return [f"{w.category.__name__}: {w.message}" for w in caught if "pdoc" in (w.filename or "")]


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("build/api")
    problems = build(out)
    for line in problems:
        print(f"api docs: {line}", file=sys.stderr)
    if problems:
        return 1
    print(f"api docs: {len(MODULES)} modules -> {out}/index.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
