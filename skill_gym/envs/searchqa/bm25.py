"""Lucene BM25 retrieval over wiki-18 passages, as pyserini indexes them for Search-R1.

This module holds :class:`BM25Retriever`: ``bm25s`` with PyStemmer at pyserini's defaults (k1 0.9, b 0.4,
Lucene's 33 English stop words, Porter stemming). ``bm25s`` and ``Stemmer`` load when an index is built or
loaded, not when this module is imported.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from skill_gym.envs.searchqa.corpus import check_corpus, write_corpus
from skill_gym.envs.searchqa.index import CORPUS_FILE, hits, load_documents, read_meta, write_meta
from skill_gym.envs.searchqa.protocol import DEFAULT_TOPK, Hit, RetrieverError, check_queries

__all__ = ["BM25Retriever"]

_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's and bm25s's default token pattern


class BM25Retriever:
    """Lucene BM25 over the passages' ``contents`` (``bm25s``), as pyserini indexes wiki-18 for Search-R1.

    Lucene's 33 English stop words are dropped and words Porter-stemmed (pyserini's defaults); tokens are
    runs of two or more word characters (``bm25s``'s pattern: unlike Lucene, one-character tokens are dropped).

    Only passages sharing a term with the query are returned (as Lucene, hence pyserini, does), so a query
    of stop words alone gets no hits.

    >>> corpus = [{"id": "1", "contents": '"Ada"\\nAda wrote programs.'}, {"id": "2", "contents": '"Bo"\\nBo sails.'}]
    >>> bm25 = BM25Retriever.build(corpus)
    >>> [hit["document"]["id"] for hit in bm25.search(["who sailed?"], topk=2)[0]]
    ['2']
    """

    kind = "bm25"

    def __init__(self, model: Any, documents: Sequence[dict[str, Any]], k1: float, b: float) -> None:
        import Stemmer
        from bm25s.stopwords import STOPWORDS_EN

        self.model = model
        self.documents = list(documents)
        self.k1 = k1
        self.b = b
        self._stemmer = Stemmer.Stemmer("porter")
        self._stopwords = frozenset(STOPWORDS_EN)
        self._vocab: dict[str, int] = getattr(model, "vocab_dict", None) or {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.documents)

    def tokenize(self, text: str) -> list[str]:
        """Lower-cased word tokens of ``text`` without stop words, stemmed (the same for passages and queries)."""
        words = [w for w in _TOKEN.findall(text.lower()) if w not in self._stopwords]
        return self._stemmer.stemWords(words)

    @classmethod
    def build(cls, corpus: Iterable[dict[str, Any]], k1: float = 0.9, b: float = 0.4) -> BM25Retriever:
        """Index ``corpus`` (wiki-18 records); ``k1``/``b`` default to pyserini's Lucene values."""
        import bm25s

        documents = check_corpus(corpus)
        model = bm25s.BM25(k1=k1, b=b, method="lucene")
        retriever = cls(model, documents, k1, b)
        tokens = [retriever.tokenize(d["contents"]) or [""] for d in documents]
        model.index(tokens, show_progress=False)
        retriever._vocab = model.vocab_dict
        return retriever

    def save(self, folder: str | Path) -> Path:
        """Write the index, its passages and ``meta.json`` (last) into ``folder``; returns the folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save(str(folder), show_progress=False)
        write_corpus(self.documents, folder / CORPUS_FILE)
        write_meta(folder, {"kind": self.kind, "k1": self.k1, "b": self.b, "passages": len(self.documents)})
        return folder

    @classmethod
    def load(cls, folder: str | Path, corpus: Sequence[dict[str, Any]] | None = None) -> BM25Retriever:
        """The index saved in ``folder``; ``corpus`` (the same passages) saves re-reading them from disk."""
        import bm25s

        folder = Path(folder)
        meta = read_meta(folder, cls.kind)
        try:
            model = bm25s.BM25.load(str(folder), mmap=False, load_vocab=True, show_progress=False, allow_pickle=False)
        except Exception as error:  # bm25s raises whatever NumPy or json raise on a damaged file
            raise RetrieverError(f"the BM25 index in {folder} is damaged ({type(error).__name__}: {error})") from None
        if int(model.scores.get("num_docs", -1)) != meta.get("passages"):
            raise RetrieverError(f"the BM25 index in {folder} disagrees with its meta.json")
        documents = load_documents(folder, corpus, int(meta["passages"]))
        return cls(model, documents, float(meta["k1"]), float(meta["b"]))

    def search(self, queries: Sequence[str], topk: int = DEFAULT_TOPK) -> list[list[Hit]]:
        """The ``topk`` best-scoring passages for each query (those sharing at least one term with it)."""
        queries = check_queries(queries, topk)
        results = []
        with self._lock:
            for query in queries:
                ids = [self._vocab[t] for t in self.tokenize(query) if t in self._vocab]
                if not ids:
                    results.append([])
                    continue
                scores = self.model.get_scores_from_ids(ids)
                results.append(_top(self.documents, scores, topk, keep_zero=False))
        return results

    def close(self) -> None:
        """Nothing to release (the index is plain memory)."""


def _top(documents: Sequence[dict[str, Any]], scores: np.ndarray, topk: int, keep_zero: bool = True) -> list[Hit]:
    """The ``topk`` rows of ``scores``, best first, ties broken by row (so results are deterministic)."""
    k = min(topk, len(scores))
    rows = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    rows = rows[np.lexsort((rows, -scores[rows]))]
    if not keep_zero:
        rows = rows[scores[rows] > 0]
    return hits(documents, rows, scores[rows])
