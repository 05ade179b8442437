"""WebShop data: upstream's product loader, the price table, and the cached bundle the environment reads.

This module holds:

* :func:`load_products` — upstream's ``load_products`` (``web_agent_site/engine/engine.py``): the derived
  product dicts (``Title``, ``Description``, ``BulletPoints``, ``Price``, ``pricing``, ``options``,
  ``option_to_image``, ``Attributes``, ``MainImage``, instructions), the price table and the attribute index;
* :func:`get_goals` — re-exported from :mod:`~skill_gym.envs.webshop.goals`;
* :func:`load_data` and :class:`WebShopData` — products, price table and goals in upstream's fixed shuffle,
  the split (``test``: the first 500 goals, as upstream's evaluations use; ``train``: the rest; a data set with
  fewer than 1,000 goals keeps half of them for each) and task ids ``"webshop/human/<index>"`` (or
  ``"webshop/synthetic/<index>"``), cached per process;
* :func:`resolve_files` — which three files a ``data_dir`` means.

Files (upstream's names and schemas): the products ``items_shuffle_1000.json`` or ``items_shuffle.json`` (a
list), the synthetic instructions and attributes ``items_ins_v2_1000.json`` or ``items_ins_v2.json`` (a dict by
asin) and the human instructions ``items_human_ins.json`` (a dict by asin of lists). ``data_dir`` (or
``$WEBSHOP_DATA``) is a folder holding them, where the full set is preferred to the 1,000-product set when
both are there, or the products file itself, whose folder holds the other two. With neither, the embedded
catalog of :mod:`~skill_gym.envs.webshop.catalog` is used.

Cleaning and skipping follow upstream: rows whose asin is ``"nan"`` or longer than 10 characters and
repeated asins are skipped; option values are stripped, lowercased and ``/`` becomes ``" | "``; a product
without attributes gets ``["DUMMY_ATTR"]``; a product without a price costs $100. Where upstream would crash
(a row that is not a product, a missing name/category/query, an unparseable price, no image, a product
missing from the attribute file), this loader skips the row or uses the neutral value named in the code, and
logs one warning with the counts.

Random draws (one uniform draw per ranged price, then the goals' price caps) come from a
``random.Random(seed)`` in upstream's order, so ``load_data(seed=s)`` equals upstream's
``random.seed(s); load_products(...); get_goals(...); random.seed(233); random.shuffle(goals)``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import random
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from skill_gym.envs.webshop.goals import Seed, as_rng, get_goals, shuffle_goals

__all__ = [
    "DATA_ENV_VAR",
    "DEFAULT_PRICE",
    "DUMMY_ATTRIBUTE",
    "HUMAN_FILE",
    "SPLITS",
    "TEST_SIZE",
    "WebShopData",
    "WebShopDataError",
    "WebShopFiles",
    "clean_product_keys",
    "generate_product_prices",
    "get_goals",
    "load_data",
    "load_products",
    "parse_pricing",
    "read_json",
    "resolve_files",
]

logger = logging.getLogger(__name__)

DATA_ENV_VAR = "WEBSHOP_DATA"
"""Environment variable naming upstream's data folder (or products file) when ``data_dir`` is not given."""

DEFAULT_PRICE = 100.0
"""Upstream's price of a product without pricing."""

DUMMY_ATTRIBUTE = "DUMMY_ATTR"
"""Upstream's attribute list of a product the attribute file does not describe is ``[DUMMY_ATTRIBUTE]``."""

TEST_SIZE = 500
"""The test split is the first 500 goals after the fixed shuffle; the rest is train."""

SPLITS = ("train", "test")

_MAX_ASIN_CHARS = 10
_DROPPED_KEYS = (
    "product_information",
    "brand",
    "brand_url",
    "list_price",
    "availability_quantity",
    "availability_status",
    "total_reviews",
    "total_answered_questions",
    "seller_id",
    "seller_name",
    "fulfilled_by_amazon",
    "fast_track_message",
    "aplus_present",
    "small_description_old",
)
_REQUIRED_TEXT = ("name", "category", "query", "product_category")
_PRODUCT_FILES = (("items_shuffle.json", "items_ins_v2.json"), ("items_shuffle_1000.json", "items_ins_v2_1000.json"))
HUMAN_FILE = "items_human_ins.json"


class WebShopDataError(ValueError):
    """A WebShop data file is missing or unreadable; the message names the file and the fix."""


@dataclass(frozen=True)
class WebShopFiles:
    """The three files of one WebShop data set (``human`` may not exist when only synthetic goals are used)."""

    products: Path
    attributes: Path
    human: Path


