"""The browser backend of ``WebShop-v0``: headless Chromium, driven by selenium, shopping on the web site.

This module holds:

* :func:`read_html` and :class:`HtmlPage` — a page's HTML read as upstream's envs read it
  (``web_agent_site/envs/web_agent_text_env.py``): BeautifulSoup's visible strings (the ``"text"`` and
  ``"text_rich"`` observations), the search bar, the clickables (``.btn`` buttons and ``.product-link`` links
  by their lowered text, option radios by value) and the reward of the done page;
* :func:`missing_browser` — what is missing to run Chromium here (and ``make browser`` to install it);
* :class:`ShopBrowser` — one Chromium on one site: the in-process :class:`~.site.ShopSite` on a free
  loopback port (a werkzeug thread) or a running site at ``site_url``; :meth:`ShopBrowser.open_session`
  starts a shopper on a goal; :meth:`ShopBrowser.close` quits the driver, removes its profile, stops the site;
* :class:`BrowserSession` — one shopper in that browser, with the text backend's interface
  (:class:`~.env.ShopSession`): it types the query into ``#search_input`` and submits the form, clicks the
  buttons, links and radios, and reads every observation back from the browser's DOM.

Actions are checked with :func:`~.pages.check_action` against the clickables read from the page, so both
backends accept and refuse the same actions with the same words. The reward is the number the done page
shows (as upstream's site env reads it); the breakdown comes from the site's ``/purchase/<session>``.
A driver that died raises :class:`BrowserError` with what to do, never a selenium traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from skill_gym.envs.webshop.pages import SEARCH_BUTTON, SEARCH_CLICK_NOTE, check_action

if TYPE_CHECKING:
    from skill_gym.envs.webshop.site import ShopSite, SiteServer

__all__ = ["CHROMEDRIVER", "CHROMIUM", "CHROMIUM_FLAGS", "BrowserError", "BrowserSession", "HtmlPage", "ShopBrowser",
           "missing_browser", "read_html"]  # fmt: skip

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
"""Debian's ``chromium`` and ``chromium-driver`` (``make browser`` installs them)."""

CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run")  # fmt: skip
"""Headless, offline, no first-run work: a page load on loopback stays well under a second."""

_IGNORED_PARENTS = frozenset({"style", "script", "head", "title", "meta", "[document]"})  # upstream's tag_visible
_TYPED_QUERY_CHARS = 256  # longer queries (or ones with keys selenium would interpret) are set, not typed


class BrowserError(RuntimeError):
    """The browser backend cannot go on (the driver died, the site went away or answered an error page)."""


@dataclasses.dataclass(frozen=True)
class Clickable:
    """Where a clickable is: the ``index``-th match of the CSS ``selector``; ``text`` is what the page shows."""

    selector: str
    index: int
    kind: str
    text: str


@dataclasses.dataclass(frozen=True)
class HtmlPage:
    """One page's HTML read as upstream's text env reads it."""

    strings: tuple[tuple[str, str], ...]
    """Visible strings in document order with their parent tag (``"button"``, ``"label"``, ``"a.product-link"``...)."""
    has_search_bar: bool
    clickables: Mapping[str, Clickable]
    reward: float | None
    error: str | None
    """The message of the site's error page, if this is one."""

    def text(self, mode: str = "text", chosen_options: str = "", visited: frozenset[str] = frozenset()) -> str:
        """Upstream's observation: ``"text"`` (strings joined with ``" [SEP] "``) or ``"text_rich"``.

        For ``"text_rich"``, an option is marked clicked when ``'"value"'`` is in ``chosen_options`` (the page's
        options as JSON, what upstream finds in its URL) and a product link when its asin is in ``visited``.
        """
        if mode == "text":
            return " [SEP] ".join(text.strip() for text, _ in self.strings)
        if mode != "text_rich":
            raise ValueError(f"observation mode must be 'text' or 'text_rich', got {mode!r}")
        observation = ""
        for text, parent in self.strings:
            if parent == "button":
                shown = f"[button] {text} [button_]"
            elif parent == "label" and f'"{text}"' in chosen_options:
                shown = f"  [clicked button] {text} [clicked button_]"
                observation = f"You have clicked {text}.\n" + observation
            elif parent == "label":
                shown = f"  [button] {text} [button_]"
            elif parent == "a.product-link":
                mark = "clicked button" if text in visited else "button"
                shown = f"\n[{mark}] {text} [{mark}_]"
            else:
                shown = text
            observation += shown + "\n"
        return observation


