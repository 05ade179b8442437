"""The embedded WebShop catalog: a deterministic generator of upstream's three data files.

The generated world
-------------------
Five top categories as in upstream's scrape (``beauty``, ``food``, ``fashion``, ``furniture``,
``electronics``), each with ten product types (:data:`PRODUCT_TYPES`: shampoo, face moisturizer, coffee,
protein bars, running shoes, sweatpants, bar stools, bookcases, wireless earbuds, phone chargers, ...), each
type a leaf of an Amazon-like ``product_category`` path ("Beauty & Personal Care › Hair Care › Shampoo &
Conditioner › Shampoos") with its own search ``query``. Products are dealt round-robin over the 50 types (in
a shuffled order per round), so every type has many competing products (40 each in the 2,000-product
default) that differ in:

* **attributes** — 3 to 5 of the type's 10 (sulfate free, tea tree, long lasting, ...), named in the title,
  the bullet points and the description, and nowhere else; no attribute's words are a subset of another's in
  the same type, so fuzzy matching cannot confuse them;
* **options** — one to three option groups per product drawn from the type's (color, size, flavor name, scent,
  item package quantity, capacity, style, ...), 3 to 6 values each, some with ``/`` ("black/gold"); colors
  include near neighbours (navy blue, light blue, dark blue) that upstream's color normalization merges;
* **price** — a single price or a range (``"$x - $y"``) inside the type's price band, so the goal's price
  cap (10 to 40 dollars above the goal product's price) excludes some of its neighbours;
* **brand and wording** — titles like "Lumera Sulfate Free Shampoo with Tea Tree, Paraben Free - 16.9 Fl Oz",
  bullet points like "SULFATE FREE: ...", and a description.

Instructions name the product type, 2 or 3 of the product's attributes and values of some of its options.
Synthetic instructions (``items_ins_v2.json``) read like upstream's ("Find me sulfate free, paraben free
shampoo with tea tree"); human-style ones (``items_human_ins.json``, one or two per product) like people wrote
them ("i'm looking for a sulfate free shampoo that is paraben free, in 16.9 fl oz size."). As in upstream's
data, a few human instructions carry no attributes (their goals are skipped) and a few products have none.

The product types and option values are data, in ``product_types.json`` (:data:`PRODUCT_TYPES_FILE`). Every
product and its instructions are a pure function of ``(seed, index)``; :func:`generate` writes the
three files in upstream's schemas (``items_shuffle.json``, ``items_ins_v2.json``, ``items_human_ins.json``)
for any size (``python -m skill_gym.envs.webshop.catalog FOLDER --n-products 100000``), and
:func:`embedded_dir` generates the default 2,000-product catalog once into
``cache_dir() / "webshop" / f"catalog-v{CATALOG_VERSION}-<source digest>"`` under a file lock (about a second).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skill_gym.assets import cache_dir, file_lock
from skill_gym.files import atomic_write, file_sha256

__all__ = [
    "CATALOG_VERSION",
    "DEFAULT_N_PRODUCTS",
    "DEFAULT_SEED",
    "OPTION_VALUES",
    "PRODUCT_TYPES",
    "PRODUCT_TYPES_FILE",
    "ProductType",
    "embedded_dir",
    "generate",
    "generate_product",
]

CATALOG_VERSION = 1
"""Bumped whenever the generator's output changes (the cache folder is named after it)."""

DEFAULT_N_PRODUCTS = 2000
DEFAULT_SEED = 0
FILES = ("items_shuffle.json", "items_ins_v2.json", "items_human_ins.json")


@dataclass(frozen=True)
class ProductType:
    """One leaf of the catalog: what its products are called, their attributes, options and price band."""

    category: str
    path: tuple[str, ...]
    query: str
    noun: str
    article: str  # "a" (becomes "an" before a vowel), "a pair of", "a set of", or "" for plural or mass nouns
    attributes: tuple[str, ...]
    options: tuple[str, ...]  # option names, keys of OPTION_VALUES
    price: tuple[float, float]
    materials: tuple[str, ...]


PRODUCT_TYPES_FILE = Path(__file__).with_name("product_types.json")
"""The catalog's tables: the option groups (:data:`OPTION_VALUES`: their values as a shop spells them, and the
option name a product shows them under, ``"Shoe Size"`` -> ``"Size"``) and the 50 product types
(:data:`PRODUCT_TYPES`, 10 per top category)."""