def read_json(path: str | os.PathLike[str], expected: type) -> Any:
    """``json.load`` of ``path``, checked to hold a ``list`` or ``dict``; every failure is a clear error."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except FileNotFoundError:
        raise WebShopDataError(f"WebShop data file not found: {path}") from None
    except (OSError, UnicodeDecodeError, RecursionError, ValueError) as error:
        raise WebShopDataError(f"WebShop data file {path} is not readable JSON: {error}") from None
    if not isinstance(value, expected):
        raise WebShopDataError(
            f"WebShop data file {path} must hold a JSON {expected.__name__}, not {type(value).__name__}"
        )
    return value


def resolve_files(data_dir: str | os.PathLike[str]) -> WebShopFiles:
    """The products, attributes and human-instruction files that ``data_dir`` (a folder or products file) means.

    A products file ``items_shuffle<suffix>.json`` pairs with ``items_ins_v2<suffix>.json`` beside it.
    """
    path = Path(data_dir).expanduser()
    if path.is_file():
        suffix = path.name.removeprefix("items_shuffle") if path.name.startswith("items_shuffle") else None
        folder = path.parent
        candidates = [f"items_ins_v2{suffix}"] if suffix else [attrs for _, attrs in _PRODUCT_FILES]
        attributes = next((folder / name for name in candidates if (folder / name).is_file()), folder / candidates[0])
        return WebShopFiles(products=path, attributes=attributes, human=folder / HUMAN_FILE)
    if not path.is_dir():
        raise WebShopDataError(
            f"WebShop data_dir {path} does not exist; point data_dir (or ${DATA_ENV_VAR}) at the folder holding "
            "items_shuffle_1000.json, items_ins_v2_1000.json and items_human_ins.json, or leave both unset for "
            "the embedded catalog."
        )
    for products, attributes in _PRODUCT_FILES:
        if (path / products).is_file():
            return WebShopFiles(products=path / products, attributes=path / attributes, human=path / HUMAN_FILE)
    raise WebShopDataError(
        f"No WebShop products file in {path}: expected items_shuffle.json or items_shuffle_1000.json "
        "(with items_ins_v2*.json and items_human_ins.json beside it)."
    )


def clean_product_keys(products: Sequence[dict[str, Any]]) -> Sequence[dict[str, Any]]:
    """Drop the fields upstream never uses (brand, seller, availability, ...), in place."""
    for product in products:
        if isinstance(product, dict):
            for key in _DROPPED_KEYS:
                product.pop(key, None)
    return products


def parse_pricing(pricing: Any) -> tuple[list[float], str]:
    """Upstream's ``(pricing, Price)`` from a pricing string: ``"$12.99"`` or ``"$10.00 - $15.50"``.

    >>> parse_pricing("$12.99"), parse_pricing("$1,299.00 - $1,499.00")
    (([12.99], '$12.99'), ([1299.0, 1499.0], '$1299.0 to $1499.0'))
    >>> parse_pricing(None), parse_pricing("call for price")
    (([100.0], '$100.0'), ([100.0], '$100.0'))
    """
    if not isinstance(pricing, str) or not pricing:
        return [DEFAULT_PRICE], f"${DEFAULT_PRICE}"
    try:
        values = [float(Decimal(re.sub(r"[^\d.]", "", part))) for part in pricing.split("$")[1:]]
    except InvalidOperation:
        values = []  # upstream raises here; such a product is priced like one without pricing
    if not values or not all(math.isfinite(v) for v in values):
        return [DEFAULT_PRICE], f"${DEFAULT_PRICE}"
    if len(values) == 1:
        return values, f"${values[0]}"
    return values[:2], f"${values[0]} to ${values[1]}"


def generate_product_prices(all_products: Sequence[Mapping[str, Any]], seed: Seed = 0) -> dict[str, float]:
    """Upstream's price table: the single price, or one uniform draw inside a price range, in product order."""
    rng = as_rng(seed)
    prices = {}
    for product in all_products:
        pricing = product["pricing"]
        if not pricing:
            price = DEFAULT_PRICE
        elif len(pricing) == 1:
            price = pricing[0]
        else:
            price = rng.uniform(*pricing[:2])
        prices[product["asin"]] = price
    return prices


