"""The HTTP plumbing skill-gym's servers and clients share.

This module holds:

* :class:`BackgroundServer` — a WSGI app on a threaded werkzeug server (port 0: a free one), served from a
  daemon thread (``start``) or the foreground (``serve_forever``) and stopped by ``close`` or a ``with`` block;
* :func:`json_app`, :class:`BadRequest`, :func:`read_json` — a Flask app whose every answer, errors included,
  is JSON: a 4xx with a message for a bad request, a 5xx with one when the work behind it fails;
* :func:`request_json` — one JSON request from a client, retried with a growing pause, and one clear error
  naming the URL when it cannot be answered;
* :func:`json_type` and :func:`short_json` — a JSON value's type and a short excerpt, for error messages.

Flask and werkzeug load when a server or an app is created.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    import flask

__all__ = ["BackgroundServer", "BadRequest", "json_app", "json_type", "read_json", "request_json", "short_json"]

MAX_REPLY_BYTES = 256 << 20
"""Largest reply a client reads."""


class BackgroundServer:
    """``app`` served on ``host:port`` (port 0 picks a free one) by a threaded werkzeug server.

    ``start()`` serves from a daemon thread; ``serve_forever()`` serves in the foreground; ``close()`` (or
    leaving the ``with`` block) stops it and frees the port, and is safe to call twice. One thread per request,
    so concurrent clients are served at once. ``log_requests`` prints an access-log line per request to stderr.
    """

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, log_requests: bool = False, name: str = "server"
    ) -> None:
        from werkzeug.serving import WSGIRequestHandler, make_server

        class Handler(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                if log_requests:
                    super().log_request(*args, **kwargs)

        self._server = make_server(host, port, app, threaded=True, request_handler=Handler)
        self._server.daemon_threads = True
        self.host, self.name = host, name
        self.port = int(self._server.server_port)
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def root(self) -> str:
        """The server's root address, e.g. ``http://127.0.0.1:40123``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The address clients are given (the root unless a server says otherwise)."""
        return self.root

    def start(self) -> Self:
        """Serve from a daemon thread; returns ``self``."""
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._server.serve_forever, name=self.name, daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted."""
        self._server.serve_forever()

    def run(self, banner: str) -> int:
        """A ``skill-gym serve`` target's foreground run: print ``banner`` to stderr, serve until Ctrl-C, close; 0."""
        print(banner, file=sys.stderr, flush=True)
        try:
            self.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self.close()
        return 0

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        if not self._closed:
            self._server.server_close()
            self._closed = True

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the server side -----------------------------------------------------------------------------


class BadRequest(ValueError):
    """A request a server refuses: ``status`` (a 4xx) and a message for the client."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def json_error(message: str, status: int) -> flask.Response:
    """``{"error": message}`` with ``status``."""
    import flask

    response = flask.jsonify({"error": message})
    response.status_code = status
    return response


def json_app(import_name: str, max_body_bytes: int, routes: str, failure: str) -> flask.Flask:
    """A Flask app whose errors are JSON ``{"error": ...}``: :class:`BadRequest` with its status, an unknown
    route a 404 naming ``routes``, a body over ``max_body_bytes`` a 413, and any other exception a 500
    ``"<failure> failed: <type>: <message>"`` (logged, never a traceback to the client)."""
    import flask
    from werkzeug.exceptions import HTTPException

    app = flask.Flask(import_name)
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.compact = True  # type: ignore[attr-defined]

    @app.errorhandler(BadRequest)
    def bad_request(bad: BadRequest) -> flask.Response:
        return json_error(str(bad), bad.status)

    @app.errorhandler(HTTPException)
    def http_error(exception: HTTPException) -> flask.Response:
        hints = {404: f"unknown route; use {routes}", 405: "wrong method for this route"}
        if exception.code == 413:
            message = f"the body is larger than {max_body_bytes} bytes"
        else:
            message = hints.get(exception.code or 0, exception.description or exception.name)
        return json_error(message, exception.code or 500)

    @app.errorhandler(Exception)
    def server_error(error: Exception) -> flask.Response:
        app.logger.error("%s failed: %s: %s", failure, type(error).__name__, error)
        return json_error(f"{failure} failed: {type(error).__name__}: {error}", 500)

    return app


def read_json(hint: str) -> object:
    """The request's body as JSON, or a :class:`BadRequest` saying what to send (``hint``)."""
    import flask

    try:
        return json.loads(flask.request.get_data(cache=False))
    except (ValueError, RecursionError):
        raise BadRequest(f"the body is not valid JSON ({hint})") from None


