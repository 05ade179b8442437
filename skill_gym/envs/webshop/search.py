"""WebShop's search engine: BM25 over upstream's product documents, top 50 results, 10 per page.

This module holds:

* :data:`SEARCH_RETURN_N`, :data:`PRODUCT_WINDOW`, :data:`BM25_K1`, :data:`BM25_B` — upstream's numbers
  (``web_agent_site/engine/engine.py``; Lucene's BM25 defaults as pyserini sets them);
* :func:`document_text` — the text upstream indexes per product (``search_engine/convert_product_file_format.py``);
* :func:`tokenize` — Lucene's English analysis as bm25s + PyStemmer give it: lower case, possessive ``'s``
  dropped, Lucene's 33 English stop words, Porter stemming;
* :class:`SearchEngine` — a ``bm25s`` index over a catalog with upstream's ``get_top_n_product_from_keywords``
  (including its ``<r>``, ``<a>``, ``<c>``, ``<q>`` keyword prefixes); :meth:`SearchEngine.for_catalog` builds
  one index per catalog per process and reuses it;
* :func:`products_on_page` — upstream's ``get_product_per_page``.

>>> products = [{"asin": "B1", "Title": "Red cotton shirt", "Description": "", "BulletPoints": [""], "options": {}},
...             {"asin": "B2", "Title": "Blue wool socks", "Description": "", "BulletPoints": [""], "options": {}}]
>>> [p["asin"] for p in SearchEngine(products).search("red shirts")]
['B1']
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "BM25_B",
    "BM25_K1",
    "PRODUCT_WINDOW",
    "SEARCH_RETURN_N",
    "SearchEngine",
    "document_text",
    "products_on_page",
    "tokenize",
]

SEARCH_RETURN_N = 50
"""Results per search (upstream ``SEARCH_RETURN_N``)."""

PRODUCT_WINDOW = 10
"""Results per results page (upstream ``PRODUCT_WINDOW``)."""

BM25_K1 = 0.9
BM25_B = 0.4
"""Lucene's BM25 parameters, which pyserini's ``LuceneSearcher`` uses by default."""

_CACHED_CATALOGS = 8  # as many as the data loader caches

_TOKEN_PATTERN = r"(?u)\b\w+\b"  # Lucene's StandardTokenizer keeps one-character tokens
_POSSESSIVE = re.compile(r"['\u2019]s\b", re.IGNORECASE)  # Lucene's EnglishPossessiveFilter
_STEMMER: Any = None


def document_text(product: Mapping[str, Any]) -> str:
    """The text upstream indexes for ``product``: title, description, first bullet point and options, lowered.

    >>> document_text({"Title": "Mug", "Description": "A cup.", "BulletPoints": ["Ceramic"],
    ...                "options": {"color": ["red", "blue"], "size": ["s"]}})
    'mug a cup. ceramic color: red, blue, and size: s'
    """
    option_text = ", and ".join(f"{name}: {', '.join(values)}" for name, values in product.get("options", {}).items())
    bullets = product.get("BulletPoints") or [""]
    return " ".join([product["Title"], product.get("Description", ""), bullets[0], option_text]).lower()


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lucene-style English tokens of each text (what both the index and the queries see).

    >>> tokenize(["The women's running shoes, size 9"])
    [['women', 'run', 'shoe', 'size', '9']]
    """
    global _STEMMER
    import bm25s
    import Stemmer

    if _STEMMER is None:
        _STEMMER = Stemmer.Stemmer("porter")  # pyserini's DefaultEnglishAnalyzer stems with Porter
    cleaned = [_POSSESSIVE.sub("", text) for text in texts]
    tokens = bm25s.tokenize(cleaned, token_pattern=_TOKEN_PATTERN, stopwords="en", stemmer=_STEMMER,
                            return_ids=False, show_progress=False)  # fmt: skip
    return [[token for token in doc if token] for doc in tokens]