def _product_type(row: dict[str, Any]) -> ProductType:
    low, high = row["price"]
    return ProductType(
        category=row["category"],
        path=tuple(row["path"]),
        query=row["query"],
        noun=row["noun"],
        article=row["article"],
        attributes=tuple(row["attributes"]),
        options=tuple(row["options"]),
        price=(float(low), float(high)),
        materials=tuple(row["materials"]),
    )


def _load_tables(path: Path) -> tuple[dict[str, tuple[str, ...]], dict[str, str], tuple[ProductType, ...]]:
    """The option values and option names by group, and the product types, as ``path`` lists them."""
    tables = json.loads(path.read_text(encoding="utf-8"))
    groups = tables["option_groups"]
    values = {group: tuple(spec["values"]) for group, spec in groups.items()}
    names = {group: spec["name"] for group, spec in groups.items()}
    return values, names, tuple(_product_type(row) for row in tables["product_types"])


OPTION_VALUES, _OPTION_NAME, PRODUCT_TYPES = _load_tables(PRODUCT_TYPES_FILE)

_BRAND_START = ("Lu", "Ve", "Ka", "Or", "Sol", "Ni", "Bra", "Ze", "Mo", "Ari", "Tal", "Quin", "Har", "Fen", "Ro")
_BRAND_END = ("mera", "lora", "vex", "dane", "tix", "nova", "rio", "lyn", "stead", "wick", "forge", "bay", "ora")


def _brand(rng: random.Random) -> str:
    return rng.choice(_BRAND_START) + rng.choice(_BRAND_END)


def _asin(seed: int, index: int) -> str:
    """A 10-character asin unique per (seed, index) for up to 36**8 products."""
    value = (index * 2_654_435_761 + seed * 97_531 + 1_000_003_769) % 36**8
    digits = ""
    for _ in range(8):
        value, digit = divmod(value, 36)
        digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[digit] + digits
    return "B0" + digits


def _title_case(text: str) -> str:
    return " ".join(word if any(c.isdigit() for c in word) else word.capitalize() for word in text.split())


def _indefinite(article: str, next_word: str) -> str:
    if article == "a" and next_word[:1].lower() in "aeiou":
        return "an"
    return article


def _phrase(article: str, *words: str) -> str:
    """``article`` + words, dropping an empty article (``"a" + "organic shampoo"`` -> ``"an organic shampoo"``)."""
    text = " ".join(w for w in words if w)
    article = _indefinite(article, text)
    return f"{article} {text}" if article else text


def _type_order(seed: int, round_index: int) -> list[int]:
    order = list(range(len(PRODUCT_TYPES)))
    random.Random(f"webshop-catalog-round:{seed}:{round_index}").shuffle(order)
    return order


def _price_text(rng: random.Random, band: tuple[float, float]) -> str:
    low, high = band
    price = round(rng.uniform(low, high), 0) - 0.01 if rng.random() < 0.6 else round(rng.uniform(low, high), 2)
    price = max(price, 0.99)
    if rng.random() < 0.3:
        upper = round(price * rng.uniform(1.1, 1.6), 2)
        return f"${price:.2f} - ${upper:.2f}"
    return f"${price:,.2f}"


def _options(rng: random.Random, ptype: ProductType, asin: str) -> dict[str, list[dict[str, Any]]]:
    groups = list(ptype.options)
    if len(groups) > 1:
        keep = rng.randint(1, len(groups))
        groups = sorted(rng.sample(groups, keep), key=ptype.options.index)
    options: dict[str, list[dict[str, Any]]] = {}
    for group in groups:
        pool = OPTION_VALUES[group]
        values = sorted(rng.sample(pool, rng.randint(3, min(6, len(pool)))), key=pool.index)
        with_images = _OPTION_NAME[group] == "Color"
        options[_OPTION_NAME[group]] = [
            {"value": v, "image": f"https://images.example/webshop/{asin}/{i}.jpg" if with_images else None}
            for i, v in enumerate(values)
        ]
    return options


def _title(rng: random.Random, brand: str, ptype: ProductType, attributes: Sequence[str], options: dict) -> str:
    lead, *rest = attributes
    title = f"{brand} {_title_case(lead)} {_title_case(ptype.noun)}"
    if rest:
        title += f" with {_title_case(rest[0])}"
    if len(rest) > 1:
        title += f", {_title_case(rest[1])}"
    sizes = options.get("Size") or options.get("Capacity")
    if sizes and rng.random() < 0.5:
        title += f" - {sizes[0]['value']}"
    elif rng.random() < 0.5:
        title += f" ({_title_case(rng.choice(ptype.materials))})"
    return title