def _strings(value: Any) -> list[str] | None:
    """``value`` if it is a list of strings, else ``None``."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _options(customization_options: Any) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """Upstream's ``options`` ``{name.lower(): [values]}`` and ``option_to_image`` ``{value: image}``."""
    options: dict[str, list[str]] = {}
    option_to_image: dict[str, Any] = {}
    if not isinstance(customization_options, dict):
        return options, option_to_image
    for option_name, option_contents in customization_options.items():
        if option_contents is None or not isinstance(option_contents, list):
            continue
        values = []
        for content in option_contents:
            if not isinstance(content, dict) or not isinstance(content.get("value"), str):
                continue
            value = content["value"].strip().replace("/", " | ").lower()
            values.append(value)
            option_to_image[value] = content.get("image")
        options[option_name.lower()] = values
    return options, option_to_image


def _human_instructions(entries: Any) -> list[dict[str, Any]]:
    """The usable human instructions of one product (an instruction text; attribute/option lists default empty)."""
    if not isinstance(entries, list):
        return []
    usable = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("instruction"), str):
            continue
        usable.append(
            {
                **entry,
                "instruction_attributes": _strings(entry.get("instruction_attributes")) or [],
                "instruction_options": _strings(entry.get("instruction_options")) or [],
            }
        )
    return usable


def _derive_product(
    p: dict[str, Any],
    attributes: Mapping[str, Any],
    human_attributes: Mapping[str, Any],
    human_goals: bool,
    skipped: Counter[str],
) -> dict[str, Any] | None:
    """Upstream's derived fields added to row ``p`` (in place), or ``None`` when upstream could not use it."""
    if any(not isinstance(p.get(key), str) for key in _REQUIRED_TEXT):
        skipped["missing name, category, query or product_category"] += 1
        return None
    asin = p["asin"]
    p["Title"] = p["name"]
    description = p.get("full_description")
    p["Description"] = description if isinstance(description, str) else ""
    p["Reviews"] = []
    p["Rating"] = "N.A."
    bullets = p.get("small_description")
    p["BulletPoints"] = (
        [b for b in bullets if isinstance(b, str)]
        if isinstance(bullets, list)
        else [bullets]
        if isinstance(bullets, str)
        else []
    )
    p["pricing"], p["Price"] = parse_pricing(p.get("pricing"))
    p["options"], p["option_to_image"] = _options(p.get("customization_options"))

    record = attributes.get(asin)
    record = record if isinstance(record, dict) else {}
    p["Attributes"] = _strings(record.get("attributes")) or [DUMMY_ATTRIBUTE]
    if human_goals:
        if asin in human_attributes:
            p["instructions"] = _human_instructions(human_attributes[asin])
    else:
        instruction = record.get("instruction")
        p["instruction_text"] = instruction if isinstance(instruction, str) else None
        p["instruction_attributes"] = _strings(record.get("instruction_attributes"))
        if not record:
            skipped["not in the attribute file (no synthetic goal)"] += 1

    images = p.get("images")
    p["MainImage"] = images[0] if isinstance(images, list) and images else None
    p["query"] = p["query"].lower().strip()
    return p


def load_products(
    filepath: str | os.PathLike[str],
    num_products: int | None = None,
    human_goals: bool = True,
    seed: Seed = 0,
    *,
    attributes_path: str | os.PathLike[str] | None = None,
    human_path: str | os.PathLike[str] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], dict[str, float], dict[str, set[str]]]:
    """Upstream's ``load_products``: ``(all_products, product_item_dict, product_prices, attribute_to_asins)``.

    Args:
        filepath: the products file (``items_shuffle*.json``).
        num_products: keep the first ``num_products`` rows (before skipping, as upstream).
        human_goals: attach human instructions (``instructions``) instead of the synthetic ones
            (``instruction_text``, ``instruction_attributes``).
        seed: the price table's draws (see the module docstring).
        attributes_path, human_path: upstream reads these from module constants; here they default to the
            files :func:`resolve_files` pairs with ``filepath``. The human file is read only for human goals.
    """
    files = resolve_files(filepath)
    products = read_json(filepath, list)
    attributes = read_json(attributes_path or files.attributes, dict)
    human_attributes = read_json(human_path or files.human, dict) if human_goals else {}
    clean_product_keys(products)
    if num_products is not None:
        products = products[:num_products]

    skipped: Counter[str] = Counter()
    seen: set[str] = set()
    all_products = []
    for p in products:
        asin = p.get("asin") if isinstance(p, dict) else None
        if not isinstance(asin, str):
            skipped["not a product with a text asin"] += 1
            continue
        if asin == "nan" or len(asin) > _MAX_ASIN_CHARS:
            skipped["bad asin"] += 1
            continue
        if asin in seen:
            skipped["repeated asin"] += 1
            continue
        seen.add(asin)
        product = _derive_product(p, attributes, human_attributes, human_goals, skipped)
        if product is not None:
            all_products.append(product)
    if skipped:
        logger.warning("WebShop data %s: %s", filepath, ", ".join(f"{n} {why}" for why, n in sorted(skipped.items())))

    attribute_to_asins: dict[str, set[str]] = defaultdict(set)
    for p in all_products:
        for attribute in p["Attributes"]:
            attribute_to_asins[attribute].add(p["asin"])
    product_item_dict = {p["asin"]: p for p in all_products}
    product_prices = generate_product_prices(all_products, seed)
    return all_products, product_item_dict, product_prices, attribute_to_asins


