"""Scripted WebShop baselines: an oracle shopper that knows the goal, and a random shopper.

This module holds:

* :class:`OracleShopper` — one env's oracle: searches the instruction (then the goal product's name), pages
  through the results to the goal product, clicks the goal's option values and buys. It reads the goal from
  ``info["goal_asin"]``, ``info["goal_options"]`` and ``info["goal_name"]`` (privileged), so it scores 1.0 wherever the goal product is reachable by search;
* :class:`RandomShopper` — one env's random baseline: a uniformly drawn admissible action, searching the
  instruction when it draws the search bar;
* :class:`OracleAgent` and :class:`RandomAgent` — the same over a batch, with the agents' duck-typed
  interface ``act(observations, infos) -> actions`` (one shopper per batch position, reset when its env
  starts a new episode).

>>> agent = OracleAgent()
>>> obs = {"task": "i want a mug", "admissible_actions": "search[<your query>]\\nclick[search]"}
>>> agent.act([obs], [{"step": 0, "task_id": "t", "goal_asin": "B1", "goal_options": [], "goal_name": "Mug"}])
['search[i want a mug]']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from skill_gym.agent import BatchAgent, admissible_actions

__all__ = ["OracleAgent", "OracleShopper", "RandomAgent", "RandomShopper"]

_SEARCH = "search[<your query>]"
_BUTTONS = frozenset({"search", "back to search", "next >", "< prev", "description", "features", "reviews",
                      "attributes", "buy now"})  # fmt: skip
_OPTION_MATCH = 85  # upstream's fuzzy threshold for an option match


def _clicks(actions: Sequence[str]) -> list[str]:
    return [a[len("click[") : -1] for a in actions if a.startswith("click[") and a.endswith("]")]


def _best_option(wanted: str, values: Sequence[str]) -> str | None:
    """The option value that matches ``wanted``: exactly, else by upstream's fuzzy test (token set ratio > 85)."""
    if wanted in values:
        return wanted
    from thefuzz import fuzz

    scored = [(fuzz.token_set_ratio(value, wanted), value) for value in values]
    best = max(scored, default=(0, None))
    return best[1] if best[0] > _OPTION_MATCH else None


class OracleShopper:
    """One env's oracle: search, find the goal product, choose the goal's options, buy.

    ``max_pages`` results pages are read per query before it goes back and tries the next query (the
    instruction, then the goal product's name).
    """

    def __init__(self, max_pages: int = 5) -> None:
        self.max_pages = max_pages
        self.reset()

    def reset(self, observation: Mapping[str, str] | None = None, info: Mapping[str, Any] | None = None) -> None:
        """Forget the episode (call at every env reset)."""
        self.query_index, self.pages_read, self.asin = 0, 0, None
        self.chosen: set[str] = set()

    def act(self, observation: Mapping[str, str], info: Mapping[str, Any]) -> str:
        asin = str(info.get("goal_asin", ""))
        actions = admissible_actions(observation)
        clicks = _clicks(actions)
        if _SEARCH in actions:
            queries = [observation.get("task", ""), str(info.get("goal_name") or asin)]
            self.pages_read = 0
            return f"search[{queries[min(self.query_index, len(queries) - 1)]}]"
        if "buy now" in clicks:
            if self.asin != asin:
                return "click[< prev]"
            values = [c for c in clicks if c not in _BUTTONS]
            for wanted in [str(v).lower() for v in info.get("goal_options") or []]:
                value = _best_option(wanted, values)
                if value is not None and value not in self.chosen:
                    self.chosen.add(value)
                    return f"click[{value}]"
            return "click[buy now]"
        if "next >" in clicks:
            if asin.lower() in clicks:
                self.asin = asin
                return f"click[{asin.lower()}]"
            self.pages_read += 1
            if self.pages_read < self.max_pages and any(c not in _BUTTONS for c in clicks):
                return "click[next >]"
            self.query_index += 1
            return "click[back to search]"
        if "< prev" in clicks:
            return "click[< prev]"
        return actions[0] if actions else "click[buy now]"


class RandomShopper:
    """One env's random baseline: a uniformly drawn admissible action (a search uses the instruction)."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def reset(self, observation: Mapping[str, str] | None = None, info: Mapping[str, Any] | None = None) -> None:
        """Nothing to forget (kept for the shoppers' common interface)."""

    def act(self, observation: Mapping[str, str], info: Mapping[str, Any]) -> str:
        del info
        actions = admissible_actions(observation)
        if not actions:
            return "click[back to search]"
        action = actions[int(self.rng.integers(len(actions)))]
        return f"search[{observation.get('task', '')}]" if action == _SEARCH else action


class OracleAgent(BatchAgent):
    """:class:`OracleShopper` over a batch of envs (``act(observations, infos) -> actions``)."""

    def __init__(self, max_pages: int = 5) -> None:
        super().__init__(lambda position: OracleShopper(max_pages))
        self.max_pages = max_pages


class RandomAgent(BatchAgent):
    """:class:`RandomShopper` over a batch of envs; position ``i`` draws from seed ``seed + i``."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(lambda position: RandomShopper(seed + position))
        self.seed = seed