_BULLETS = (
    "{A}: this {noun} features {a}, chosen to fit your routine from the first day.",
    "{A} - {brand} checks every {material} by hand before it ships; {a} you can count on.",
    "{A}. Customers choose this {noun} for its {a} at an honest price.",
    "{A}: designed and tested in small runs, with {a} in every {material}.",
)
_DESCRIPTIONS = (
    "Meet the {brand} {noun}. {Sentences} Backed by a 30-day satisfaction promise.",
    "{Sentences} The {brand} {noun} comes with {material} and friendly customer service.",
    "Why choose {brand}? {Sentences} Order today and see the difference.",
)
_SENTENCES = (
    "It offers {a}.",
    "You get {a} in a {material}.",
    "Our team added {a} after listening to customers.",
)

_SYNTHETIC = (
    "Find me {a1}, {a2} {noun}{with_a3}",
    "I need {art_noun} that is {a1} and {a2}{with_a3}",
    "Show me {art_a1_noun} with {a2}{and_a3}",
    "I am looking for {a1} {noun} that is {a2}{and_a3}",
)
_HUMAN = (
    "i'm looking for {art_a1_noun} that is {a2}{opt_in}",
    "i need {art_a1_noun} with {a2}{opt_and}",
    "i want to buy {art_noun} which is {a1} and {a2}{opt_and}",
    "find me {art_a1_noun}{opt_in}. it should be {a2}",
    "im looking for {a1} and {a2} {noun}{opt_in}",
    "can you help me find {art_noun} that's {a1} and {a2}? i'd like it{opt_bare}",
    "i am searching for {art_a1_noun}, {a2}{opt_and}.",
    "i want {art_a2_noun} that is also {a1}{opt_in}",
)
_OPTION_PHRASE = {
    "Color": ("in {v}", "{v} color", "the color {v}"),
    "Size": ("in size {v}", "{v} size", "size {v}"),
    "Scent": ("in the {v} scent", "{v} scent", "the {v} scent"),
    "Flavor Name": ("in {v} flavor", "{v} flavor", "the {v} flavor"),
    "Item Package Quantity": ("in a pack of {v}", "a pack of {v}", "a pack of {v}"),
    "Capacity": ("with {v}", "{v} capacity", "the {v} version"),
    "Length": ("in {v} length", "{v} long", "the {v} one"),
    "Style": ("in the {v} style", "{v} style", "the {v} style"),
    "Pattern Name": ("in {v} pattern", "{v} pattern", "the {v} pattern"),
}


def _derived_value(value: str) -> str:
    """An option value as upstream's loader derives it (what the reward compares)."""
    return value.strip().replace("/", " | ").lower()


def _synthetic_instruction(rng: random.Random, ptype: ProductType, attrs: Sequence[str]) -> str:
    a1, a2, *a3 = attrs
    fields = {
        "a1": a1,
        "a2": a2,
        "noun": ptype.noun,
        "with_a3": f" with {a3[0]}" if a3 else "",
        "and_a3": f", and {a3[0]}" if a3 else "",
        "art_noun": _phrase(ptype.article, ptype.noun),
        "art_a1_noun": _phrase(ptype.article, a1, ptype.noun),
    }
    return rng.choice(_SYNTHETIC).format(**fields)


def _human_instruction(
    rng: random.Random, ptype: ProductType, attrs: Sequence[str], chosen: Sequence[tuple[str, str]]
) -> str:
    a1, *others = attrs
    a2 = " and ".join(others)
    phrases = [rng.choice(_OPTION_PHRASE[name]).format(v=value) for name, value in chosen]
    joined = " and ".join(phrases)
    fields = {
        "a1": a1,
        "a2": a2,
        "noun": ptype.noun,
        "art_noun": _phrase(ptype.article, ptype.noun),
        "art_a1_noun": _phrase(ptype.article, a1, ptype.noun),
        "art_a2_noun": _phrase(ptype.article, a2, ptype.noun),
        "opt_in": f", {joined}" if joined else "",
        "opt_and": f", and {joined}" if joined else "",
        "opt_bare": f" {joined}" if joined else " soon",
    }
    return rng.choice(_HUMAN).format(**fields)


