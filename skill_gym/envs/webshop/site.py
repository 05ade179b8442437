"""The WebShop web site: upstream's Flask routes over the page model, one shopper session per session id.

This module holds:

* :class:`SiteError` and :func:`parse_path` — a raw request path split into upstream's routes
  (``/<session_id>``, ``/search_results/<session_id>/<keywords>/<page>``,
  ``/item_page/<session_id>/<asin>/<keywords>/<page>/<options>``,
  ``/item_sub_page/<session_id>/<asin>/<keywords>/<page>/<sub_page>/<options>``,
  ``/done/<session_id>/<asin>/<options>``) plus ``/purchase/<session_id>`` (the last purchase as JSON, for
  the browser backend's ``info``). Every part is URL-unquoted and read as data: the page is an integer, the
  options are JSON (:func:`~skill_gym.envs.webshop.html.decode_options`; upstream ``literal_eval``-s them);
* :class:`ShopSite` — the shop's state: the catalog, the search engine, the goals, and the sessions (bounded;
  the oldest is forgotten first). :meth:`ShopSite.page` builds the :mod:`.pages` record a route shows;
* :func:`create_app` — the Flask app: HTML from :func:`~skill_gym.envs.webshop.html.render_page`, every error
  a small escaped HTML page with a 4xx status (never a traceback);
* :class:`SiteServer` — the app on a :class:`~skill_gym.serving.BackgroundServer` on 127.0.0.1 (port 0: a
  free one), in the foreground or a background thread.

Sessions follow upstream's ``app.py``: opening ``/<session_id>`` starts a session; an id containing ``fixed``
whose last ``_``-part is a number ``n`` shops for goal ``n`` (``fixed_17``, ``fixed_run3_17``), any other id for
a goal drawn by weight. Other routes answer 404 for sessions never opened. Flask loads when an app is created.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import numpy as np

from skill_gym.envs.webshop.html import SiteLinks, decode_keywords, decode_options, render_page
from skill_gym.envs.webshop.pages import SUB_PAGES, DonePage, ItemPage, Page, ResultsPage, SearchPage, SubPage
from skill_gym.envs.webshop.search import SearchEngine, products_on_page
from skill_gym.serving import BackgroundServer

if TYPE_CHECKING:
    import flask

    from skill_gym.envs.webshop.data import WebShopData

__all__ = ["Route", "ShopSite", "SiteError", "SiteServer", "create_app", "parse_path"]

_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAX_PATH_CHARS = 16_384
_MAX_PAGE = 1_000_000
_ROUTES = {"search_results": ("keywords", "page"), "item_page": ("asin", "keywords", "page", "options"),
           "item_sub_page": ("asin", "keywords", "page", "sub_page", "options"), "done": ("asin", "options"),
           "purchase": ()}  # fmt: skip
"""Upstream's routes after ``/<name>/<session_id>``: the parts each one takes, in order."""


class SiteError(ValueError):
    """A request the site refuses: ``status`` (a 4xx) and a message for the page."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Route:
    """One parsed request path: the route's ``name`` (``"index"`` for ``/<session_id>``) and its parts."""

    name: str
    session_id: str
    asin: str = ""
    keywords: tuple[str, ...] = ()
    page: int = 1
    sub_page: str = ""
    options: Mapping[str, str] = dataclasses.field(default_factory=dict)


