"""The retrieval server: any :class:`~skill_gym.envs.searchqa.protocol.Retriever` behind Search-R1's HTTP API.

This module holds:

* :class:`ServerLimits` and :func:`parse_request` — the bounds on a request and the checks that turn a JSON
  body into ``(queries, topk, return_scores)`` or a :class:`~skill_gym.serving.BadRequest` (a 4xx with a
  message);
* :func:`render_result` — the reply body in Search-R1's shape, with or without scores;
* :func:`create_app` — the Flask app: ``POST /retrieve`` in Search-R1's shape
  (``{"queries": [...], "topk": k, "return_scores": bool}``) and verl-agent's (``{"query": "...", ...}``),
  ``GET /health``, and JSON errors for everything else;
* :class:`RetrievalServer` — the app on a :class:`~skill_gym.serving.BackgroundServer` bound to
  127.0.0.1 (port 0: a free one), run in the foreground or in a background thread
  (``with RetrievalServer(retriever) as server: server.url``);
* :func:`add_serve_target` — ``skill-gym serve retriever`` (see :data:`skill_gym.cli.SERVE_TARGETS`), over
  ``--corpus`` or else :func:`default_corpus`, the embedded knowledge base's.

Replies follow Search-R1's ``retrieval_server.py``: ``{"result": [[{"document": {...}, "score": s}, ...], ...]}``
with ``return_scores: true`` and ``{"result": [[{...document...}, ...], ...]}`` without (what upstream's code
builds on that path, which its server then fails to reach: it unpacks ``results, scores`` from a call that
returns only results). Flask loads when an app is created.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skill_gym.envs.searchqa.protocol import DEFAULT_TOPK, Hit, Retriever
from skill_gym.serving import BackgroundServer, BadRequest, json_app, json_type, read_json, short_json

if TYPE_CHECKING:
    import flask

__all__ = [
    "BadRequest",
    "RetrievalServer",
    "ServerLimits",
    "add_serve_target",
    "create_app",
    "default_corpus",
    "parse_request",
    "render_result",
]


@dataclasses.dataclass(frozen=True)
class ServerLimits:
    """What one request may ask for; anything beyond gets a 4xx with a message."""

    default_topk: int = DEFAULT_TOPK
    """Passages per query when the request names no ``topk`` (Search-R1 scripts: 3)."""
    max_topk: int = 100
    """Largest ``topk`` served."""
    max_queries: int = 1024
    """Most queries in one request (Search-R1's example client sends 400)."""
    max_query_chars: int = 8192
    """Longest query, in characters."""
    max_body_bytes: int = 4 << 20
    """Largest request body (413 beyond)."""


def parse_request(payload: object, limits: ServerLimits = ServerLimits()) -> tuple[list[str], int, bool]:
    """``(queries, topk, return_scores)`` of a ``/retrieve`` body, or :class:`BadRequest` saying what is wrong.

    ``queries`` (a list of strings, Search-R1) or ``query`` (a string or a list of strings, verl-agent); ``topk``
    a positive integer up to ``limits.max_topk`` (``null`` or absent: ``limits.default_topk``);
    ``return_scores`` a boolean (default false).

    >>> parse_request({"query": "who wrote it?", "topk": 5})
    (['who wrote it?'], 5, False)
    >>> parse_request({"queries": ["a"], "topk": 10_000})
    Traceback (most recent call last):
    ...
    skill_gym.serving.BadRequest: 'topk' must be an integer from 1 to 100, got 10000
    """
    if not isinstance(payload, dict):
        raise BadRequest(f"the body must be a JSON object, got {json_type(payload)}")
    if ("queries" in payload) == ("query" in payload):
        raise BadRequest("the body must have exactly one of 'queries' (a list of strings) and 'query' (a string)")
    if "queries" in payload:
        queries = payload["queries"]
        if not isinstance(queries, list):
            raise BadRequest(f"'queries' must be a list of strings, got {json_type(queries)}")
    else:
        query = payload["query"]
        queries = [query] if isinstance(query, str) else query
        if not isinstance(queries, list):
            raise BadRequest(f"'query' must be a string (or a list of strings), got {json_type(query)}")
    if len(queries) > limits.max_queries:
        raise BadRequest(f"{len(queries)} queries in one request; the limit is {limits.max_queries}", 413)
    for i, query in enumerate(queries):
        if not isinstance(query, str):
            raise BadRequest(f"query {i} must be a string, got {json_type(query)}")
        if len(query) > limits.max_query_chars:
            raise BadRequest(f"query {i} has {len(query)} characters; the limit is {limits.max_query_chars}", 413)
    topk = payload.get("topk")
    if topk is None:
        topk = limits.default_topk
    if isinstance(topk, bool) or not isinstance(topk, int) or not 1 <= topk <= limits.max_topk:
        raise BadRequest(f"'topk' must be an integer from 1 to {limits.max_topk}, got {short_json(topk)}")
    return_scores = payload.get("return_scores", False)
    if not isinstance(return_scores, bool):
        raise BadRequest(f"'return_scores' must be true or false, got {json_type(return_scores)}")
    return queries, topk, return_scores


def render_result(hits: list[list[Hit]], return_scores: bool) -> dict[str, Any]:
    """Search-R1's reply body: hits as they are, or only their documents without ``return_scores``."""
    if return_scores:
        return {"result": hits}
    return {"result": [[hit["document"] for hit in row] for row in hits]}


def create_app(retriever: Retriever, limits: ServerLimits = ServerLimits()) -> flask.Flask:
    """The Flask app serving ``retriever`` (``POST /retrieve``, ``GET /health``); every error is JSON."""
    import flask

    app = json_app("skill_gym.searchqa.retriever", limits.max_body_bytes, "POST /retrieve or GET /health", "retrieval")

    @app.post("/retrieve")
    def retrieve() -> flask.Response:
        payload = read_json('send {"queries": [...], "topk": 3}')
        queries, topk, return_scores = parse_request(payload, limits)
        return flask.jsonify(render_result(retriever.search(queries, topk), return_scores))

    @app.get("/health")
    def health() -> flask.Response:
        return flask.jsonify(
            {
                "status": "ok",
                "retriever": getattr(retriever, "kind", type(retriever).__name__),
                "passages": _size(retriever),
            }
        )

    return app


def _size(retriever: Retriever) -> int | None:
    try:
        return len(retriever)  # type: ignore[arg-type]
    except TypeError:
        return None


class RetrievalServer(BackgroundServer):
    """``retriever`` served on ``host:port`` (port 0 picks a free one) by a threaded WSGI server.

    ``start()`` serves from a background thread (``url`` is then the ``/retrieve`` address); ``serve_forever()``
    serves in the foreground; ``close()`` (or leaving the ``with`` block) stops it. One thread per request, so
    concurrent clients are served at once. ``log_requests`` prints one access-log line per request to stderr.
    """

    def __init__(
        self,
        retriever: Retriever,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: ServerLimits = ServerLimits(),
        log_requests: bool = False,
    ) -> None:
        super().__init__(create_app(retriever, limits), host, port, log_requests, name="retrieval-server")
        self.retriever = retriever
        self.limits = limits

    @property
    def url(self) -> str:
        """The ``POST /retrieve`` address (what Search-R1's ``search_url`` expects)."""
        return f"{self.root}/retrieve"


# -- skill-gym serve retriever ----------------------------------------------------------------


def add_serve_target(targets: Any) -> None:
    """Add ``retriever`` to ``skill-gym serve`` (``targets``: the ``serve`` sub-parsers)."""
    parser = targets.add_parser(
        "retriever",
        help="a Search-R1 retrieval server (POST /retrieve) over a wiki-18 corpus",
        description="Serve BM25 or dense retrieval over a wiki-18 jsonl corpus with Search-R1's HTTP API, "
        "on 127.0.0.1. The index is built on first use and cached. Without --corpus, the embedded knowledge "
        "base's corpus (the one SearchQA-v0 searches by default) is served.",
    )
    parser.add_argument(
        "--corpus",
        help='wiki-18 jsonl ({"id", "contents": "\\"Title\\"\\ntext"}; default: the embedded knowledge base\'s corpus)',
    )
    parser.add_argument(
        "--retriever", default="bm25", help="bm25, dense or dense:<model id or path> (default: %(default)s)"
    )
    parser.add_argument("--index-dir", type=Path, help="index cache folder (default: the skill-gym cache)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one (default: %(default)s)")
    parser.add_argument("--topk", type=int, default=DEFAULT_TOPK, help="passages when a request names no topk")
    parser.add_argument("--max-topk", type=int, default=ServerLimits.max_topk, help="largest topk served")
    parser.add_argument("--max-queries", type=int, default=ServerLimits.max_queries, help="most queries per request")
    parser.add_argument("--log-requests", action="store_true", help="print an access-log line per request")
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from skill_gym.envs.searchqa.corpus import CorpusError
    from skill_gym.envs.searchqa.protocol import RetrieverError
    from skill_gym.envs.searchqa.retriever import open_retriever

    if args.retriever.startswith(("http://", "https://")):
        raise ValueError("--retriever must be bm25, dense or dense:<model>, not a URL")
    if not 1 <= args.topk <= args.max_topk:
        raise ValueError(f"--topk must be between 1 and --max-topk ({args.max_topk})")
    corpus = args.corpus or default_corpus()
    try:
        retriever = open_retriever(args.retriever, corpus, index_dir=args.index_dir)
    except (CorpusError, RetrieverError) as error:
        raise ValueError(str(error)) from None
    limits = ServerLimits(default_topk=args.topk, max_topk=args.max_topk, max_queries=args.max_queries)
    server = RetrievalServer(retriever, args.host, args.port, limits, log_requests=args.log_requests)
    where = f"corpus: {Path(corpus).resolve()}"
    if args.corpus is None:
        where += " (the embedded knowledge base's; --corpus PATH serves another)"
    return server.run(f"serving {args.retriever} over {_size(retriever)} passages at {server.url}\n{where}")


def default_corpus() -> Path:
    """The embedded knowledge base's corpus file (generated into the cache on first use): what ``SearchQA-v0``
    searches when it is given no ``data_dir``, ``corpus`` or retriever URL."""
    from skill_gym.envs.searchqa.data import find_corpus
    from skill_gym.envs.searchqa.kb import embedded_kb_dir

    return find_corpus(embedded_kb_dir())