def generate_product(index: int, seed: int = DEFAULT_SEED) -> tuple[dict[str, Any], dict[str, Any], list[dict]]:
    """Product ``index`` of the catalog for ``seed``: ``(product row, attribute record, human instructions)``.

    The three values go into ``items_shuffle.json`` (a list), ``items_ins_v2.json`` and
    ``items_human_ins.json`` (dicts by asin) respectively; all are pure functions of ``(seed, index)``.
    """
    n_types = len(PRODUCT_TYPES)
    ptype = PRODUCT_TYPES[_type_order(seed, index // n_types)[index % n_types]]
    rng = random.Random(f"webshop-catalog:{seed}:{index}")
    asin = _asin(seed, index)
    brand = _brand(rng)
    attributes = rng.sample(ptype.attributes, rng.randint(3, 5))
    options = _options(rng, ptype, asin)
    name = _title(rng, brand, ptype, attributes, options)

    context = {"brand": brand, "noun": ptype.noun}
    bullets = [
        _BULLETS[i % len(_BULLETS)].format(A=a.upper(), a=a, material=rng.choice(ptype.materials), **context)
        for i, a in enumerate(attributes)
    ]
    sentences = " ".join(
        rng.choice(_SENTENCES).format(a=a, material=rng.choice(ptype.materials)).capitalize() for a in attributes
    )
    description = rng.choice(_DESCRIPTIONS).format(Sentences=sentences, material=rng.choice(ptype.materials), **context)
    product = {
        "asin": asin,
        "name": name,
        "category": ptype.category,
        "query": ptype.query,
        "product_category": " › ".join(ptype.path),
        "full_description": description,
        "small_description": bullets,
        "pricing": _price_text(rng, ptype.price),
        "customization_options": options,
        "images": [f"https://images.example/webshop/{asin}/main.jpg"],
        "brand": brand,
    }

    synthetic_attrs = rng.sample(attributes, 3 if len(attributes) > 3 and rng.random() < 0.5 else 2)
    record = {
        "attributes": list(attributes),
        "instruction": _synthetic_instruction(rng, ptype, synthetic_attrs),
        "instruction_attributes": synthetic_attrs,
    }

    human = []
    for _ in range(rng.choice((0, 1, 1, 1, 1, 2, 2, 2))):
        human_attrs = rng.sample(attributes, 3 if len(attributes) > 3 and rng.random() < 0.5 else 2)
        groups = [g for g in options if rng.random() < 0.85] or list(options)[:1]
        chosen = [(g, _derived_value(rng.choice(options[g])["value"])) for g in groups]
        text = _human_instruction(rng, ptype, human_attrs, chosen)
        no_attributes = rng.random() < 0.03  # upstream's annotators sometimes named no attribute
        human.append(
            {
                "asin": asin,
                "instruction": text,
                "instruction_attributes": [] if no_attributes else human_attrs,
                "instruction_options": [value for _, value in chosen],
                "attributes": list(attributes),
                "options": [f"{g.lower()}: {value}" for g, value in chosen],
            }
        )
    return product, record, human


def generate(folder: str | os.PathLike[str], n_products: int = DEFAULT_N_PRODUCTS, seed: int = DEFAULT_SEED) -> Path:
    """Write ``items_shuffle.json``, ``items_ins_v2.json`` and ``items_human_ins.json`` for ``n_products``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    products, records, human = [], {}, {}
    for index in range(n_products):
        product, record, instructions = generate_product(index, seed)
        products.append(product)
        records[product["asin"]] = record
        if instructions:
            human[product["asin"]] = instructions
    for name, value in zip(FILES, (products, records, human), strict=True):
        atomic_write(folder / name, json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    return folder


def embedded_dir() -> Path:
    """The folder of the embedded 2,000-product catalog, generated into the project cache on first use.

    The folder is named after :data:`CATALOG_VERSION` and a digest of this module's source and its tables
    (:data:`PRODUCT_TYPES_FILE`), so a changed generator never reads a stale cache.
    """
    folder = cache_dir() / "webshop" / f"catalog-v{CATALOG_VERSION}-{_source_digest()}"
    if all((folder / name).is_file() for name in FILES):
        return folder
    with file_lock(folder.with_name(folder.name + ".lock")):
        if not all((folder / name).is_file() for name in FILES):
            generate(folder, DEFAULT_N_PRODUCTS, DEFAULT_SEED)
    return folder


@functools.cache
def _source_digest() -> str:
    return file_sha256(PRODUCT_TYPES_FILE, prefix=file_sha256(__file__).encode())[:12]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a generated WebShop catalog in upstream's file formats.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--n-products", type=int, default=DEFAULT_N_PRODUCTS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    folder = generate(args.folder, args.n_products, args.seed)
    print(f"Wrote {args.n_products} products to {folder}")


if __name__ == "__main__":
    main()
