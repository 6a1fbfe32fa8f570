"""Which install extra brings each optional heavy module, and the one helper that says so when it is missing.

Why: `pip install envgym` is the env library alone (gymnasium, pydantic, typer, rich, numpy, pyyaml). Docker,
torch, the web stack and the trainer integrations come with extras, and a user who lacks one should read
`pip install 'envgym[train]'`, not a bare `No module named 'torch'`. Code that imports one of these lazily
calls `require("torch")`; the CLI's error handler reads the same table for imports that fail elsewhere.
The table must match pyproject's extras (a test checks it).
"""

from __future__ import annotations

import importlib
from types import ModuleType

# top-level module -> (extra, distribution that provides it)
EXTRAS: dict[str, tuple[str, str]] = {
    "docker": ("swe", "docker"),
    "torch": ("train", "torch"),
    "transformers": ("train", "transformers"),
    "safetensors": ("train", "safetensors"),
    "gguf": ("train", "gguf"),
    "peft": ("train", "peft"),
    "matplotlib": ("train", "matplotlib"),
    "openai": ("train", "openai"),
    "fastapi": ("server", "fastapi"),
    "uvicorn": ("server", "uvicorn"),
    "sqlalchemy": ("server", "sqlalchemy"),
    "httpx": ("server", "httpx"),
    "websockets": ("server", "websockets"),
    "mcp": ("server", "mcp"),
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def install_hint(module: str, extra: str | None = None) -> str | None:
    """`pip install 'envgym[EXTRA]'` for a module we know, else None."""
    top = module.split(".")[0]
    extra = extra or EXTRAS.get(top, (None, None))[0]
    return f"pip install 'envgym[{extra}]'" if extra else None


def missing_message(module: str, extra: str | None = None) -> str:
    hint = install_hint(module, extra)
    return f"{module.split('.')[0]} is not installed" + (f": {hint}" if hint else "")


def require(module: str, extra: str | None = None) -> ModuleType:
    """Import `module`, or raise `MissingExtraError` naming the extra to install.

    Only a missing `module` itself is translated: an ImportError from inside an installed package (a broken
    install, a missing sub-dependency) propagates unchanged, since installing the extra would not fix it.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != module.split(".")[0]:
            raise
        raise MissingExtraError(missing_message(module, extra)) from exc


def explain(exc: BaseException) -> str | None:
    """For a `ModuleNotFoundError` of a module in the table, the line that says what to install."""
    if isinstance(exc, ModuleNotFoundError) and exc.name and exc.name.split(".")[0] in EXTRAS:
        return missing_message(exc.name)
    return None
