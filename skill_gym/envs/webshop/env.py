"""``WebShop-v0``: princeton-nlp/WebShop's shopping tasks as a Gymnasium text env.

This module holds :class:`WebShopEnv` and :class:`ShopSession`, the interface a backend offers (the text
backend is :class:`~skill_gym.envs.webshop.pages.Session`).
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, SupportsFloat

from skill_gym.envs.instructions import ANSWER_FORMATS, ResponseFormat, VerlThinkAction
from skill_gym.envs.text_env import TextEnv, coerce_action, sanitize_text
from skill_gym.envs.webshop.pages import Session
from skill_gym.envs.webshop.search import SearchEngine

__all__ = ["BACKENDS", "OBSERVATION_MODES", "REWARD_MODES", "ShopSession", "WebShopEnv"]

BACKENDS = ("text", "browser")
"""Backends available: ``"text"`` (the page model in process) and ``"browser"`` (headless Chromium on the web
site, :mod:`.browser`)."""

OBSERVATION_MODES = ("text", "text_rich")
REWARD_MODES = ("compatible", "strict")

_GOAL_KEYS = {"goal_asin": "asin", "goal_attributes": "attributes", "goal_price_upper": "price_upper",
              "goal_name": "name", "goal_query": "query", "goal_product_category": "product_category"}  # fmt: skip


class ShopSession(Protocol):
    """What the env needs from a backend: one shopper's session on the site.

    A new backend (e.g. a real browser on the Flask site) implements this and is chosen in
    :meth:`WebShopEnv._open_session`.
    """

    done: bool
    reward: float
    reward_info: Mapping[str, Any]
    asin: str | None
    options: Mapping[str, str]

    def step(self, action: str) -> tuple[bool, str]:
        """Apply ``search[...]`` / ``click[...]``; ``(valid, note)``, the page unchanged when not valid."""
        ...

    def text(self, mode: str = "text") -> str:
        """The current page as upstream's text env shows it."""
        ...

    def admissible_actions(self) -> list[str]:
        """``search[<your query>]`` when there is a search bar, then ``click[...]`` per clickable."""
        ...


def _show(action: object, limit: int = 60) -> str:
    """A short printable rendering of an agent's action for an error note."""
    text = sanitize_text(action if isinstance(action, str) else repr(action), 10 * limit).replace("\n", " ")
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


