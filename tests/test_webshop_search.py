"""WebShop search: upstream's document text, Lucene-style analysis, BM25 ranking, prefixes, paging, caching,
and how often each embedded goal's product comes back in the top 50 for its own instruction."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from skill_gym.envs.webshop.search import (
    PRODUCT_WINDOW,
    SEARCH_RETURN_N,
    SearchEngine,
    document_text,
    products_on_page,
    tokenize,
)


def _product(asin: str, title: str, description: str = "", bullets: list[str] | None = None, **extra) -> dict:
    return {"asin": asin, "Title": title, "Description": description, "BulletPoints": bullets or [""],
            "options": extra.pop("options", {}), **extra}  # fmt: skip


def _lucene_scores(docs: list[list[str]], query: list[str], k1: float = 0.9, b: float = 0.4) -> list[float]:
    """BM25 as Lucene (>= 8) computes it, written out from the formula."""
    n_docs, avgdl = len(docs), sum(len(d) for d in docs) / len(docs)
    scores = []
    for doc in docs:
        counts, score = Counter(doc), 0.0
        for term in query:
            df = sum(term in d for d in docs)
            if df == 0 or counts[term] == 0:
                continue
            idf = math.log(1 + (n_docs - df + 0.5) / (df + 0.5))
            tf = counts[term]
            score += idf * tf / (tf + k1 * (1 - b + b * len(doc) / avgdl))
        scores.append(score)
    return scores


def test_document_text_is_upstreams_contents() -> None:
    product = _product("B1", "Cotton Shirt", "Soft. Warm.", ["Machine wash", "Imported"],
                       options={"color": ["navy blue", "red"], "size": ["small | medium"]})  # fmt: skip
    assert (
        document_text(product)
        == "cotton shirt soft. warm. machine wash color: navy blue, red, and size: small | medium"
    )
    assert document_text(_product("B2", "Mug")) == "mug   "  # empty parts keep their separators, as upstream's join


def test_tokenize_drops_stop_words_possessives_and_stems() -> None:
    assert tokenize(["The women's shoes are for running in the rain"]) == [["women", "shoe", "run", "rain"]]
    assert tokenize(["a", "", "it is the"]) == [[], [], []]
    assert tokenize(["x 3 usb-c"]) == [["x", "3", "usb", "c"]]  # one-character tokens kept, as Lucene keeps them


def test_ranking_follows_the_lucene_bm25_formula() -> None:
    texts = ["red cotton shirt for men", "blue cotton shirt", "red red wine glass set of four",
             "wireless red mouse", "cotton candy machine", "mens leather wallet"]  # fmt: skip
    products = [_product(f"B{i}", t) for i, t in enumerate(texts)]
    engine = SearchEngine(products)
    for query in ["red shirt", "cotton", "red wine", "wallet leather red", "candy machines"]:
        expected = _lucene_scores(tokenize([document_text(p) for p in products]), tokenize([query])[0])
        order = sorted((i for i, s in enumerate(expected) if s > 0), key=lambda i: (-expected[i], i))
        assert engine.ranked(query) == order, query


def test_ties_keep_catalog_order_and_only_matching_products_return() -> None:
    products = [_product(f"B{i:02d}", "plain mug") for i in range(60)] + [_product("B99", "teapot")]
    engine = SearchEngine(products)
    hits = engine.search("mug")
    assert len(hits) == SEARCH_RETURN_N
    assert [p["asin"] for p in hits] == [f"B{i:02d}" for i in range(SEARCH_RETURN_N)]
    assert [p["asin"] for p in engine.search("teapot")] == ["B99"]
    assert engine.search("zebra") == [] and engine.search("the of and") == [] and engine.search("") == []


def test_paging_is_ten_per_page() -> None:
    results = list(range(SEARCH_RETURN_N))
    assert products_on_page(results, 1) == list(range(PRODUCT_WINDOW))
    assert products_on_page(results, 5) == list(range(40, 50))
    assert products_on_page(results, 6) == []


def test_upstream_keyword_prefixes() -> None:
    products = [_product(f"B{i}", f"thing {i}", category="food" if i % 2 else "beauty", query=f"q{i % 3}")
                for i in range(80)]  # fmt: skip
    engine = SearchEngine(products, attribute_to_asins={"vegan": {"B3", "B5"}})
    assert [p["asin"] for p in engine.search(["<a>", "vegan"])] == ["B3", "B5"]
    assert all(p["category"] == "food" for p in engine.search(["<c>", "food"])) and len(engine.search("<c> food")) == 40
    assert {p["query"] for p in engine.search("<q> q1")} == {"q1"}
    first = engine.search("<r>", rng=np.random.default_rng(5))
    assert len(first) == SEARCH_RETURN_N and len({p["asin"] for p in first}) == SEARCH_RETURN_N
    assert first == engine.search("<r>", rng=np.random.default_rng(5))
    assert engine.search("<c>") == [] and engine.search("<a> unknown") == []


def test_engine_is_built_once_per_catalog() -> None:
    products = [_product("B1", "mug"), _product("B2", "cup")]
    engine = SearchEngine.for_catalog(products)
    assert SearchEngine.for_catalog(products) is engine
    assert SearchEngine.for_catalog(list(products)) is not engine  # another list is another catalog
    others = [[_product("B3", f"plate {i}")] for i in range(8)]
    assert all(SearchEngine.for_catalog(c) is SearchEngine.for_catalog(c) for c in others)
    assert SearchEngine.for_catalog(products) is not engine  # the oldest of more than 8 catalogs was dropped
    assert SearchEngine([]).search("mug") == [] and SearchEngine([_product("B1", "the")]).search("the") == []


def test_hostile_queries_do_not_break_the_engine() -> None:
    engine = SearchEngine([_product("B1", "coffee mug"), _product("B2", "caf\u00e9 table")])
    assert [p["asin"] for p in engine.search("caf\u00e9")] == ["B2"]
    for query in ["\x00\x1b[2J", "mug " * 2000, "\U0001f600 mug", "[[[", "<r", "<a>"]:
        assert isinstance(engine.search(query), list)


# -- the embedded catalog -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data():
    from skill_gym.envs.webshop.data import load_data

    return load_data()


def test_goal_products_come_back_for_their_own_instructions(data) -> None:
    engine = SearchEngine.for_catalog(data.products, data.attribute_to_asins)
    ranks = []
    for goal in data.goals:
        asins = [p["asin"] for p in engine.search(goal["instruction_text"].lower())]
        ranks.append(asins.index(goal["asin"]) if goal["asin"] in asins else None)
    found = [r for r in ranks if r is not None]
    in_top_50 = len(found) / len(ranks)
    on_first_page = sum(r < PRODUCT_WINDOW for r in found) / len(ranks)
    print(f"\n{len(ranks)} goals, {len(data.products)} products: goal product in the top 50 for its instruction "
          f"{in_top_50:.1%}, on the first page {on_first_page:.1%}")  # fmt: skip
    assert in_top_50 >= 0.8
    by_name = [p["asin"] for p in engine.search(data.product_item_dict[data.goals[0]["asin"]]["Title"].lower())]
    assert data.goals[0]["asin"] in by_name