def read_html(html: str) -> HtmlPage:
    """``html`` parsed with BeautifulSoup as upstream's ``WebAgentTextEnv`` parses each page."""
    from bs4 import BeautifulSoup
    from bs4.element import Comment

    soup = BeautifulSoup(html, "html.parser")
    strings = []
    for string in soup.find_all(string=True):
        parent = string.parent
        if parent is None or parent.name in _IGNORED_PARENTS or isinstance(string, Comment) or string == "\n":
            continue
        tag = "a.product-link" if parent.get("class") == ["product-link"] else parent.name
        strings.append((str(string), tag))
    clickables: dict[str, Clickable] = {}
    for selector, kind in ((".btn", "button"), (".product-link", "product_link")):
        for index, tag in enumerate(soup.select(selector)):
            clickables[tag.get_text().lower()] = Clickable(selector, index, kind, tag.get_text())
    for index, radio in enumerate(soup.select('input[type="radio"]')):
        value = str(radio.get("value"))
        clickables[value] = Clickable('input[type="radio"]', index, "option", value)
    reward_tag = soup.find(id="reward")
    reward = None
    if reward_tag is not None and reward_tag.find("pre") is not None:
        try:
            reward = float(reward_tag.find("pre").get_text())
        except ValueError:
            reward = None
    error_tag = soup.find(id="error")
    return HtmlPage(tuple(strings), soup.find(id="search_input") is not None, clickables, reward,
                    error_tag.get_text() if error_tag is not None else None)  # fmt: skip


def missing_browser() -> str | None:
    """``None`` when Chromium and chromedriver are installed, else a sentence naming what is missing."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if not missing:
        return None
    return f"{' and '.join(missing)} not found: install Debian's chromium and chromium-driver with `make browser`"


def _start_chromium(profile_dir: str, timeout: float) -> Any:
    os.environ.setdefault("SE_AVOID_STATS", "true")  # else selenium's manager tries to reach the internet
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(timeout)
    return driver


def _call(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` of selenium, its failures (a dead driver, a lost window) as :class:`BrowserError`."""
    from selenium.common.exceptions import WebDriverException
    from urllib3.exceptions import HTTPError

    try:
        return function(*args)
    except (WebDriverException, HTTPError, OSError) as error:  # HTTPError, OSError: chromedriver is gone
        message = error.msg if isinstance(error, WebDriverException) else str(error)
        first_line = (message or type(error).__name__).splitlines()[0][:200]
        raise BrowserError(f"Chromium failed ({first_line}); the session cannot go on: close the env and make "
                           "a new one") from None  # fmt: skip