def json_type(value: object) -> str:
    """The JSON name of ``value``'s type, for messages.

    >>> json_type([1]), json_type(None), json_type(2.5)
    ('a list', 'null', 'a number')
    """
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


def short_json(value: object) -> str:
    """``value`` as JSON, cut to 40 characters, for messages."""
    text = json.dumps(value) if not isinstance(value, float) or value == value else "NaN"
    return text if len(text) <= 40 else text[:37] + "..."


# -- the client side -----------------------------------------------------------------------------


def request_json(
    url: str,
    payload: object = None,
    *,
    name: str,
    error: Callable[[str, int | None], Exception],
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    retries: int = 2,
    backoff: float = 0.5,
    resend: bool = True,
    max_reply_bytes: int = MAX_REPLY_BYTES,
) -> object:
    """The decoded JSON reply to ``payload`` POSTed as JSON to ``url`` (a GET when ``payload`` is ``None``).

    Connection failures, timeouts and 5xx answers are retried ``retries`` times, ``backoff``, ``2·backoff``...
    seconds apart; with ``resend=False`` (a request that must not run twice) only a refused connection is,
    since nothing reached the server. A 4xx is not retried. When no JSON answer comes, it raises
    ``error(message, status)``: the message starts with ``"<name> at <url>"``, ``status`` is the last HTTP
    status received (``None`` when no response came back).
    """
    body = None if payload is None else json.dumps(payload).encode("utf-8")
    sent_headers = {"Accept": "application/json", **(headers or {})}
    if body is not None:
        sent_headers["Content-Type"] = "application/json"
    problem, status = "", None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        request = urllib.request.Request(url, data=body, headers=sent_headers, method="GET" if body is None else "POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read(max_reply_bytes + 1)
        except urllib.error.HTTPError as failure:
            status, problem = failure.code, f"HTTP {failure.code}: {_error_message(failure)}"
            if failure.code < 500 or not resend:
                break
            continue
        except (OSError, http.client.HTTPException) as failure:  # URLError, timeouts, resets, cut replies
            status, problem = None, _transport_problem(failure, timeout)
            if not resend and not isinstance(getattr(failure, "reason", None), ConnectionRefusedError):
                break
            continue
        if len(raw) > max_reply_bytes:
            raise error(f"{name} at {url} sent a reply over {max_reply_bytes} bytes", 200)
        try:
            return json.loads(raw)
        except ValueError:
            raise error(f"{name} at {url} answered with something that is not JSON", 200) from None
    tries = f"{attempt + 1} attempt{'s' if attempt else ''}"
    raise error(f"{name} at {url} {problem} ({tries})", status)


def _transport_problem(error: Exception, timeout: float) -> str:
    reason = getattr(error, "reason", error)
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return f"timed out after {timeout:g} s"
    return f"unreachable ({reason or type(reason).__name__})"


def _error_message(error: urllib.error.HTTPError) -> str:
    """The ``error`` (or FastAPI's ``detail``) field of an error reply, else its first 200 characters."""
    try:
        text = error.read(64 << 10).decode("utf-8", "replace")
    except OSError:
        return error.reason if isinstance(error.reason, str) else ""
    try:
        data = json.loads(text)
        if isinstance(data, dict) and ("error" in data or "detail" in data):
            return str(data.get("error", data.get("detail")))[:500]
    except ValueError:
        pass
    return text[:200]
