"""The WebShop web site over real HTTP on loopback: upstream's routes, the same pages as the text env, the reward
on the done page, bad URLs answered with escaped 4xx pages (never a traceback), bounded sessions, concurrent
clients, and ``skill-gym serve webshop``."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest
from bs4 import BeautifulSoup

from benchmarks.perf.common import percentile
from skill_gym.envs.webshop.browser import read_html
from skill_gym.envs.webshop.data import WebShopData, load_data
from skill_gym.envs.webshop.env import WebShopEnv
from skill_gym.envs.webshop.oracle import OracleShopper
from skill_gym.envs.webshop.pages import check_action
from skill_gym.envs.webshop.site import ShopSite, SiteError, SiteServer, parse_path

INJECTION = '<script>alert("x")</script><img src=x onerror=alert(1)>'


# -- a browser-less client: plain HTTP that follows the site's forms, links and radios --------------------


class Reply:
    def __init__(self, status: int, body: str, headers: dict[str, str]) -> None:
        self.status, self.body, self.headers = status, body, headers


def request(base: str, path: str, method: str = "GET", form: dict | None = None, body: bytes | None = None) -> Reply:
    """One HTTP request with ``path`` sent exactly as given (no re-quoting); redirects are not followed."""
    host, port = urllib.parse.urlsplit(base).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {}
    if form is not None:
        body = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        connection.request(method, path, body=body, headers=headers)
        reply = connection.getresponse()
        return Reply(reply.status, reply.read().decode("utf-8", errors="replace"), dict(reply.getheaders()))
    finally:
        connection.close()


class HttpShopper:
    """Plays actions on the site the way a browser would: POST the search form, submit buttons' forms, follow
    product links and radios' ``data-url``; each page is read with :func:`read_html`."""

    def __init__(self, base: str, session_id: str) -> None:
        self.base = base
        self._load(request(base, f"/{session_id}"))

    def _load(self, reply: Reply) -> None:
        if reply.status == 303:
            reply = request(self.base, reply.headers["Location"])
        assert reply.status == 200, reply.body
        self.html, self.page = reply.body, read_html(reply.body)

    def step(self, action: str) -> None:
        checked = check_action(action, self.page.has_search_bar, self.page.clickables)
        assert not isinstance(checked, str), checked
        verb, arg = checked
        soup = BeautifulSoup(self.html, "html.parser")
        if verb == "search":
            form = soup.find(id="search_input").find_parent("form")
            self._load(request(self.base, form["action"], "POST", {"search_query": arg}))
            return
        clickable = self.page.clickables[arg]
        tag = soup.select(clickable.selector)[clickable.index]
        if clickable.kind == "button":
            self._load(request(self.base, tag.find_parent("form")["action"], "POST", {}))
        else:
            self._load(request(self.base, tag["href"] if clickable.kind == "product_link" else tag["data-url"]))


@pytest.fixture(scope="module")
def data() -> WebShopData:
    return load_data()


@pytest.fixture(scope="module")
def server(data):
    with SiteServer(ShopSite(data)) as running:
        yield running


# -- routes parsed as data ---------------------------------------------------------------------------------


