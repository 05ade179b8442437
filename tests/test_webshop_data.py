"""WebShop data: upstream's loader and goals on edge-case fixtures, the split, and the embedded catalog."""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from skill_gym.envs.webshop import catalog
from skill_gym.envs.webshop.data import (
    DUMMY_ATTRIBUTE,
    WebShopDataError,
    load_data,
    load_products,
    resolve_files,
)
from skill_gym.envs.webshop.goals import PRICE_RANGE, get_goals, shuffle_goals

FIXTURES = Path(__file__).parent / "data" / "webshop"
PRODUCTS = FIXTURES / "items_shuffle_1000.json"


@pytest.fixture(scope="module")
def loaded():
    return load_products(PRODUCTS, human_goals=True, seed=0)


@pytest.fixture(scope="module")
def embedded():
    return load_data(catalog.embedded_dir())


def test_skips_bad_asins_repeats_and_unusable_rows(loaded, caplog) -> None:
    all_products, item_dict, prices, attribute_to_asins = loaded
    asins = [p["asin"] for p in all_products]
    assert asins == ["B0FIX00001", "B0FIX00002", "B0FIX00003", "B0FIX00005", "B0FIX00006"]
    assert item_dict["B0FIX00001"]["name"] == "Lumera Sulfate Free Shampoo with Tea Tree"  # the first row wins
    assert set(item_dict) == set(prices) == set(asins)
    with caplog.at_level("WARNING"):
        load_products(PRODUCTS)
    assert "1 bad asin" not in caplog.text and "2 bad asin" in caplog.text and "1 repeated asin" in caplog.text


def test_derives_upstream_fields(loaded) -> None:
    item = loaded[1]["B0FIX00001"]
    assert item["Title"] == item["name"] and item["Description"] == "A gentle shampoo."
    assert item["BulletPoints"] == ["SULFATE FREE: gentle", "TEA TREE: fresh"]
    assert item["query"] == "shampoo"  # lowercased and stripped
    assert item["pricing"] == [10.0, 20.0] and item["Price"] == "$10.0 to $20.0"
    assert item["options"] == {"color": ["black | white", "navy blue"], "size": ["8 fl oz", "16.9 fl oz"]}
    assert item["option_to_image"] == {
        "black | white": "https://images.example/1.jpg",
        "navy blue": None,
        "8 fl oz": None,
        "16.9 fl oz": None,
    }
    assert item["Attributes"] == ["sulfate free", "tea tree", "dry hair"]
    assert item["MainImage"] == "https://images.example/main1.jpg"
    assert item["Reviews"] == [] and item["Rating"] == "N.A."
    assert not {"brand", "seller_id", "list_price"} & set(item)  # clean_product_keys
    assert "instruction_text" not in item and len(item["instructions"]) == 2  # the string entry is dropped


def test_edge_cases_upstream_would_crash_on(loaded) -> None:
    items = loaded[1]
    coffee, mouse, bookcase, jerky = (items[a] for a in ("B0FIX00002", "B0FIX00003", "B0FIX00005", "B0FIX00006"))
    assert coffee["options"] == {"color": []}  # an empty option list is kept; a null one is dropped
    assert coffee["BulletPoints"] == ["FAIR TRADE: single origin"] and coffee["Price"] == "$25.5"
    assert mouse["Attributes"] == [DUMMY_ATTRIBUTE] and mouse["pricing"] == [100.0] and mouse["Price"] == "$100.0"
    assert "instructions" not in mouse and mouse["options"] == {}
    assert bookcase["Description"] == "" and bookcase["BulletPoints"] == [] and bookcase["MainImage"] is None
    assert bookcase["pricing"] == [100.0]  # "$" alone
    assert bookcase["instructions"][0]["instruction_options"] == []
    assert jerky["pricing"] == [1299.0, 1499.0] and jerky["Price"] == "$1299.0 to $1499.0"
    assert jerky["options"]["flavor name"] == ["original"]  # non-text option values are dropped
    assert jerky["Attributes"] == [DUMMY_ATTRIBUTE]  # the attribute record holds no list
    assert loaded[3][DUMMY_ATTRIBUTE] == {"B0FIX00003", "B0FIX00006"}
    assert loaded[3]["tea tree"] == {"B0FIX00001"}
    assert loaded[3]["never seen"] == set()  # a defaultdict, as upstream's