class ShopBrowser:
    """Headless Chromium on the WebShop site.

    With ``site`` (a :class:`~.site.ShopSite`), the site is served in this process on a free 127.0.0.1 port;
    with ``site_url`` (a running ``skill-gym serve webshop``), that site is used. ``timeout`` bounds each page
    load, in seconds. Close it (or use ``with``) to quit the driver and stop the in-process site.
    """

    def __init__(self, site: ShopSite | None = None, site_url: str | None = None, timeout: float = 30.0) -> None:
        if (site is None) == (site_url is None):
            raise ValueError("give exactly one of site (served here) and site_url (a running WebShop site)")
        missing = missing_browser()
        if missing is not None:
            raise BrowserError(missing)
        if site_url is not None and urlsplit(site_url).scheme not in ("http", "https"):
            raise ValueError(f"site_url must be an http(s) address, got {site_url!r}")
        self.timeout = timeout
        self._server: SiteServer | None = None
        self._profile_dir = tempfile.mkdtemp(prefix="skill-gym-chromium-")
        self.driver: Any = None
        try:
            if site is not None:
                from skill_gym.envs.webshop.site import SiteServer

                self._server = SiteServer(site).start()
                site_url = self._server.url
            assert site_url is not None
            self.url = site_url.rstrip("/")
            self.driver = _start_chromium(self._profile_dir, timeout)
        except BaseException:
            self.close()
            raise

    def open_session(self, goal_index: int) -> BrowserSession:
        """A new shopper for goal ``goal_index`` of the site's goals, on the search page."""
        if self.driver is None:
            raise BrowserError("the browser is closed; make a new env (or ShopBrowser)")
        return BrowserSession(self, f"fixed_{secrets.token_hex(4)}_{int(goal_index)}")

    def close(self) -> None:
        """Quit the driver, remove its profile and stop the in-process site (safe to call twice)."""
        driver, self.driver = self.driver, None
        if driver is not None:
            with contextlib.suppress(Exception):  # a driver that already died has nothing left to quit
                driver.quit()
        if self._server is not None:
            self._server.close()
            self._server = None
        shutil.rmtree(self._profile_dir, ignore_errors=True)

    def __enter__(self) -> ShopBrowser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BrowserSession:
    """One shopper in a :class:`ShopBrowser`: the text backend's session interface over the real site."""

    def __init__(self, browser: ShopBrowser, session_id: str) -> None:
        self.browser, self.session_id = browser, session_id
        self.done = False
        self.reward = 0.0
        self.reward_info: Mapping[str, Any] = {}
        self.asin: str | None = None
        self.options: Mapping[str, str] = {}
        self.visited: set[str] = set()
        self._driver("get", f"{browser.url}/{session_id}")
        self.page = self._read()

    # -- driving the browser ----------------------------------------------------------------------

    def _driver(self, method: str, *args: Any) -> Any:
        """The driver's ``method(*args)``, a dead or closed driver raising :class:`BrowserError`."""
        driver = self.browser.driver
        if driver is None:
            raise BrowserError("the browser is closed; make a new env (or ShopBrowser)")
        return _call(getattr(driver, method), *args)

    def _read(self) -> HtmlPage:
        page = read_html(self._driver("execute_script", "return document.documentElement.outerHTML;"))
        if page.error is not None:
            raise BrowserError(f"the WebShop site at {self.browser.url} answered an error page: {page.error}")
        return page

    def _navigate(self, act: Callable[[], object]) -> None:
        """Do ``act`` (submit a form, click) and wait until the next page has loaded."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        marker = secrets.token_hex(8)
        self._driver("execute_script", "window.__skillGymPage = arguments[0];", marker)
        _call(act)
        loaded = "return window.__skillGymPage !== arguments[0] && document.readyState === 'complete';"
        try:
            WebDriverWait(self.browser.driver, self.browser.timeout, poll_frequency=0.01).until(
                lambda driver: driver.execute_script(loaded, marker)
            )
        except TimeoutException:
            raise BrowserError(f"the next page did not load within {self.browser.timeout} s") from None
        self.page = self._read()

    def _element(self, clickable: Clickable) -> Any:
        from selenium.webdriver.common.by import By

        found = self._driver("find_elements", By.CSS_SELECTOR, clickable.selector)
        if clickable.index >= len(found):
            raise BrowserError(f"the page changed under the browser: {clickable.text!r} is gone")
        return found[clickable.index]

    def _search(self, query: str) -> None:
        from selenium.webdriver.common.by import By

        box = self._driver("find_element", By.ID, "search_input")
        if len(query) <= _TYPED_QUERY_CHARS and query.isprintable() and all(ord(c) < 0xE000 for c in query):
            _call(box.send_keys, query)  # typed, as upstream's selenium env types it
        else:  # keys selenium would interpret (or a very long text): set the box's value directly
            self._driver("execute_script", "arguments[0].value = arguments[1];", box, query)
        self._navigate(box.submit)

    def _click(self, name: str, clickable: Clickable) -> None:
        from selenium.common.exceptions import ElementClickInterceptedException, ElementNotInteractableException

        element = self._element(clickable)

        def click() -> None:
            try:
                element.click()
            except (ElementNotInteractableException, ElementClickInterceptedException):
                self._driver("execute_script", "arguments[0].click();", element)  # upstream's forced click

        self._navigate(click)
        if clickable.kind == "product_link":
            self.visited.add(clickable.text)
        elif name == "back to search":
            self.visited = set()
        if self.page.reward is not None:
            self._finish()

    def _finish(self) -> None:
        url = f"{self.browser.url}/purchase/{self.session_id}"
        try:
            with urllib.request.urlopen(url, timeout=self.browser.timeout) as reply:
                from skill_gym.envs.webshop.site import purchase_json

                purchase = purchase_json(reply.read().decode("utf-8", errors="replace"))
        except (OSError, urllib.error.URLError) as error:
            raise BrowserError(f"the WebShop site at {self.browser.url} did not answer {url}: {error}") from None
        self.done, self.reward = True, float(self.page.reward or 0.0)
        self.asin, self.options = str(purchase["asin"]), dict(purchase["options"])
        self.reward_info = dict(purchase["reward_info"])

    # -- the session interface (ShopSession) ------------------------------------------------------

    def step(self, action: str) -> tuple[bool, str]:
        """Apply ``search[...]`` / ``click[...]`` in the browser; ``(valid, note)`` as the text backend gives it."""
        checked = check_action(action, self.page.has_search_bar, self.page.clickables, self.done)
        if isinstance(checked, str):
            return False, checked
        verb, arg = checked
        if verb == "search":
            self._search(arg)
        elif arg == SEARCH_BUTTON.lower():
            return True, SEARCH_CLICK_NOTE
        else:
            self._click(arg, self.page.clickables[arg])
        return True, ""

    def text(self, mode: str = "text") -> str:
        """The current page as upstream's text env shows it, read from the browser's DOM."""
        if mode != "text_rich":
            return self.page.text(mode)
        return self.page.text(mode, self._chosen_options(), frozenset(self.visited))

    def _chosen_options(self) -> str:
        from skill_gym.envs.webshop.site import SiteError, parse_path

        try:
            route = parse_path(urlsplit(self._driver("execute_script", "return location.href;")).path)
        except SiteError:
            return ""
        return json.dumps(dict(route.options)) if route.name == "item_page" else ""

    def admissible_actions(self) -> list[str]:
        """``search[<your query>]`` when the page has a search bar, then ``click[...]`` per clickable."""
        search = ["search[<your query>]"] if self.page.has_search_bar else []
        return search + [f"click[{name}]" for name in self.page.clickables]