@dataclass(frozen=True, eq=False)
class WebShopData:
    """One loaded WebShop data set: products, price table and goals in upstream's fixed shuffle.

    Task ids are ``"webshop/human/<i>"`` or ``"webshop/synthetic/<i>"``, ``i`` the goal's index in
    :attr:`goals`. Treat every field as read-only: :func:`load_data` hands the same object to every caller.
    """

    products: list[dict[str, Any]]
    product_item_dict: dict[str, dict[str, Any]]
    product_prices: dict[str, float]
    attribute_to_asins: dict[str, set[str]]
    goals: list[dict[str, Any]]
    human_goals: bool
    source: str
    test_size: int = field(init=False)

    def __post_init__(self) -> None:
        # Upstream's test split is goals[:500]; a smaller data set keeps half of its goals for training.
        object.__setattr__(self, "test_size", min(TEST_SIZE, len(self.goals) // 2))

    @property
    def test(self) -> list[int]:
        """Goal indices of the test split: the first ``min(500, len(goals) // 2)`` goals."""
        return list(range(self.test_size))

    @property
    def train(self) -> list[int]:
        """Goal indices of the train split: every goal after the test split."""
        return list(range(self.test_size, len(self.goals)))

    def split(self, name: str) -> list[int]:
        """Goal indices of split ``"train"`` or ``"test"``."""
        if name not in SPLITS:
            raise ValueError(f"Unknown WebShop split {name!r}; choose one of {', '.join(SPLITS)}.")
        return self.test if name == "test" else self.train

    @property
    def goal_kind(self) -> str:
        return "human" if self.human_goals else "synthetic"

    def task_id(self, index: int) -> str:
        """The stable id of goal ``index``."""
        return f"webshop/{self.goal_kind}/{index}"

    @property
    def task_ids(self) -> list[str]:
        return [self.task_id(i) for i in range(len(self.goals))]

    def goal_index(self, task_id: str) -> int:
        """The goal index of ``task_id`` (a clear ``ValueError`` for ids of other data)."""
        prefix = f"webshop/{self.goal_kind}/"
        index_text = task_id.removeprefix(prefix) if isinstance(task_id, str) else ""
        if not (isinstance(task_id, str) and task_id.startswith(prefix) and index_text.isdigit()):
            raise ValueError(
                f"Unknown WebShop task id {task_id!r}; ids look like {prefix}0 .. {prefix}{len(self.goals) - 1}."
            )
        index = int(index_text)
        if index >= len(self.goals):
            raise ValueError(f"WebShop task id {task_id!r} is out of range: there are {len(self.goals)} goals.")
        return index


def load_data(
    data_dir: str | os.PathLike[str] | None = None,
    num_products: int | None = None,
    human_goals: bool = True,
    seed: int = 0,
) -> WebShopData:
    """The WebShop data set at ``data_dir`` (or ``$WEBSHOP_DATA``, or the embedded catalog), cached per process."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV_VAR) or None
    if data_dir is None:
        from skill_gym.envs.webshop.catalog import embedded_dir

        data_dir = embedded_dir()
    files = resolve_files(data_dir)
    stamps = tuple(_stamp(path) for path in (files.products, files.attributes, files.human))
    return _load_data(files, stamps, num_products, bool(human_goals), int(seed))


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=8)
def _load_data(
    files: WebShopFiles, stamps: tuple[Any, ...], num_products: int | None, human_goals: bool, seed: int
) -> WebShopData:
    rng = random.Random(seed)
    products, item_dict, prices, attribute_to_asins = load_products(
        files.products, num_products, human_goals, rng, attributes_path=files.attributes, human_path=files.human
    )
    goals = shuffle_goals(get_goals(products, prices, human_goals, rng))
    return WebShopData(
        products=products,
        product_item_dict=item_dict,
        product_prices=prices,
        attribute_to_asins=attribute_to_asins,
        goals=goals,
        human_goals=human_goals,
        source=str(files.products),
    )