def test_parse_path_reads_upstreams_routes() -> None:
    route = parse_path("/item_sub_page/s-1/B0ABC/red%20cotton%2Fshirt/3/Features/%7B%22size%22%3A%20%22s%22%7D")
    assert (route.name, route.session_id, route.asin, route.keywords, route.page, route.sub_page) == (
        "item_sub_page", "s-1", "B0ABC", ("red", "cotton/shirt"), 3, "Features")  # fmt: skip
    assert route.options == {"size": "s"}
    assert parse_path("/abc").name == "index" and parse_path("/purchase/abc").name == "purchase"
    assert parse_path("/search_results/abc/%3Cscript%3E/1?x=1").keywords == ("<script>",)


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/nowhere/abc/x", 404, "no page at /nowhere"),
        ("/search_results/abc/x", 404, "takes /<session_id>/<keywords>/<page>"),
        ("/search_results/abc/x/0", 400, "page must be a number"),
        ("/search_results/abc/x/-1", 400, "page must be a number"),
        ("/search_results/abc/x/1e3", 400, "page must be a number"),
        ("/search_results/abc/x/%D9%A3", 400, "page must be a number"),  # an Arabic-Indic digit is not a page
        ("/search_results/abc/x/99999999999999999999", 400, "page must be a number"),
        ("/done/abc/B0/__import__('os').system('true')", 400, "JSON object of strings"),
        ("/done/abc/B0/%7B'a'%3A%201%7D", 400, "JSON object of strings"),
        ("/done/abc/B0/%7B%22a%22%3A%201%7D", 400, "JSON object of strings"),
        ("/done/abc/B0/%5B%5D", 400, "JSON object of strings"),
        ("/done/abc/B0/" + "%5B" * 100_000, 414, "longer than"),
        ("/done/abc/B0/" + "%5B" * 3000, 400, "JSON object of strings"),
        ("/item_page/" + "s" * 65 + "/B0/x/1/%7B%7D", 404, "session id"),
        ("/item_page/a%20b/B0/x/1/%7B%7D", 404, "session id"),
    ],
)
def test_bad_paths_are_refused_with_a_reason(path: str, status: int, words: str) -> None:
    with pytest.raises(SiteError, match=words) as refused:
        parse_path(path)
    assert refused.value.status == status


# -- the site over HTTP -----------------------------------------------------------------------------------


def _oracle_actions(env: WebShopEnv, task_id: str) -> tuple[list[str], list[str], float]:
    obs, info = env.reset(options={"task_id": task_id})
    shopper, actions, texts = OracleShopper(), [], [obs["observation"]]
    shopper.reset()
    for _ in range(env.max_steps):
        action = shopper.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        actions.append(action)
        texts.append(obs["observation"])
        if terminated or truncated:
            return actions, texts, float(reward)
    raise AssertionError("the oracle did not finish")


def test_site_pages_equal_the_text_env_over_a_whole_episode(data, server) -> None:
    env = WebShopEnv(split="test")
    for index in (0, 7, 42):
        actions, texts, reward = _oracle_actions(env, data.task_id(index))
        shopper = HttpShopper(server.url, f"fixed_http_{index}")
        seen = [shopper.page.text()]
        for action in actions:
            shopper.step(action)
            seen.append(shopper.page.text())
        assert seen == texts
        assert shopper.page.reward == reward == 1.0  # the done page shows the reward, as upstream's does
        purchase = json.loads(request(server.url, f"/purchase/fixed_http_{index}").body)
        assert purchase["reward"] == reward and purchase["asin"] == data.goals[index]["asin"]
        assert {"r_type", "r_att", "w_att"} <= purchase["reward_info"].keys()


def test_a_wrong_purchase_scores_what_the_reward_says(data, server) -> None:
    goal = data.goals[3]
    other = next(p for p in data.products if p["category"] != goal["category"])
    assert request(server.url, "/fixed_wrong_3").status == 200
    reply = request(server.url, f"/done/fixed_wrong_3/{other['asin']}/%7B%7D")
    env = WebShopEnv(split="test")
    env.reset(options={"task_id": data.task_id(3)})
    expected, _ = env._score(data.product_item_dict[other["asin"]], {})
    assert reply.status == 200 and read_html(reply.body).reward == expected < 1.0


