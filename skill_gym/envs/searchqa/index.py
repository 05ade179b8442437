"""The folder a local retriever's index is saved in, shared by :mod:`.bm25` and :mod:`.dense`.

A folder holds the index's own files, ``corpus.jsonl`` (the indexed passages, in index order) and ``meta.json``
(written last: the index format, its kind and what it was built with). This module holds :data:`META_FILE`,
:data:`CORPUS_FILE`, :func:`write_meta`, :func:`read_meta`, :func:`load_documents` and :func:`hits` (index rows
and their scores as Search-R1 hits).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from skill_gym.envs.searchqa.corpus import CorpusError, check_corpus, read_corpus
from skill_gym.envs.searchqa.protocol import Hit, RetrieverError

__all__ = ["CORPUS_FILE", "INDEX_FORMAT", "META_FILE", "hits", "load_documents", "read_meta", "write_meta"]

INDEX_FORMAT = 1
"""Bumped whenever the folder's layout changes, so older folders are rebuilt."""

META_FILE = "meta.json"
CORPUS_FILE = "corpus.jsonl"


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    """Write ``meta.json`` (the index format and ``meta``) into ``folder``; the last file of a saved index."""
    (folder / META_FILE).write_text(json.dumps({"format": INDEX_FORMAT, **meta}, indent=2) + "\n")


def read_meta(folder: Path, kind: str) -> dict[str, Any]:
    """``meta.json`` of the ``kind`` index in ``folder``, or :class:`RetrieverError` saying why there is none."""
    try:
        meta = json.loads((Path(folder) / META_FILE).read_text())
    except (OSError, ValueError) as error:
        raise RetrieverError(f"no readable {kind} index in {folder} ({error})") from None
    if not isinstance(meta, dict) or meta.get("kind") != kind or meta.get("format") != INDEX_FORMAT:
        raise RetrieverError(f"{folder} does not hold a format-{INDEX_FORMAT} {kind} index")
    return meta


def load_documents(folder: Path, corpus: Sequence[dict[str, Any]] | None, count: int) -> list[dict[str, Any]]:
    """The ``count`` passages of the index in ``folder``: ``corpus`` if given (the same passages), else its copy."""
    try:
        documents = check_corpus(corpus) if corpus is not None else read_corpus(folder / CORPUS_FILE)
    except (CorpusError, FileNotFoundError) as error:
        raise RetrieverError(f"the passages of the index in {folder} are unusable: {error}") from None
    if len(documents) != count:
        raise RetrieverError(f"the index in {folder} covers {count} passages but the corpus has {len(documents)}")
    return documents


def hits(documents: Sequence[dict[str, Any]], rows: Iterable[int], scores: Iterable[float]) -> list[Hit]:
    """The passages at index ``rows`` with their ``scores``, in that order."""
    return [{"document": documents[int(row)], "score": float(score)} for row, score in zip(rows, scores, strict=True)]