def _page_number(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= _MAX_PAGE:
        raise SiteError(f"the page must be a number from 1 to {_MAX_PAGE}, got {text[:40]!r}")
    return int(text)


def parse_path(raw_path: str) -> Route:
    """The route of ``raw_path`` (still URL-quoted: ``%2F`` in a part stays inside it), or :class:`SiteError`.

    >>> parse_path("/search_results/s1/red%20shirt/2")
    Route(name='search_results', session_id='s1', asin='', keywords=('red', 'shirt'), page=2, sub_page='', options={})
    >>> parse_path("/done/s1/B01/%7B%22color%22%3A%20%22red%22%7D").options
    {'color': 'red'}
    >>> parse_path("/done/s1/B01/__import__('os')")
    Traceback (most recent call last):
    ...
    skill_gym.envs.webshop.site.SiteError: options must be a JSON object of strings, got "__import__('os')"
    """
    if len(raw_path) > _MAX_PATH_CHARS:
        raise SiteError(f"the address is longer than {_MAX_PATH_CHARS} characters", 414)
    parts = [unquote(part, errors="replace") for part in raw_path.split("?", 1)[0].split("/")[1:]]
    if len(parts) == 1:
        return Route("index", _session_id(parts[0]))
    name, rest = parts[0], parts[2:]
    fields = _ROUTES.get(name)
    if fields is None:
        raise SiteError(f"no page at /{name[:40]}/...: the routes are /<session_id>, " + ", ".join(
            f"/{route}/<session_id>/" + "/".join(f"<{f}>" for f in args) for route, args in _ROUTES.items()), 404)  # fmt: skip
    if len(rest) != len(fields):
        raise SiteError(f"/{name} takes /<session_id>/" + "/".join(f"<{f}>" for f in fields) + f", got {len(rest)} "
                        "parts after the session id", 404)  # fmt: skip
    session_id = _session_id(parts[1])
    values: dict[str, Any] = dict(zip(fields, rest, strict=True))
    if "keywords" in values:
        values["keywords"] = tuple(decode_keywords(values["keywords"]))
    if "page" in values:
        values["page"] = _page_number(values["page"])
    if "options" in values:
        try:
            values["options"] = decode_options(values["options"])
        except ValueError as error:
            raise SiteError(str(error)) from None
    return Route(name, session_id, **values)


def _session_id(text: str) -> str:
    if not _SESSION_ID.fullmatch(text):
        raise SiteError(f"a session id is 1 to 64 letters, digits, '_' or '-', got {text[:40]!r}", 404)
    return text


@dataclasses.dataclass
class _Shopper:
    goal_index: int
    results: dict[tuple[str, ...], list[Mapping[str, Any]]] = dataclasses.field(default_factory=dict)
    purchase: dict[str, Any] | None = None


class ShopSite:
    """The shop behind the web site: ``data``'s catalog and goals, searched with ``engine``.

    ``reward`` (``"compatible"`` or ``"strict"``) scores purchases as :class:`~.env.WebShopEnv` does;
    ``show_attrs`` offers upstream's hidden ``Attributes`` sub-page; ``max_sessions`` bounds the memory the
    sessions take (the oldest is forgotten first); ``seed`` seeds the goals drawn for non-``fixed`` sessions
    and upstream's ``<r>`` random search.
    """

    def __init__(
        self,
        data: WebShopData,
        engine: SearchEngine | None = None,
        reward: str = "compatible",
        show_attrs: bool = False,
        max_sessions: int = 10_000,
        seed: int = 0,
    ) -> None:
        self.data, self.reward_mode, self.show_attrs, self.max_sessions = data, reward, show_attrs, max_sessions
        self.engine = engine or SearchEngine.for_catalog(data.products, data.attribute_to_asins)
        self._rng = np.random.default_rng(seed)
        self._weights = np.array([float(goal.get("weight", 1.0)) for goal in data.goals])
        self._weights = self._weights / self._weights.sum() if self._weights.sum() > 0 else None
        self._shoppers: collections.OrderedDict[str, _Shopper] = collections.OrderedDict()
        self._lock = threading.Lock()

    def open_session(self, session_id: str) -> _Shopper:
        """The session ``session_id``, started on first use (upstream's ``fixed`` ids pin the goal)."""
        with self._lock:
            shopper = self._shoppers.get(session_id)
            if shopper is None:
                shopper = _Shopper(self._goal_for(session_id))
                self._shoppers[session_id] = shopper
                while len(self._shoppers) > self.max_sessions:
                    self._shoppers.popitem(last=False)
            self._shoppers.move_to_end(session_id)
            return shopper

    def _goal_for(self, session_id: str) -> int:
        if "fixed" not in session_id:
            return int(self._rng.choice(len(self.data.goals), p=self._weights))
        last = session_id.split("_")[-1]
        if not last.isdigit() or int(last) >= len(self.data.goals):
            raise SiteError(f"session {session_id!r} asks for goal {last[:20]!r}; 'fixed' ids end in a goal number "
                            f"from 0 to {len(self.data.goals) - 1}", 404)  # fmt: skip
        return int(last)

    def session(self, session_id: str) -> _Shopper:
        """An open session, or a 404 :class:`SiteError`."""
        with self._lock:
            shopper = self._shoppers.get(session_id)
        if shopper is None:
            raise SiteError(f"unknown session {session_id!r}: open /{session_id} first", 404)
        return shopper

    def instruction(self, shopper: _Shopper) -> str:
        return str(self.data.goals[shopper.goal_index]["instruction_text"])

    def product(self, asin: str) -> Mapping[str, Any]:
        product = self.data.product_item_dict.get(asin)
        if product is None:
            raise SiteError(f"unknown product {asin[:40]!r}", 404)
        return product

    def search(self, shopper: _Shopper, keywords: tuple[str, ...]) -> list[Mapping[str, Any]]:
        """The results of ``keywords``, kept per session so paging shows one ranking (as the text env does)."""
        with self._lock:  # one search at a time: the stemmer is not thread-safe
            if keywords not in shopper.results:
                if len(shopper.results) >= 64:
                    shopper.results.pop(next(iter(shopper.results)))
                shopper.results[keywords] = self.engine.search(list(keywords), rng=self._rng)
            return shopper.results[keywords]

    def buy(self, shopper: _Shopper, asin: str, options: Mapping[str, str]) -> float:
        """Score the purchase of ``asin`` with ``options`` against the session's goal and record it."""
        from skill_gym.envs.webshop.reward import get_reward

        product = self.product(asin)
        goal = self.data.goals[shopper.goal_index]
        price = self.data.product_prices[asin]
        reward, info = get_reward(product, goal, price, dict(options), verbose=True, mode=self.reward_mode)
        shopper.purchase = {"asin": asin, "options": dict(options), "reward": float(reward),
                            "reward_info": _plain(info)}  # fmt: skip
        return float(reward)

    def page(self, route: Route) -> Page:
        """The page ``route`` shows (``done`` scores the purchase first)."""
        if route.name == "index":
            return SearchPage(self.instruction(self.open_session(route.session_id)))
        shopper = self.session(route.session_id)
        instruction = self.instruction(shopper)
        if route.name == "search_results":
            results = self.search(shopper, route.keywords)
            return ResultsPage(instruction, route.keywords, route.page, len(results),
                               tuple(products_on_page(results, route.page)))  # fmt: skip
        product = self.product(route.asin)
        if route.name == "item_page":
            return ItemPage(instruction, route.keywords, route.page, product, route.options, self.show_attrs)
        if route.name == "item_sub_page":
            if route.sub_page not in SUB_PAGES:
                raise SiteError(f"no sub-page {route.sub_page[:40]!r}; there are {', '.join(SUB_PAGES)}", 404)
            return SubPage(instruction, route.keywords, route.page, product, route.options, route.sub_page)
        if route.name == "done":
            return DonePage(route.asin, dict(route.options), self.buy(shopper, route.asin, route.options))
        raise SiteError(f"/{route.name} is not a page", 404)


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars made Python numbers, so it serializes as JSON."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def _error_page(message: str, status: int) -> str:
    from html import escape

    return (f'<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>WebShop: error {status}</title>\n'
            f'</head>\n<body>\n<h1>Error {status}</h1>\n<p id="error">{escape(message)}</p>\n</body>\n</html>\n')  # fmt: skip


def create_app(site: ShopSite) -> flask.Flask:
    """The Flask app serving ``site`` on upstream's routes (GET and POST, as upstream accepts both)."""
    import flask
    from werkzeug.exceptions import HTTPException

    app = flask.Flask("skill_gym.webshop.site")
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    app.json.sort_keys = False  # type: ignore[attr-defined]  # /purchase keeps the options in the order chosen

    def html(body: str, status: int = 200) -> flask.Response:
        return flask.Response(body, status=status, mimetype="text/html")

    @app.route("/", methods=["GET"])
    def home() -> flask.Response:
        return flask.redirect("/abc")  # upstream's home sends everyone to session "abc"

    @app.route("/<path:_path>", methods=["GET", "POST"])
    def dispatch(_path: str) -> flask.Response:
        # The server's raw request line keeps %2F inside a part (a keyword "a/b"); PATH_INFO has it decoded.
        raw = flask.request.environ.get("RAW_URI") or flask.request.environ.get("REQUEST_URI") or flask.request.path
        route = parse_path(raw)
        if route.name == "index" and flask.request.method == "POST":
            query = flask.request.form.get("search_query")
            if query is not None:
                site.open_session(route.session_id)
                keywords = query.lower().split(" ")
                return flask.redirect(SiteLinks(route.session_id).search_results(keywords, 1), code=303)
        if route.name == "purchase":
            purchase = site.session(route.session_id).purchase
            if purchase is None:
                raise SiteError(f"session {route.session_id!r} has bought nothing yet", 404)
            return flask.jsonify(purchase)
        return html(render_page(site.page(route), SiteLinks(route.session_id)))

    @app.errorhandler(SiteError)
    def site_error(error: SiteError) -> flask.Response:
        return html(_error_page(str(error), error.status), error.status)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> flask.Response:
        return html(_error_page(error.description or error.name, error.code or 500), error.code or 500)

    @app.errorhandler(Exception)
    def server_error(error: Exception) -> flask.Response:
        app.logger.error("WebShop site failure: %s: %s", type(error).__name__, error)
        return html(_error_page(f"the shop failed: {type(error).__name__}", 500), 500)

    return app


class SiteServer(BackgroundServer):
    """``site`` served on ``host:port`` (port 0 picks a free one) by a threaded werkzeug server.

    ``start()`` serves from a daemon thread (``url`` is then the site's root); ``serve_forever()`` serves in the
    foreground; ``close()`` (or leaving the ``with`` block) stops it and frees the port; safe to call twice.
    """

    def __init__(self, site: ShopSite, host: str = "127.0.0.1", port: int = 0, log_requests: bool = False) -> None:
        super().__init__(create_app(site), host, port, log_requests, name="webshop-site")
        self.site = site


def purchase_json(text: str) -> dict[str, Any]:
    """A ``/purchase`` reply read back (the browser backend's ``reward_info``); a clear ``ValueError`` otherwise."""
    try:
        purchase = json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError(f"the site's /purchase reply is not JSON: {text[:80]!r}") from None
    if not isinstance(purchase, dict) or not {"asin", "options", "reward", "reward_info"} <= purchase.keys():
        raise ValueError(f"the site's /purchase reply lacks asin/options/reward/reward_info: {text[:80]!r}")
    return purchase
