"""What every Search-QA retriever shares: Search-R1's hit, the retriever protocol, its errors and query checks.

This module holds :data:`DEFAULT_TOPK`, :class:`Hit`, :class:`Retriever`, :class:`RetrieverError`,
:class:`RetrieverUnavailable` and :func:`check_queries`. Both the local retrievers (:mod:`.bm25`, :mod:`.dense`)
and the HTTP client (:mod:`.client`) import them from here, so neither imports the other at module level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypedDict, runtime_checkable

import numpy as np

__all__ = ["DEFAULT_TOPK", "Hit", "Retriever", "RetrieverError", "RetrieverUnavailable", "check_queries"]

DEFAULT_TOPK = 3
"""Passages per query in Search-R1's training and evaluation scripts."""


class Hit(TypedDict):
    """One retrieved passage, exactly as Search-R1's server returns it with ``return_scores: true``."""

    document: dict[str, Any]
    score: float


@runtime_checkable
class Retriever(Protocol):
    """Batched top-k passage search: one list of hits (best first) per query."""

    def search(self, queries: Sequence[str], topk: int = DEFAULT_TOPK) -> list[list[Hit]]:
        """The ``topk`` best passages for each of ``queries`` (fewer when fewer match)."""
        ...

    def close(self) -> None:
        """Release what the retriever holds (a connection); local retrievers hold nothing to release."""
        ...


class RetrieverError(RuntimeError):
    """A retriever could not be built, loaded or asked; the message says what and where."""


class RetrieverUnavailable(RetrieverError):
    """A remote retriever did not answer usefully after its retries (down, timing out, refusing, garbled).

    ``status`` is the last HTTP status received, or ``None`` when no response came back.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def check_queries(queries: object, topk: object) -> list[str]:
    """``queries`` as a list of strings after checking it and ``topk`` (a positive integer); else ``ValueError``."""
    if isinstance(queries, str | bytes):
        raise ValueError("queries must be a list of strings, not one string (wrap it in a list)")
    if not isinstance(queries, Sequence):
        raise ValueError(f"queries must be a list of strings, got {type(queries).__name__}")
    for i, query in enumerate(queries):
        if not isinstance(query, str):
            raise ValueError(f"queries[{i}] must be a string, got {type(query).__name__}")
    if isinstance(topk, bool) or not isinstance(topk, int | np.integer) or topk < 1:
        raise ValueError(f"topk must be a positive integer, got {topk!r}")
    return list(queries)