def test_unknown_sessions_products_and_pages_get_4xx_pages(data, server) -> None:
    asin = data.products[0]["asin"]
    assert request(server.url, "/fixed_known_1").status == 200
    cases = {
        "/search_results/never-opened/shirt/1": (404, "unknown session"),
        f"/item_page/never-opened/{asin}/shirt/1/%7B%7D": (404, "unknown session"),
        f"/done/never-opened/{asin}/%7B%7D": (404, "unknown session"),
        "/purchase/fixed_known_1": (404, "bought nothing yet"),
        "/item_page/fixed_known_1/NOSUCHASIN/shirt/1/%7B%7D": (404, "unknown product"),
        f"/item_sub_page/fixed_known_1/{asin}/shirt/1/Secrets/%7B%7D": (404, "no sub-page"),
        f"/item_page/fixed_known_1/{asin}/shirt/1/%7B%22a%22%3A%5B1%5D%7D": (400, "JSON object of strings"),
        f"/done/fixed_known_1/{asin}/(lambda%3A%201)()": (400, "JSON object of strings"),
        "/fixed_99999999": (404, "goal number"),
        "/fixed_x": (404, "goal number"),
        "/%3Cscript%3E": (404, "session id"),
    }
    for path, (status, words) in cases.items():
        reply = request(server.url, path)
        assert reply.status == status, (path, reply.body)
        assert words in reply.body and "Traceback" not in reply.body
        assert reply.headers["Content-Type"].startswith("text/html")
    assert request(server.url, "/fixed_known_1", method="PUT").status == 405
    assert request(server.url, "/fixed_known_1", "POST", body=b"x" * 200_000).status == 413
    home = request(server.url, "/")
    assert home.status == 302 and home.headers["Location"].endswith("/abc")  # upstream's home


def test_script_injection_is_escaped(data, server) -> None:
    assert request(server.url, "/fixed_inject_0").status == 200
    searched = request(server.url, "/fixed_inject_0", "POST", {"search_query": INJECTION})
    assert searched.status == 303
    page = request(server.url, searched.headers["Location"])
    assert page.status == 200 and "<script>alert" not in page.body and "<img src=x" not in page.body
    quoted = urllib.parse.quote(INJECTION.lower(), safe="")
    assert searched.headers["Location"] == f"/search_results/fixed_inject_0/{quoted}/1"
    asin = data.products[0]["asin"]
    options = urllib.parse.quote(json.dumps({"color": INJECTION}), safe="")
    item = request(server.url, f"/item_page/fixed_inject_0/{asin}/{quoted}/1/{options}")
    assert item.status == 200 and INJECTION not in item.body and "<script>alert" not in item.body
    assert "%3Cscript%3Ealert" in item.body  # the chosen option lives on in the links, URL-quoted
    done = request(server.url, f"/done/fixed_inject_0/{asin}/{options}")
    assert done.status == 200 and "<script>alert" not in done.body


def test_hostile_instructions_are_escaped_on_every_page(data) -> None:
    goal = {**data.goals[0], "instruction_text": INJECTION + " & <b>bold</b>"}
    hostile = WebShopData(data.products, data.product_item_dict, data.product_prices, data.attribute_to_asins,
                          [goal], True, "hostile")  # fmt: skip
    with SiteServer(ShopSite(hostile)) as site:
        reply = request(site.url, "/fixed_0")
        assert reply.status == 200 and "<script>alert" not in reply.body and "<b>bold" not in reply.body
        assert (
            read_html(reply.body).text() == f"WebShop [SEP] Instruction: [SEP] {goal['instruction_text']} [SEP] Search"
        )
        results = request(site.url, f"/search_results/fixed_0/{urllib.parse.quote(INJECTION, safe='')}/1")
        assert results.status == 200 and "<script>alert" not in results.body


def test_other_sessions_draw_goals_and_old_sessions_are_forgotten(data) -> None:
    site = ShopSite(data, max_sessions=3, seed=1)
    with SiteServer(site) as running:
        instructions = {goal["instruction_text"] for goal in data.goals}
        for n in range(5):
            page = read_html(request(running.url, f"/shopper{n}").body)
            assert page.strings[2][0] in instructions  # a goal drawn by weight, as upstream's random sessions
        assert request(running.url, "/search_results/shopper0/shirt/1").status == 404  # the oldest is forgotten
        assert request(running.url, "/search_results/shopper4/shirt/1").status == 200
    with pytest.raises(OSError):  # the server is stopped: its port refuses connections
        request(running.url, "/shopper4")


