"""WebShop goals: upstream's human and synthetic goals with their price caps (``web_agent_site/engine/goal.py``).

This module holds :data:`PRICE_RANGE`, :func:`price_cap`, :func:`get_human_goals`, :func:`get_synthetic_goals`,
:func:`get_goals` and :func:`shuffle_goals` (upstream's one fixed shuffle, ``random.seed(233)``).

Random draws come from a :class:`random.Random`, never from the global generator, in upstream's order: with
``seed=s`` the goals equal what upstream draws after ``random.seed(s)``; pass a ``random.Random`` instead to
continue a stream (upstream draws the price table and then the goals from one global stream).

A goal is upstream's dict: ``asin``, ``category``, ``query``, ``name``, ``product_category``,
``instruction_text`` (the instruction, plus ``", and price lower than X.00 dollars"`` when capped),
``attributes``, ``price_upper``, ``goal_options`` (human goals: a list of option values; synthetic goals: a
dict ``{option name: value}``) and ``weight`` (human: 1; synthetic: mean inverse frequency of its attributes).

Where upstream would crash, this module skips instead: synthetic products with no instruction attributes
(upstream asserts), and price caps without a price table give no price text (upstream reads an unset name).
Kept as upstream: a product with an empty option list yields no synthetic goal (``itertools.product`` of an
empty list is empty), and human instructions without attributes are skipped.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "GOAL_SHUFFLE_SEED",
    "NO_PRICE_CAP",
    "PRICE_RANGE",
    "Seed",
    "as_rng",
    "get_goals",
    "get_human_goals",
    "get_synthetic_goals",
    "price_cap",
    "shuffle_goals",
]

PRICE_RANGE: list[float] = [10.0 * i for i in range(1, 100)]
"""Candidate price caps: 10, 20, ..., 990 dollars."""

NO_PRICE_CAP = 1000000
"""``price_upper`` of a goal whose product is too expensive for two caps above its price."""

GOAL_SHUFFLE_SEED = 233
"""Upstream shuffles the goal list once with ``random.seed(233)``; the test split is the first 500 after it."""

Seed = int | random.Random
"""A seed for a fresh ``random.Random``, or a generator whose stream continues."""


def as_rng(seed: Seed) -> random.Random:
    """A generator for ``seed``: the generator itself, or a fresh ``random.Random(seed)``."""
    return seed if isinstance(seed, random.Random) else random.Random(seed)


def price_cap(price: float, rng: random.Random) -> tuple[float, str]:
    """Upstream's cap for a product at ``price``: ``(price_upper, text appended to the instruction)``.

    The cap is the larger of two caps drawn from the first four of :data:`PRICE_RANGE` above the price, so
    the goal product is always affordable and some of its more expensive neighbours are not.

    >>> price_cap(12.5, random.Random(0))
    (50.0, ', and price lower than 50.00 dollars')
    >>> price_cap(985.0, random.Random(0))
    (1000000, '')
    """
    candidates = [p for p in PRICE_RANGE if p > price][:4]
    if len(candidates) < 2:
        return NO_PRICE_CAP, ""
    _, price_upper = sorted(rng.sample(candidates, 2))
    return price_upper, f", and price lower than {price_upper:.2f} dollars"


def get_human_goals(
    all_products: Sequence[Mapping[str, Any]], product_prices: Mapping[str, float] | None, rng: random.Random
) -> list[dict[str, Any]]:
    """One goal per human instruction that names at least one attribute (upstream ``get_human_goals``)."""
    goals = []
    for item in all_products:
        asin = item["asin"]
        for instruction in item.get("instructions", ()):
            attributes = instruction["instruction_attributes"]
            if len(attributes) == 0:
                continue
            price_upper, price_text = NO_PRICE_CAP, ""
            if product_prices is not None:
                price_upper, price_text = price_cap(product_prices[asin], rng)
            goals.append(
                {
                    "asin": asin,
                    "category": item["category"],
                    "query": item["query"],
                    "name": item["name"],
                    "product_category": item["product_category"],
                    "instruction_text": instruction["instruction"].strip(".") + price_text,
                    "attributes": attributes,
                    "price_upper": price_upper,
                    "goal_options": instruction["instruction_options"],
                    "weight": 1,
                }
            )
    return goals


def get_synthetic_goals(
    all_products: Sequence[Mapping[str, Any]], product_prices: Mapping[str, float] | None, rng: random.Random
) -> list[dict[str, Any]]:
    """One goal per combination of a product's option values (upstream ``get_synthetic_goals``).

    The instruction is the product's synthetic instruction, then ``" with k1: v1, and k2: v2"`` over the
    option names in sorted order, then the price text; all of one product's goals share one price cap.
    """
    goals = []
    attribute_counts: dict[str, int] = defaultdict(int)
    for product in all_products:
        instruction_text = product.get("instruction_text")
        attributes = product.get("instruction_attributes")
        if instruction_text is None or not attributes:
            continue
        asin = product["asin"]
        price_upper, price_text = NO_PRICE_CAP, ""
        if product_prices is not None:
            price_upper, price_text = price_cap(product_prices[asin], rng)

        options = product["options"]
        option_names = sorted(options)
        for combination in itertools.product(*(options[name] for name in option_names)):
            goal_options = dict(zip(option_names, combination, strict=True))
            option_text = ", and ".join(f"{k}: {v}" for k, v in goal_options.items())
            option_text = " with " + option_text if option_text else ""
            goals.append(
                {
                    "asin": asin,
                    "category": product["category"],
                    "query": product["query"],
                    "name": product["Title"],
                    "product_category": product["product_category"],
                    "instruction_text": f"{instruction_text}{option_text}{price_text}",
                    "attributes": attributes,
                    "price_upper": price_upper,
                    "goal_options": goal_options,
                }
            )
            for attribute in attributes:
                attribute_counts[attribute] += 1
    for goal in goals:
        goal["weight"] = sum(1.0 / attribute_counts[a] for a in goal["attributes"]) / len(goal["attributes"])
    return goals


def get_goals(
    all_products: Sequence[Mapping[str, Any]],
    product_prices: Mapping[str, float] | None,
    human_goals: bool = True,
    seed: Seed = 0,
) -> list[dict[str, Any]]:
    """Human goals (``human_goals=True``) or synthetic goals, in product order (upstream ``get_goals``)."""
    rng = as_rng(seed)
    if human_goals:
        return get_human_goals(all_products, product_prices, rng)
    return get_synthetic_goals(all_products, product_prices, rng)


def shuffle_goals(goals: Sequence[dict[str, Any]], seed: int = GOAL_SHUFFLE_SEED) -> list[dict[str, Any]]:
    """A copy of ``goals`` in upstream's fixed order (``random.seed(233); random.shuffle(goals)``).

    >>> shuffle_goals(list(range(6)))
    [2, 0, 3, 4, 1, 5]
    """
    shuffled = list(goals)
    random.Random(seed).shuffle(shuffled)
    return shuffled