def test_price_table_draws_from_its_own_generator(loaded) -> None:
    prices = loaded[2]
    assert prices["B0FIX00001"] == random.Random(0).uniform(10.0, 20.0)
    rng = random.Random(0)
    rng.uniform(10.0, 20.0)
    assert prices["B0FIX00006"] == rng.uniform(1299.0, 1499.0)
    assert prices["B0FIX00002"] == 25.5 and prices["B0FIX00003"] == 100.0

    random.seed(12345)
    expected_next = random.random()
    random.seed(12345)
    load_products(PRODUCTS, seed=7)
    assert random.random() == expected_next  # the global generator is untouched
    assert load_products(PRODUCTS, seed=7)[2] == load_products(PRODUCTS, seed=7)[2] != prices


def test_human_goals_follow_upstream(loaded) -> None:
    all_products, _, prices, _ = loaded
    goals = get_goals(all_products, prices, human_goals=True, seed=0)
    assert [g["asin"] for g in goals] == ["B0FIX00001", "B0FIX00002", "B0FIX00005", "B0FIX00006"]
    first = goals[0]
    assert list(first) == [
        "asin",
        "category",
        "query",
        "name",
        "product_category",
        "instruction_text",
        "attributes",
        "price_upper",
        "goal_options",
        "weight",
    ]
    caps = [p for p in PRICE_RANGE if p > prices["B0FIX00001"]][:4]
    assert first["price_upper"] == sorted(random.Random(0).sample(caps, 2))[1]
    assert first["instruction_text"] == (
        f"i'm looking for a sulfate free shampoo with tea tree, in navy blue, and price lower than {first['price_upper']:.2f} dollars"
    )
    assert first["goal_options"] == ["navy blue"] and first["weight"] == 1
    jerky = goals[3]
    assert jerky["price_upper"] == 1000000 and jerky["instruction_text"].endswith("size 1 pound")  # no cap over $990


def test_synthetic_goals_follow_upstream(loaded) -> None:
    all_products, _, prices, _ = load_products(PRODUCTS, human_goals=False, seed=0)
    goals = get_goals(all_products, prices, human_goals=False, seed=0)
    # Shampoo: 2 colors x 2 sizes; coffee: an empty option list gives no goal (as upstream); bookcase: no
    # options, one goal; jerky: no instruction attributes; mouse: not in the attribute file.
    assert Counter(g["asin"] for g in goals) == {"B0FIX00001": 4, "B0FIX00005": 1}
    shampoo = goals[0]
    assert shampoo["goal_options"] == {"color": "black | white", "size": "8 fl oz"}
    assert shampoo["instruction_text"] == (
        "Find me sulfate free shampoo with tea tree with color: black | white, and size: 8 fl oz"
        f", and price lower than {shampoo['price_upper']:.2f} dollars"
    )
    assert len({g["price_upper"] for g in goals[:4]}) == 1  # one cap per product
    assert goals[4]["instruction_text"].startswith("Show me a solid wood bookcase, and price lower than")
    assert goals[4]["goal_options"] == {}
    assert [g["weight"] for g in goals] == [pytest.approx(0.25)] * 4 + [1.0]