def products_on_page(results: Sequence[Any], page: int) -> list[Any]:
    """The results shown on results page ``page`` (1-based; upstream ``get_product_per_page``)."""
    return list(results[(page - 1) * PRODUCT_WINDOW : page * PRODUCT_WINDOW])


class SearchEngine:
    """BM25 (k1=0.9, b=0.4, Lucene scoring) over :func:`document_text` of every product, via ``bm25s``.

    Ranking follows Lucene: documents matching at least one query term, by score, ties by catalog order.
    ``attribute_to_asins`` serves upstream's ``<a>`` prefix (products having an attribute).
    """

    _cache: ClassVar[dict[int, tuple[Sequence[Mapping[str, Any]], SearchEngine]]] = {}

    def __init__(
        self,
        products: Sequence[Mapping[str, Any]],
        attribute_to_asins: Mapping[str, Any] | None = None,
    ) -> None:
        import bm25s

        self.products = list(products)
        self.attribute_to_asins = attribute_to_asins or {}
        self._index = bm25s.BM25(k1=BM25_K1, b=BM25_B, method="lucene")
        corpus = tokenize([document_text(p) for p in self.products])
        self._empty = not any(corpus)
        if not self._empty:
            self._index.index(corpus, show_progress=False)

    @classmethod
    def for_catalog(
        cls, products: Sequence[Mapping[str, Any]], attribute_to_asins: Mapping[str, Any] | None = None
    ) -> SearchEngine:
        """The engine of this product list, built on first use and kept for the life of the process."""
        entry = cls._cache.get(id(products))
        if entry is None or entry[0] is not products:
            entry = (products, cls(products, attribute_to_asins))  # the entry keeps the list alive: ids stay unique
            cls._cache[id(products)] = entry
            while len(cls._cache) > _CACHED_CATALOGS:
                del cls._cache[next(iter(cls._cache))]
        return entry[1]

    def ranked(self, query: str, k: int = SEARCH_RETURN_N) -> list[int]:
        """Catalog indices of the top ``k`` products for ``query`` (BM25; no match, no result)."""
        tokens = tokenize([query])[0]
        ids = self._index.get_tokens_ids(tokens) if tokens and not self._empty else []
        if not ids:
            return []
        scores = self._index.get_scores(ids)
        matched = np.flatnonzero(scores > 0)
        if len(matched) > k:  # keep every product tied with the k-th score, then order exactly
            kth = np.partition(scores[matched], len(matched) - k)[len(matched) - k]
            matched = matched[scores[matched] >= kth]
        order = np.lexsort((matched, -scores[matched]))
        return [int(i) for i in matched[order][:k]]

    def search(self, keywords: str | Sequence[str], rng: np.random.Generator | None = None) -> list[Mapping[str, Any]]:
        """Upstream's ``get_top_n_product_from_keywords``: the products a search for ``keywords`` returns.

        ``keywords`` is the query split on spaces (or a string, split here). The first keyword may be one of
        upstream's prefixes: ``<r>`` (50 random products, drawn with ``rng``), ``<a> attribute``,
        ``<c> category`` or ``<q> product query`` (every product with it); otherwise BM25 over the joined text.
        """
        words = keywords.split(" ") if isinstance(keywords, str) else list(keywords)
        head = words[0] if words else ""
        if head == "<r>":
            rng = rng if rng is not None else np.random.default_rng(0)
            picks = rng.choice(len(self.products), size=min(SEARCH_RETURN_N, len(self.products)), replace=False)
            return [self.products[int(i)] for i in picks]
        if head == "<a>":
            asins = self.attribute_to_asins.get(" ".join(words[1:]).strip(), ())
            return [p for p in self.products if p["asin"] in asins]
        if head == "<c>":
            category = words[1].strip() if len(words) > 1 else ""
            return [p for p in self.products if p.get("category") == category]
        if head == "<q>":
            query = " ".join(words[1:]).strip()
            return [p for p in self.products if p.get("query") == query]
        return [self.products[i] for i in self.ranked(" ".join(words))]