def test_paging_and_sub_pages_follow_the_text_env(data, server) -> None:
    env = WebShopEnv(split="test")
    obs, _ = env.reset(options={"task_id": data.task_id(5)})
    shopper = HttpShopper(server.url, "fixed_walk_5")
    assert shopper.page.text() == obs["observation"]
    script = ["search[shirt]", "click[next >]", "click[next >]", "click[< prev]"]
    for action in script:
        obs, *_ = env.step(action)
        shopper.step(action)
        assert shopper.page.text() == obs["observation"], action
    first = next(name for name, c in shopper.page.clickables.items() if c.kind == "product_link")
    for action in [f"click[{first}]", "click[description]", "click[< prev]", "click[features]", "click[< prev]",
                   "click[reviews]", "click[back to search]", "search[a/b shirt]"]:  # fmt: skip
        obs, *_ = env.step(action)
        shopper.step(action)
        assert shopper.page.text() == obs["observation"], action
        assert env.unwrapped._session.admissible_actions() == [  # the same clickables, in the same order
            *(["search[<your query>]"] if shopper.page.has_search_bar else []),
            *(f"click[{n}]" for n in shopper.page.clickables),
        ]


def _load(url: str, paths: list[str], seconds: float, clients: int) -> tuple[list[float], list[str]]:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(number: int) -> None:
        request(url, f"/fixed_load{number}_{number}")
        n = 0
        while time.monotonic() < stop:
            path = paths[n % len(paths)].format(session=f"fixed_load{number}_{number}")
            start = time.perf_counter()
            try:
                reply = request(url, path)
                problem = None if reply.status == 200 else f"{path}: {reply.status}"
            except OSError as error:
                problem = f"{path}: {error}"
            with lock:
                latencies.append(time.perf_counter() - start)
                if problem:
                    errors.append(problem)
            n += 1

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return latencies, errors


def _load_paths(data: WebShopData) -> list[str]:
    asin = data.products[1]["asin"]
    return ["/{session}", "/search_results/{session}/cotton%20shirt/1", "/search_results/{session}/cotton%20shirt/2",
            f"/item_page/{{session}}/{asin}/cotton%20shirt/1/%7B%7D",
            f"/item_sub_page/{{session}}/{asin}/cotton%20shirt/1/Features/%7B%7D"]  # fmt: skip


def test_concurrent_clients_get_no_errors(data, server) -> None:
    latencies, errors = _load(server.url, _load_paths(data), seconds=2.0, clients=8)
    assert errors == [] and len(latencies) > 20


@pytest.mark.slow
def test_eight_clients_for_twenty_seconds(data, server) -> None:
    latencies, errors = _load(server.url, _load_paths(data), seconds=20.0, clients=8)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(f"\n8 clients x 20 s: {len(latencies)} requests, {len(latencies) / 20:.0f}/s, p50 {p50 * 1e3:.1f} ms, "
          f"p99 {p99 * 1e3:.1f} ms, errors {len(errors)}")  # fmt: skip
    assert errors == [] and len(latencies) > 200


def test_skill_gym_serve_webshop(tmp_path) -> None:
    command = [sys.executable, "-m", "skill_gym.cli", "serve", "webshop", "--port", "0"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = ""
        for _ in range(50):  # skip any warnings printed while the data loads
            line = process.stderr.readline()
            if "WebShop:" in line or not line:
                break
        assert "WebShop:" in line and "http://127.0.0.1:" in line, line
        url = line.split(" at ")[1].strip().rsplit("/", 1)[0]
        reply = request(url, "/fixed_0")
        assert reply.status == 200 and read_html(reply.body).has_search_bar
    finally:
        process.terminate()
        process.wait(timeout=20)
        process.stderr.close()
    bad = subprocess.run([*command[:-2], "--num-products", "0"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--num-products must be a positive number" in bad.stderr