def test_load_data_shuffles_once_and_splits(tmp_path) -> None:
    data = load_data(FIXTURES)
    assert load_data(FIXTURES) is data  # cached per process
    products, _, prices, _ = load_products(PRODUCTS)
    rng = random.Random(0)
    load_products(PRODUCTS, seed=rng)  # one stream: the price table, then the goals
    assert data.goals == shuffle_goals(get_goals(products, prices, True, rng))
    assert data.test_size == 2 and data.test == [0, 1] and data.train == [2, 3]
    assert data.split("train") == data.train
    with pytest.raises(ValueError, match="train, test"):
        data.split("validation")
    assert data.task_ids == [f"webshop/human/{i}" for i in range(4)]
    assert all(data.goal_index(t) == i for i, t in enumerate(data.task_ids))
    for bad in ("webshop/human/4", "webshop/synthetic/0", "webshop/human/-1", "", None, 3):
        with pytest.raises(ValueError, match="WebShop task id"):
            data.goal_index(bad)
    assert load_data(PRODUCTS).goals == data.goals  # the products file itself works too


def test_data_dir_from_environment_and_clear_errors(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WEBSHOP_DATA", str(FIXTURES))
    assert load_data().source == str(PRODUCTS)
    with pytest.raises(WebShopDataError, match="does not exist"):
        load_data(tmp_path / "missing")
    with pytest.raises(WebShopDataError, match="No WebShop products file"):
        load_data(tmp_path)
    for name in ("items_shuffle_1000.json", "items_ins_v2_1000.json"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    with pytest.raises(WebShopDataError, match=r"not found.*items_human_ins\.json"):
        load_data(tmp_path)
    assert len(load_data(tmp_path, human_goals=False).goals) == 5  # the human file is needed only for its goals
    (tmp_path / "items_human_ins.json").write_text('{"B0FIX00001": [')
    with pytest.raises(WebShopDataError, match="not readable JSON"):
        load_data(tmp_path)
    (tmp_path / "items_human_ins.json").write_text("[]")
    with pytest.raises(WebShopDataError, match="must hold a JSON dict, not list"):
        load_data(tmp_path)
    (tmp_path / "items_human_ins.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(WebShopDataError, match="not readable JSON"):
        load_data(tmp_path)
    (tmp_path / "items_human_ins.json").write_text("[" * 100_000)
    with pytest.raises(WebShopDataError, match="not readable JSON"):
        load_data(tmp_path)


def test_full_set_is_preferred_and_pairs_with_its_attribute_file(tmp_path) -> None:
    for name in ("items_shuffle_1000.json", "items_ins_v2_1000.json", "items_human_ins.json"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    (tmp_path / "items_shuffle.json").write_text("[]")
    (tmp_path / "items_ins_v2.json").write_text("{}")
    assert resolve_files(tmp_path).products.name == "items_shuffle.json"
    assert resolve_files(tmp_path).attributes.name == "items_ins_v2.json"
    small = resolve_files(tmp_path / "items_shuffle_1000.json")
    assert small.attributes.name == "items_ins_v2_1000.json" and small.human.name == "items_human_ins.json"
    assert load_data(tmp_path).goals == []
    assert load_data(tmp_path).test == load_data(tmp_path).train == []


# The embedded catalog.


def test_catalog_is_deterministic_per_seed(tmp_path) -> None:
    digests = []
    for folder, seed in (("a", 0), ("b", 0), ("c", 1)):
        catalog.generate(tmp_path / folder, n_products=120, seed=seed)
        digests.append(hashlib.sha256((tmp_path / folder / "items_shuffle.json").read_bytes()).hexdigest())
    assert digests[0] == digests[1] != digests[2]
    first = json.loads((tmp_path / "a" / "items_shuffle.json").read_text())
    assert first[:50] == [catalog.generate_product(i, 0)[0] for i in range(50)]


def test_embedded_catalog_has_upstream_shapes_and_size(embedded) -> None:
    assert f"catalog-v{catalog.CATALOG_VERSION}-" in embedded.source
    assert len(embedded.products) == catalog.DEFAULT_N_PRODUCTS >= 2000
    assert len({p["category"] for p in embedded.products}) >= 5
    per_leaf = Counter(p["product_category"] for p in embedded.products)
    assert len(per_leaf) >= 40 and min(per_leaf.values()) >= 20
    assert len(embedded.goals) >= 2000 and embedded.test_size == 500
    assert all(len(p["asin"]) == 10 for p in embedded.products)
    ranged = sum(len(p["pricing"]) == 2 for p in embedded.products)
    assert 0.15 < ranged / len(embedded.products) < 0.5
    assert any("|" in v for p in embedded.products for values in p["options"].values() for v in values)
    rich_options = sum(any(len(v) >= 3 for v in p["options"].values()) for p in embedded.products)
    assert rich_options == len(embedded.products)
    synthetic = load_data(human_goals=False)
    assert len(synthetic.goals) > len(embedded.goals) and synthetic.products[0]["instruction_text"]


def test_embedded_texts_name_only_their_own_attributes(embedded) -> None:
    by_query = {t.query: t for t in catalog.PRODUCT_TYPES}
    for product in embedded.products:
        ptype = by_query[product["query"]]
        text = " ".join([product["Title"], *product["BulletPoints"], product["Description"]]).lower()
        assert all(a in text for a in product["Attributes"]), product["asin"]
        foreign = [a for a in ptype.attributes if a not in product["Attributes"] and a in text]
        assert not foreign, (product["asin"], foreign)
    for ptype in catalog.PRODUCT_TYPES:  # fuzzy matching never confuses two attributes of one type
        words = [set(a.split()) for a in ptype.attributes]
        assert not [(a, b) for a in words for b in words if a is not b and a <= b], ptype.query


def test_embedded_instructions_read_like_requests(embedded) -> None:
    nouns = {t.query: t.noun for t in catalog.PRODUCT_TYPES}
    for goal in embedded.goals:
        text = goal["instruction_text"]
        assert text == text.lower() and re.search(r"\b(i|i'm|im|find|can)\b", text), text
        assert nouns[goal["query"]] in text
        assert all(a in text for a in goal["attributes"]) and all(o in text for o in goal["goal_options"]), text
    capped = [g for g in embedded.goals if g["price_upper"] < 1000000]
    assert len(capped) > 0.9 * len(embedded.goals)
    assert all(g["instruction_text"].endswith(f"price lower than {g['price_upper']:.2f} dollars") for g in capped)


def test_embedded_goals_punish_wrong_products_options_and_prices(embedded) -> None:
    from skill_gym.envs.webshop.reward import get_reward

    data = embedded
    leaf_products = defaultdict(list)
    for p in data.products:
        leaf_products[p["product_category"]].append(p)
    rng = random.Random(0)
    sample = rng.sample(data.test, 40)
    wrong_product_loses = wrong_option_loses = pricier_neighbour = 0
    for index in sample:
        goal = data.goals[index]
        product = data.product_item_dict[goal["asin"]]
        price = data.product_prices[goal["asin"]]
        values = {}
        for wanted in goal["goal_options"]:
            name = next(n for n, v in product["options"].items() if wanted in v)
            values[name] = wanted
        assert get_reward(product, goal, price, values)[0] == 1.0, data.task_id(index)

        wrong = next(
            (
                {**values, n: v}
                for n, chosen in values.items()
                for v in product["options"][n]
                if get_reward(product, goal, price, {**values, n: v}, mode="strict")[0] < 1.0
            ),
            None,
        )
        wrong_option_loses += wrong is not None

        rivals = [p for p in leaf_products[goal["product_category"]] if p["asin"] != goal["asin"]]
        rival_rewards = []
        for rival in rivals:
            choice = {
                n: next((v for v in values.values() if v in vals), vals[0]) for n, vals in rival["options"].items()
            }
            rival_rewards.append(get_reward(rival, goal, data.product_prices[rival["asin"]], choice)[0])
        wrong_product_loses += sum(r < 1.0 for r in rival_rewards) >= 0.8 * len(rivals)
        pricier_neighbour += any(data.product_prices[r["asin"]] > goal["price_upper"] for r in rivals)
    assert wrong_option_loses >= 0.9 * len(sample)
    assert wrong_product_loses >= 0.9 * len(sample)
    assert pricier_neighbour >= 0.4 * len(sample)  # the cap sometimes rules out a neighbour
