"""Opening a Search-QA retriever by spec: built once per corpus, cached on disk and shared in-process.

This module holds :func:`open_retriever` — a retriever from a spec (``"bm25"``, ``"dense"``,
``"dense:<model>"`` or an http(s) URL). The retrievers themselves live in :mod:`.bm25`, :mod:`.dense` and
:mod:`.client`, what they share in :mod:`.protocol`, the corpus format in :mod:`.corpus`; their names are
imported here as well, so one import gives a caller all it needs to open and use a retriever.

Heavy libraries (``bm25s``, ``hnswlib``, ``sentence_transformers``) load when a retriever is built or loaded,
not when this module is imported.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from skill_gym.assets import DEFAULT_ENCODER, cache_dir, file_lock
from skill_gym.envs.searchqa.bm25 import BM25Retriever
from skill_gym.envs.searchqa.corpus import (
    CorpusError,
    check_corpus,
    corpus_fingerprint,
    format_passages,
    passage_text,
    passage_title,
    read_corpus,
)
from skill_gym.envs.searchqa.dense import DenseRetriever
from skill_gym.envs.searchqa.index import META_FILE
from skill_gym.envs.searchqa.protocol import Retriever, RetrieverError, RetrieverUnavailable
from skill_gym.files import staged_dir

__all__ = [
    "BM25Retriever",
    "CorpusError",
    "DenseRetriever",
    "Retriever",
    "RetrieverError",
    "RetrieverUnavailable",
    "check_corpus",
    "corpus_fingerprint",
    "format_passages",
    "open_retriever",
    "passage_text",
    "passage_title",
    "read_corpus",
]

_OPEN: dict[tuple[Any, ...], Retriever] = {}
_OPEN_LOCK = threading.Lock()


def open_retriever(
    spec: str,
    corpus: Sequence[dict[str, Any]] | str | Path | None = None,
    index_dir: str | Path | None = None,
    **kwargs: Any,
) -> Retriever:
    """A retriever by ``spec``: ``"bm25"``, ``"dense"``, ``"dense:<model id or path>"`` or an http(s) URL.

    Local retrievers index ``corpus`` (records or a wiki-18 jsonl path) once: the index is saved under
    ``index_dir`` (default ``<cache_dir>/searchqa/indexes``) in a folder named by the kind, the model, a
    fingerprint of the corpus and, when ``kwargs`` are given, a fingerprint of them (another ``k1`` is another
    index), built under a file lock so concurrent processes build it once, and shared
    in-process (the same spec and corpus give the same object). A damaged cached index is rebuilt.
    ``kwargs`` go to ``build`` (``k1``/``b`` for BM25; ``ef_search``, ``m``... for dense) or, for a URL, to
    :class:`~skill_gym.envs.searchqa.client.RemoteRetriever` (``timeout``, ``retries``...).

    >>> open_retriever("tf-idf", [])
    Traceback (most recent call last):
    ...
    ValueError: unknown retriever 'tf-idf': use 'bm25', 'dense', 'dense:<model id or path>' or an http(s) URL
    """
    if not isinstance(spec, str):
        raise ValueError(f"the retriever spec must be a string, got {type(spec).__name__}")
    if spec.startswith(("http://", "https://")):
        from skill_gym.envs.searchqa.client import RemoteRetriever

        return RemoteRetriever(spec, **kwargs)
    kind, _, model = spec.partition(":")
    if kind not in ("bm25", "dense") or (kind == "bm25" and model):
        raise ValueError(
            f"unknown retriever {spec!r}: use 'bm25', 'dense', 'dense:<model id or path>' or an http(s) URL"
        )
    if corpus is None:
        raise ValueError(f"the {kind} retriever needs a corpus (records or a wiki-18 jsonl path)")
    model = model or DEFAULT_ENCODER
    is_path = isinstance(corpus, str | Path)
    if is_path and not Path(corpus).is_file():
        raise FileNotFoundError(f"no corpus file at {corpus}")
    documents = None if is_path else check_corpus(corpus)  # type: ignore[arg-type]
    fingerprint = corpus_fingerprint(corpus if is_path else documents)  # type: ignore[arg-type]
    root = Path(index_dir) if index_dir is not None else cache_dir() / "searchqa" / "indexes"
    key = (kind, model, fingerprint, str(root.resolve()), tuple(sorted(kwargs.items())))
    with _OPEN_LOCK:
        if key in _OPEN:
            return _OPEN[key]
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(model).name if kind == "dense" else "lucene")[:48]
        folder = root / f"{kind}-{slug}-{fingerprint[:20]}{_settings_suffix(kwargs)}"
        cls: Any = BM25Retriever if kind == "bm25" else DenseRetriever
        with file_lock(root / f"{folder.name}.lock"):
            retriever = _load_or_build(cls, folder, corpus, documents, model, kwargs)
        _OPEN[key] = retriever
        return retriever


def _settings_suffix(kwargs: dict[str, Any]) -> str:
    """``-<hash>`` of the build settings for an index folder's name; none for the defaults (no settings given)."""
    if not kwargs:
        return ""
    text = json.dumps(sorted(kwargs.items()), default=repr)
    return "-" + hashlib.sha256(text.encode()).hexdigest()[:10]


def _load_or_build(
    cls: Any,
    folder: Path,
    corpus: Sequence[dict[str, Any]] | str | Path,
    documents: list[dict[str, Any]] | None,
    model: str,
    kwargs: dict[str, Any],
) -> Retriever:
    if (folder / META_FILE).is_file():
        try:
            return cls.load(folder, documents)
        except RetrieverError as error:
            warnings.warn(f"rebuilding the retriever index: {error}", stacklevel=3)
    if documents is None:
        documents = read_corpus(corpus)  # type: ignore[arg-type]
    extra = {"model": model} if cls is DenseRetriever else {}
    retriever = cls.build(documents, **extra, **kwargs)
    with staged_dir(folder) as staging:
        retriever.save(staging)
    return retriever
