"""The browser backend in real headless Chromium: whole episodes (search -> item -> options -> buy) give the same
observations, infos and reward as the text backend; walks through every page kind and bad actions agree; a
running site by URL; a dead driver gives a clear error; close() quits Chromium and stops the site.

Without Chromium these tests fail when ``CI=true`` (naming ``make browser``) and skip otherwise, with that message.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request

import pytest

from skill_gym.envs.webshop.browser import BrowserError, ShopBrowser, missing_browser
from skill_gym.envs.webshop.data import load_data
from skill_gym.envs.webshop.env import WebShopEnv
from skill_gym.envs.webshop.oracle import OracleShopper
from skill_gym.envs.webshop.site import ShopSite, SiteServer

MISSING = missing_browser()
BUTTONS = {"search", "back to search", "next >", "< prev", "description", "features", "reviews", "buy now"}


def _links(obs: dict) -> list[str]:
    """The clickables of a page that are not buttons: product links on a results page, options on an item page."""
    clicks = [a[len("click[") : -1] for a in obs["admissible_actions"].split("\n") if a.startswith("click[")]
    return [name for name in clicks if name not in BUTTONS]


@pytest.fixture(scope="module", autouse=True)
def _chromium_present() -> None:
    if MISSING is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the WebShop browser tests need Chromium: {MISSING}", pytrace=False)
    pytest.skip(f"the WebShop browser tests need Chromium: {MISSING}")


@pytest.fixture(scope="module")
def text_env():
    env = WebShopEnv(split="test")
    yield env
    env.close()


@pytest.fixture(scope="module")
def browser_env():
    env = WebShopEnv(split="test", backend="browser")
    yield env
    env.close()


def _play(env: WebShopEnv, task_id: str, actions: list[str] | None = None) -> list[tuple]:
    """Every (action, observation, reward, terminated, truncated, info) of an episode: the oracle's, or ``actions``."""
    obs, info = env.reset(options={"task_id": task_id})
    shopper = OracleShopper()
    shopper.reset()
    record = [(None, obs, 0.0, False, False, info)]
    for step in range(len(actions) if actions is not None else env.max_steps):
        action = actions[step] if actions is not None else shopper.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        record.append((action, obs, reward, terminated, truncated, info))
        if terminated or truncated:
            break
    return record


def _assert_same(text: list[tuple], browser: list[tuple]) -> None:
    assert len(text) == len(browser)
    for expected, seen in zip(text, browser, strict=True):
        assert seen == expected, f"after {expected[0]!r}"


@pytest.mark.parametrize("index", [0, 11, 123])
def test_oracle_episode_is_identical_in_chromium(text_env, browser_env, index: int) -> None:
    task_id = text_env.data.task_id(index)
    text, browser = _play(text_env, task_id), _play(browser_env, task_id)
    _assert_same(text, browser)
    actions = [step[0] for step in browser[1:]]
    assert actions[0].startswith("search[") and actions[-1] == "click[buy now]"
    final = browser[-1]
    assert final[2] == 1.0 and final[3] and final[5]["won"] and final[5]["purchased_asin"] == final[5]["goal_asin"]


def test_wrong_options_and_every_page_kind_agree(text_env, browser_env) -> None:
    task_id = text_env.data.task_id(4)
    goal = text_env.data.goals[4]
    text_env.reset(options={"task_id": task_id})
    text_env.step(f"search[{goal['instruction_text']}]")
    obs, *_ = text_env.step("click[next >]")
    product = _links(obs)[0]
    obs, *_ = text_env.step(f"click[{product}]")
    values = _links(obs)  # the option radios
    assert len(values) >= 2
    actions = [f"search[{goal['instruction_text']}]", "click[next >]", "click[next >]", "click[< prev]",
               f"click[{product}]", *(f"click[{v}]" for v in values[:2]), "click[description]", "click[< prev]",
               "click[features]", "click[reviews]", "click[< prev]", "click[back to search]",
               "search[Cotton/linen \"SHIRT\" <b>caf\u00e9</b>]", "click[< prev]", "click[search]", "search[",
               "jump[now]", f"click[{product}]", "click[< prev]", "click[back to search]", "search[x]", "click[buy now]"]  # fmt: skip
    text_env.max_steps = browser_env.max_steps = len(actions)
    try:
        for mode in ("text", "text_rich"):
            text_env.observation_mode = browser_env.observation_mode = mode
            _assert_same(_play(text_env, task_id, actions), _play(browser_env, task_id, actions))
    finally:
        text_env.max_steps = browser_env.max_steps = 15
        text_env.observation_mode = browser_env.observation_mode = "text"


def test_a_purchase_below_one_agrees(text_env, browser_env) -> None:
    task_id = text_env.data.task_id(2)
    query = text_env.data.goals[2]["instruction_text"]
    actions = [f"search[{query}]", "click[next >]", "click[< prev]"]
    text_env.reset(options={"task_id": task_id})
    for action in actions:
        obs, *_ = text_env.step(action)
    actions += [f"click[{_links(obs)[-1]}]", "click[buy now]"]
    text, browser = _play(text_env, task_id, actions), _play(browser_env, task_id, actions)
    _assert_same(text, browser)
    assert browser[-1][3] and browser[-1][2] < 1.0 and not browser[-1][5]["won"]


def test_a_running_site_by_url() -> None:
    data = load_data()
    with SiteServer(ShopSite(data)) as site:
        env = WebShopEnv(split="test", backend="browser", site_url=site.url)
        text_env = WebShopEnv(split="test")
        try:
            _assert_same(_play(text_env, data.task_id(9)), _play(env, data.task_id(9)))
        finally:
            env.close()
            env.close()  # twice is fine


def test_close_quits_chromium_and_stops_the_site() -> None:
    env = WebShopEnv(split="test", backend="browser")
    env.reset(seed=3)
    browser = env.unwrapped._browser
    url, service = browser.url, browser.driver.service
    assert urllib.request.urlopen(url + "/fixed_0", timeout=10).status == 200
    env.close()
    assert not service.is_connectable()  # chromedriver is gone
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/fixed_0", timeout=10)
    env.close()


def test_a_dead_driver_gives_a_clear_error() -> None:
    env = WebShopEnv(split="test", backend="browser")
    try:
        env.reset(seed=0)
        env.unwrapped._browser.driver.quit()  # Chromium and chromedriver go away under the env
        with pytest.raises(BrowserError, match="close the env and make a new one"):
            env.step("search[red shirt]")
    finally:
        env.close()


def test_missing_chromium_is_named(monkeypatch) -> None:
    from skill_gym.envs.webshop import browser

    monkeypatch.setattr(browser, "CHROMEDRIVER", "/nonexistent/chromedriver")
    assert "make browser" in browser.missing_browser() and "/nonexistent/chromedriver" in browser.missing_browser()
    with pytest.raises(BrowserError, match="make browser"):
        ShopBrowser(site_url="http://127.0.0.1:9")
    with pytest.raises(ValueError, match="exactly one"):
        ShopBrowser()