class WebShopEnv(TextEnv):
    """WebShop (Yao et al., 2022): find and buy the product an instruction asks for, on a simulated web shop.

    ## Description
    A faithful re-implementation of WebShop's text environment (``web_agent_site``): a search page, BM25
    search results (top 50, 10 per page; :mod:`.search`), item pages with option radios, description /
    features / reviews sub-pages, and upstream's reward on purchase. Products and goals come from the
    embedded catalog or, with ``data_dir=`` (or ``$WEBSHOP_DATA``), from upstream's files (:mod:`.data`).

    ## Action Space
    A string: ``search[query]`` on the search page or ``click[x]`` for a clickable of the current page (a
    button such as ``back to search``, ``next >``, ``< prev``, ``description``, ``buy now``; a product's asin;
    an option value). Anything else (malformed, unknown button, search without a search bar, wrong type,
    too long) leaves the page as it was, is explained in the observation, sets ``info["action_valid"]``
    to ``False`` and still counts as a step. ``click[search]`` is listed, as upstream lists it, and does nothing.
    Agents are asked for ``<think>…</think><action>…</action>`` by default (``answer_format=``; ``"verl"``
    parses it by verl-agent's ``webshop_projection`` rules).

    ## Observation Space
    ``Dict`` of ``Text``: ``observation`` (upstream's text observation: the page's visible strings joined
    with ``" [SEP] "``, or the ``"text_rich"`` form), ``task`` (the instruction) and ``admissible_actions``
    (newline-joined, as verl-agent lists them: ``search[<your query>]`` when there is a search bar, then
    ``click[...]`` for every clickable).

    ## Rewards
    Upstream's reward in [0, 1] on ``click[buy now]`` (type, attributes, options and price against the goal;
    ``reward="strict"`` fixes upstream's known bugs), else 0.

    ## Starting State
    The search page of a goal drawn with ``self.np_random`` from the split, or pinned with
    ``reset(options={"task_id": ...})`` (see :attr:`task_ids`).

    ## Episode End
    ``terminated`` on ``buy now``; ``truncated`` after ``max_steps`` steps (15, verl-agent's limit).

    ## Info
    ``won`` (reward == 1), ``score`` (the reward of the purchase, 0 before it), ``task_id``, ``task_type``
    (the goal product's category), ``action_valid``, ``step``; the goal: ``goal_asin``, ``goal_options``
    (the option values asked for), ``goal_attributes``, ``goal_price_upper``, ``goal_name``, ``goal_query``,
    ``goal_product_category``; upstream's available actions: ``has_search_bar``, ``clickables``; after a
    purchase, upstream's reward breakdown (``r_type``, ``r_att``, ``w_att``, ``query_match``,
    ``category_match``, ``title_score`` and, when they apply, ``r_option``, ``w_option``, ``r_price``,
    ``w_price``) and ``purchased_asin``, ``purchased_options`` (``[name, value]`` pairs), ``purchased_price``.
    Values are flat (scalars, strings, lists), so wrappers that copy an info shallowly never share them.

    ## Arguments
    ``split`` (``"train"`` or ``"test"``: upstream's goals[500:] and goals[:500]), ``data_dir``,
    ``num_products``, ``human_goals`` (True), ``max_steps`` (15), ``observation_mode`` (``"text"`` or
    ``"text_rich"``), ``reward`` (``"compatible"`` or ``"strict"``), ``backend`` (``"text"``, or ``"browser"``: selenium in
    headless Chromium on the web site, served in process unless ``site_url`` names a running
    ``skill-gym serve webshop`` on the same data; same actions, observations and reward), ``site_url``, ``show_attrs``
    (upstream's hidden ``Attributes`` tab), ``render_mode`` (``"ansi"``), ``answer_format``.

    ## Version History
    * v0: initial version.

    >>> import gymnasium as gym, skill_gym  # doctest: +SKIP
    >>> env = gym.make("WebShop-v0", split="test")  # doctest: +SKIP
    >>> obs, info = env.reset(seed=0)  # doctest: +SKIP
    >>> obs["admissible_actions"]  # doctest: +SKIP
    'search[<your query>]\\nclick[search]'
    """

    intro = (
        "You are an expert autonomous agent operating in the WebShop e-commerce environment. You search for "
        "products, open them, choose their options and buy the one that best matches the instruction."
    )
    answer_formats: ClassVar[Mapping[str, ResponseFormat]] = {
        **ANSWER_FORMATS,
        "verl": VerlThinkAction(fallback_chars=20),  # webshop_projection keeps the last 20 characters
    }

    def __init__(
        self,
        split: str = "train",
        data_dir: str | os.PathLike[str] | None = None,
        num_products: int | None = None,
        human_goals: bool = True,
        max_steps: int = 15,
        observation_mode: str = "text",
        reward: str = "compatible",
        backend: str = "text",
        show_attrs: bool = False,
        render_mode: str | None = None,
        site_url: str | None = None,
        answer_format: str | None = None,
    ) -> None:
        super().__init__(render_mode=render_mode, answer_format=answer_format)
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
        if observation_mode not in OBSERVATION_MODES:
            raise ValueError(f"observation_mode must be one of {OBSERVATION_MODES}, got {observation_mode!r}")
        if reward not in REWARD_MODES:
            raise ValueError(f"reward must be one of {REWARD_MODES}, got {reward!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        from skill_gym.envs.webshop.data import load_data

        self.split, self.max_steps, self.observation_mode = split, max_steps, observation_mode
        self.reward_mode, self.backend, self.show_attrs = reward, backend, bool(show_attrs)
        self.site_url, self._browser = site_url, None
        self.data = load_data(data_dir=data_dir, num_products=num_products, human_goals=human_goals)
        self._indices = self.data.split(split)
        if not self._indices:
            raise ValueError(f"no WebShop goals in split {split!r} of {self.data.source}")
        self._in_split = set(self._indices)
        self.engine = SearchEngine.for_catalog(self.data.products, self.data.attribute_to_asins)
        self._session: ShopSession | None = None
        self._goal: dict[str, Any] = {}
        self._goal_info: dict[str, Any] = {}
        self._task_id = ""
        self._steps = 0

    @property
    def task_ids(self) -> list[str]:
        """The ids of this split's goals, in order; pass one as ``options={"task_id": id}``."""
        return [self.data.task_id(i) for i in self._indices]

    def _pick(self, task_id: object) -> int:
        if task_id is None:
            return self._indices[int(self.np_random.integers(len(self._indices)))]
        if not isinstance(task_id, str):
            raise ValueError(f"task_id must be a string from env.unwrapped.task_ids, got {type(task_id).__name__}")
        index = self.data.goal_index(task_id)
        if index not in self._in_split:
            raise ValueError(f"task id {task_id!r} is not in the {self.split!r} split; see env.unwrapped.task_ids")
        return index

    def _score(self, product: Mapping[str, Any], options: Mapping[str, str]) -> tuple[float, dict[str, Any]]:
        from skill_gym.envs.webshop.reward import get_reward

        price = self.data.product_prices[product["asin"]]
        reward, info = get_reward(product, self._goal, price, dict(options), verbose=True, mode=self.reward_mode)
        return float(reward), dict(info)

    def _open_session(self, instruction: str) -> ShopSession:
        """A fresh session of the chosen backend on the search page (the extension point for new backends)."""
        if self.backend == "browser":
            from skill_gym.envs.webshop.browser import ShopBrowser
            from skill_gym.envs.webshop.site import ShopSite

            if self._browser is None:  # one Chromium (and site) for the env's life, started on first reset
                site = None if self.site_url else ShopSite(self.data, self.engine, self.reward_mode, self.show_attrs)
                self._browser = ShopBrowser(site, self.site_url)
            return self._browser.open_session(self.data.goal_index(self._task_id))
        return Session(self.engine, self.data.product_item_dict, instruction, score=self._score,
                       show_attrs=self.show_attrs, rng=self.np_random)  # fmt: skip

    def close(self) -> None:
        """Quit the browser backend's Chromium and stop its site, if one was started (safe to call twice)."""
        browser, self._browser = self._browser, None
        if browser is not None:
            browser.close()
        super().close()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, str], dict]:
        super().reset(seed=seed)
        index = self._pick(self.take_pending_options(options).get("task_id"))
        self._goal = self.data.goals[index]
        self._task_id, self._steps = self.data.task_id(index), 0
        self._goal_info = {key: self._goal.get(source) for key, source in _GOAL_KEYS.items()}
        self._goal_info["goal_options"] = _option_values(self._goal.get("goal_options"))
        self._session = self._open_session(self._goal["instruction_text"])
        return self._obs(None, ""), self._info(action_valid=True)

    def step(self, action: str) -> tuple[dict[str, str], SupportsFloat, bool, bool, dict[str, Any]]:
        session = self._session
        if session is None:
            raise RuntimeError("call reset() before step()")
        self._steps += 1
        clean, problem = coerce_action(action)
        if clean is not None and not _encodable(clean):
            clean, problem = None, "the action contains characters that are not valid Unicode"
        if clean is None:
            valid, note = False, problem
        else:
            valid, note = session.step(clean)
        if not valid:
            note = f"Invalid action {_show(action)}: {note}. The page is unchanged."
        elif note:
            note = f"{note}."
        terminated = bool(session.done and valid)
        reward = session.reward if terminated else 0.0
        truncated = not terminated and self._steps >= self.max_steps
        return self._obs(clean or _show(action), note), reward, terminated, truncated, self._info(action_valid=valid)

    def _obs(self, action: str | None, note: str) -> dict[str, str]:
        assert self._session is not None
        page = self._session.text(self.observation_mode)
        return self._observe(action, observation=f"{note}\n{page}" if note else page,
                             task=self._goal["instruction_text"],
                             admissible_actions="\n".join(self._session.admissible_actions()))  # fmt: skip

    def _info(self, action_valid: bool) -> dict[str, Any]:
        session = self._session
        assert session is not None
        bought = session.done
        info: dict[str, Any] = {
            "won": bought and math.isclose(session.reward, 1.0),
            "score": float(session.reward) if bought else 0.0,
            "task_id": self._task_id,
            "task_type": str(self._goal.get("category", "")),
            "action_valid": action_valid,
            "step": self._steps,
            **copy.deepcopy(self._goal_info),  # fresh lists per call: callers keep infos
            **_available(session),
        }
        if bought:
            asin = session.asin or ""
            info.update(session.reward_info)
            info["purchased_asin"], info["purchased_price"] = asin, self.data.product_prices.get(asin)
            info["purchased_options"] = [[name, value] for name, value in session.options.items()]
        return info


def _option_values(goal_options: object) -> list[str]:
    """The option values a goal asks for: upstream's list (human goals) or its dict's values (synthetic goals)."""
    values = goal_options.values() if isinstance(goal_options, Mapping) else goal_options or []
    return [str(value) for value in values]  # type: ignore[union-attr]


def _available(session: ShopSession) -> dict[str, Any]:
    """Upstream's ``get_available_actions`` from the admissible list."""
    actions = session.admissible_actions()
    clicks = [a[len("click[") : -1] for a in actions if a.startswith("click[")]
    return {"has_search_bar": "search[<your query>]" in actions, "clickables": clicks}


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
