"""Which install extra brings each optional heavy module, and the one helper that says so when it is missing.

Why: `pip install envgym` is the env library alone (gymnasium, pydantic, typer, rich, numpy, pyyaml). Docker,
torch, the web stack and the trainer integrations come with extras, and a user who lacks one should read
`pip install 'envgym[train]'`, not a bare `No module named 'torch'`. Code that imports one of these lazily
calls `require("torch")`; a module that needs one at import time wraps those imports in
`with needs_extra("server"):`; the CLI's error handler reads the same table for imports that fail elsewhere.
The table must match pyproject's extras (a test checks it).
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Iterator
from contextlib import contextmanager
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
    "trl": ("integrations", "trl"),
    "datasets": ("integrations", "datasets"),
    "skyrl_gym": ("integrations", "skyrl-gym"),
    "verifiers": ("integrations", "verifiers"),
}


class MissingExtraError(ModuleNotFoundError):
    """An optional dependency is not installed; the message names the extra that brings it.

    A `ModuleNotFoundError` (with `name` set) so that code which probes for an optional part of envgym
    (`except ModuleNotFoundError`, e.g. the CLI's plugin loader) treats it as the missing module it is."""

    def __init__(self, message: str, name: str | None = None) -> None:
        super().__init__(message, name=name)


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
        raise MissingExtraError(missing_message(module, extra), name=exc.name) from exc


@contextmanager
def needs_extra(extra: str, also: Collection[str] = ()) -> Iterator[None]:
    """Around a module's top-level imports of optional packages: a missing one (a module in the table, or one
    named in `also`: what the extra brings in transitively, e.g. anyio with the web stack) is re-raised as
    `MissingExtraError` naming `extra`; anything else, a broken install included, propagates unchanged."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if exc.name is None or ((top := exc.name.split(".")[0]) not in EXTRAS and top not in also):
            raise
        raise MissingExtraError(missing_message(exc.name, extra), name=exc.name) from exc


def explain(exc: BaseException) -> str | None:
    """For a `ModuleNotFoundError` of a module in the table, the line that says what to install."""
    if isinstance(exc, MissingExtraError):
        return str(exc)
    if isinstance(exc, ModuleNotFoundError) and exc.name and exc.name.split(".")[0] in EXTRAS:
        return missing_message(exc.name)
    return None
