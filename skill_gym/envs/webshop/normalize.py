"""Color and size normalization of WebShop option values (upstream ``web_agent_site/engine/normalize.py``).

This module holds :data:`COLOR_SET`, :data:`SIZE_SET`, :data:`SIZE_PATTERNS` and:

* :func:`normalize_color` — upstream's: the first word of :data:`COLOR_SET` (in the set's alphabetical order)
  found anywhere inside the text, even inside another word (``"steelivy fuchsia"`` -> ``"fuchsia"``);
* :func:`normalize_color_strict` — the fix: the color words of the text, whole words only, in text order
  (``"dark blue"`` stays ``"dark blue"``, so it no longer matches ``"light blue"``);
* :func:`normalize_color_size` — upstream's mapping of every color and size value to its normal form.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from typing import Any

__all__ = [
    "COLOR_SET",
    "SIZE_PATTERNS",
    "SIZE_SET",
    "normalize_color",
    "normalize_color_size",
    "normalize_color_strict",
]

COLOR_SET: list[str] = [
    "alabaster", "apricot", "aqua", "ash", "asphalt", "azure",
    "banana", "beige", "black", "blue", "blush", "bordeaux", "bronze",
    "brown", "burgundy", "camel", "camo", "caramel", "champagne",
    "charcoal", "cheetah", "chestnut", "chocolate", "christmas", "coffee",
    "cognac", "copper", "coral", "cranberry", "cream", "crystal", "dark",
    "denim", "eggplant", "elephant", "espresso", "fuchsia", "gold", "granite",
    "grape", "graphite", "grass", "gray", "green", "grey", "heather", "indigo",
    "ivory", "ivy", "khaki", "lavender", "lemon", "leopard", "light", "lilac",
    "lime", "magenta", "maroon", "mauve", "merlot", "midnight", "mint", "mocha",
    "multicolor", "mushroom", "mustard", "natural", "navy", "nude", "olive",
    "orange", "peach", "pewter", "pink", "plum", "purple", "rainbow", "red",
    "rose", "royal", "rust", "sand", "sapphire", "seashell", "silver", "skull",
    "slate", "steel", "stone", "stonewash", "sunflower", "tan", "taupe", "teal",
    "tiger", "turquoise", "violet", "walnut", "wheat", "white", "wine", "yellow",
]  # fmt: skip
"""Upstream's base colors, in upstream's order (the order decides which color :func:`normalize_color` returns)."""

SIZE_SET: list[str] = [
    "xx-large", "3x-large", "4x-large", "5x-large", "x-large", "x-small",
    "medium", "large", "small",
    "queen", "twin", "full", "king", "one size",
    "pack",
]  # fmt: skip

_SIZE_REGEXES = [
    r"(.*)neck(.*)sleeve", r"(.*) women \| (.*) men", r"(.*)w x(.*)l", r"(.*)w by (.*)l", r"(.*)w x(.*)h",
    r"(.*)wide", r"(.*)x-wide", r"(.*)narrow", r"(.*)petite", r"(.*)inch", r"(.*)plus", r"(.*)mm", r"women(.*)",
    r"(.*)x(.*)", r"(.*)ft", r"(.*)feet", r"(.*)meter", r"(.*)yards", r"(.*)\*(.*)", r"(.*)\-(.*)",
    r'(\d+)"$', r"(\d+)f$", r"(\d+)m$", r"(\d+)cm$", r"(\d+)g$",
]  # fmt: skip

SIZE_PATTERNS: list[re.Pattern[str]] = [re.compile(s) for s in SIZE_SET] + [re.compile(s) for s in _SIZE_REGEXES]
"""Upstream's size patterns, tried in order: the plain size words first, then the shapes of measured sizes."""

_COLOR_WORDS = frozenset(COLOR_SET)
_WORD = re.compile(r"[a-z]+")


def normalize_color(color_string: Any) -> Any:
    """Upstream's color normalization: the first :data:`COLOR_SET` entry contained in ``color_string``.

    Containment is Python's ``in``: a substring test on text, an element test on a tuple (upstream passes
    synthetic goals' ``(name, value)`` pairs here). Anything without a color comes back unchanged.

    >>> normalize_color("violet lavender"), normalize_color("steelivy fuchsia"), normalize_color("webshop")
    ('lavender', 'fuchsia', 'webshop')
    >>> normalize_color(("color", "black")), normalize_color(("color", "navy blue"))
    ('black', ('color', 'navy blue'))
    """
    for norm_color in COLOR_SET:
        if norm_color in color_string:
            return norm_color
    return color_string


def normalize_color_strict(color_string: str) -> str:
    """The color words of ``color_string`` (whole words, text order), or the text itself when it has none.

    >>> normalize_color_strict("Dark Blue"), normalize_color_strict("steelivy fuchsia"), normalize_color_strict("xl")
    ('dark blue', 'fuchsia', 'xl')
    """
    text = str(color_string).lower()
    colors = [word for word in _WORD.findall(text) if word in _COLOR_WORDS]
    return " ".join(colors) if colors else text


def normalize_color_size(product_prices: Mapping[tuple[Hashable, str, str], Any]) -> tuple[dict, dict]:
    """Upstream's maps from every color and size in ``product_prices`` keys ``(id, color, size)`` to normal forms.

    Colors map to their first :data:`COLOR_SET` entry, sizes to the pattern text of the first
    :data:`SIZE_PATTERNS` entry that matches, ``"numeric_size"`` for plain numbers, else ``"not_matched"``.
    """
    all_colors, all_sizes = set(), set()
    for (_, color, size), _ in product_prices.items():
        all_colors.add(color.lower())
        all_sizes.add(size.lower())

    color_mapping = {"N.A.": "not_matched"}
    for color in all_colors:
        color_mapping[color] = next((base for base in COLOR_SET if base in color), "not_matched")

    size_mapping = {"N.A.": "not_matched"}
    for size in all_sizes:
        pattern = next((p for p in SIZE_PATTERNS if re.search(p, size) is not None), None)
        if pattern is not None:
            size_mapping[size] = pattern.pattern
        elif size.replace(".", "", 1).isdigit():
            size_mapping[size] = "numeric_size"
        else:
            size_mapping[size] = "not_matched"
    return color_mapping, size_mapping
