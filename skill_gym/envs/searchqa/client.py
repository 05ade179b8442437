"""The HTTP client of a Search-R1 retrieval server (ours, Search-R1's own, or any that speaks its protocol).

This module holds :class:`RemoteRetriever`: a :class:`~skill_gym.envs.searchqa.protocol.Retriever` that
sends Search-R1's request (``POST /retrieve`` with ``{"queries": [...], "topk": k, "return_scores": true}``)
and checks the reply's shape (``{"result": [[{"document": {...}, "score": s}, ...], ...]}``). Connection
failures, timeouts and 5xx answers are retried with a growing pause; when the retries are spent, or the
server refuses the request (4xx) or answers something else than that shape, it raises
:class:`~skill_gym.envs.searchqa.protocol.RetrieverUnavailable` and nothing else
(:func:`skill_gym.serving.request_json`). Standard library only.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from typing import Any

from skill_gym.envs.searchqa.protocol import DEFAULT_TOPK, Hit, RetrieverUnavailable, check_queries
from skill_gym.serving import request_json

__all__ = ["RemoteRetriever", "RetrieverUnavailable"]


class RemoteRetriever:
    """A retrieval server at ``url`` (``http://127.0.0.1:8000/retrieve``; a bare ``host:port`` URL gets ``/retrieve``).

    ``timeout`` bounds each attempt (seconds); ``retries`` is the number of attempts after the first for
    connection errors, timeouts and 5xx answers, paced ``backoff``, ``2·backoff``, ``4·backoff``... seconds
    apart. A 4xx answer is not retried (the same request would be refused again).

    >>> RemoteRetriever("http://127.0.0.1:9/retrieve", timeout=0.5, retries=0).search(["who?"])
    Traceback (most recent call last):
    ...
    skill_gym.envs.searchqa.protocol.RetrieverUnavailable: retriever at http://127.0.0.1:9/retrieve unreachable ...
    """

    def __init__(self, url: str, timeout: float = 10.0, retries: int = 2, backoff: float = 0.5) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the retriever URL must be http(s)://host[:port][/path], got {url!r}")
        if parts.path in ("", "/"):
            url = urllib.parse.urlunsplit(parts._replace(path="/retrieve"))
        if timeout <= 0 or retries < 0 or backoff < 0:
            raise ValueError("timeout must be positive, retries and backoff not negative")
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff

    def search(self, queries: Sequence[str], topk: int = DEFAULT_TOPK) -> list[list[Hit]]:
        """The server's ``topk`` hits for each query; :class:`RetrieverUnavailable` when it cannot give them."""
        queries = check_queries(queries, topk)
        if not queries:
            return []
        reply = self._post({"queries": queries, "topk": int(topk), "return_scores": True})
        return _checked_result(reply, len(queries), self.url)

    def _post(self, payload: dict[str, Any]) -> object:
        return request_json(
            self.url, payload, name="retriever", error=RetrieverUnavailable,
            timeout=self.timeout, retries=self.retries, backoff=self.backoff,
        )  # fmt: skip

    def close(self) -> None:
        """Nothing to release (each request opens and closes its own connection)."""


def _checked_result(reply: object, expected: int, url: str) -> list[list[Hit]]:
    """``reply["result"]`` after checking it has Search-R1's shape, one list of hits per query."""

    def bad(why: str) -> RetrieverUnavailable:
        return RetrieverUnavailable(f"retriever at {url} answered in an unexpected shape: {why}", 200)

    if not isinstance(reply, dict) or not isinstance(reply.get("result"), list):
        raise bad("no 'result' list")
    result = reply["result"]
    if len(result) != expected:
        raise bad(f"{len(result)} result lists for {expected} queries")
    hits: list[list[Hit]] = []
    for i, items in enumerate(result):
        if not isinstance(items, list):
            raise bad(f"result[{i}] is not a list")
        row: list[Hit] = []
        for item in items:
            document = item.get("document") if isinstance(item, dict) else None
            score = item.get("score") if isinstance(item, dict) else None
            if not isinstance(document, dict) or not isinstance(document.get("contents"), str):
                raise bad(f"an item of result[{i}] has no document with 'contents'")
            if isinstance(score, bool) or not isinstance(score, int | float):
                raise bad(f"an item of result[{i}] has no numeric score")
            row.append({"document": document, "score": float(score)})
        hits.append(row)
    return hits
