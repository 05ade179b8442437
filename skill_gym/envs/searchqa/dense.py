"""Dense retrieval over wiki-18 passages: sentence-transformers embeddings in an hnswlib graph.

This module holds :class:`DenseRetriever`: a sentence-transformers encoder (all-MiniLM-L6-v2 by default;
e5-style ``query: `` / ``passage: `` prefixes for e5 models) over an hnswlib inner-product graph. ``hnswlib``
and the encoder load when an index is built, loaded or searched, not when this module is imported.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from skill_gym.assets import DEFAULT_ENCODER
from skill_gym.envs.searchqa.corpus import check_corpus, write_corpus
from skill_gym.envs.searchqa.index import CORPUS_FILE, hits, load_documents, read_meta, write_meta
from skill_gym.envs.searchqa.protocol import DEFAULT_TOPK, Hit, RetrieverError, check_queries
from skill_gym.files import file_sha256

__all__ = ["DenseRetriever"]


def _is_e5(model: str) -> bool:
    """Search-R1's rule: a model whose name contains ``e5`` gets ``query: `` / ``passage: `` prefixes."""
    return "e5" in model.lower()


class DenseRetriever:
    """Inner-product search of sentence-transformers embeddings (unit vectors) in an hnswlib graph.

    ``model`` is ``"all-MiniLM-L6-v2"`` (the offline default), any sentence-transformers hub id or a local
    path. Passages are encoded from ``contents``; e5 models (name containing ``e5``, Search-R1's rule) get
    ``passage: `` and ``query: `` prefixes. ``ef_search`` trades speed for recall (64 keeps recall@3 at
    >= 0.95 of exact search on 100k MiniLM passages; see ``benchmarks/perf/retrieval.py``).
    """

    kind = "dense"

    def __init__(
        self,
        index: Any,
        documents: Sequence[dict[str, Any]],
        model: str = DEFAULT_ENCODER,
        ef_search: int = 64,
        encoder: Any = None,
    ) -> None:
        self.index = index
        self.documents = list(documents)
        self.model = model
        self.ef_search = ef_search
        self.prefixes = ("query: ", "passage: ") if _is_e5(model) else ("", "")
        self._encoder = encoder
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.documents)

    @property
    def encoder(self) -> Any:
        """The sentence encoder (one per model per process, loaded on first use)."""
        if self._encoder is None:
            from skill_gym.library.encoder import SentenceEncoder

            try:
                self._encoder = SentenceEncoder.shared(self.model)
            except Exception as error:  # a missing or unreadable model: say which
                raise RetrieverError(f"cannot load the encoder {self.model!r}: {error}") from None
        return self._encoder

    def encode_passages(self, contents: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Unit embeddings of passage ``contents`` (with the ``passage: `` prefix for e5 models)."""
        prefix = self.prefixes[1]
        chunks = [
            self.encoder.encode([prefix + c for c in contents[i : i + batch_size]])
            for i in range(0, len(contents), batch_size)
        ]
        return np.concatenate(chunks) if chunks else np.empty((0, self.encoder.dim), dtype=np.float32)

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Unit embeddings of ``queries`` (with the ``query: `` prefix for e5 models)."""
        return self.encoder.encode([self.prefixes[0] + q for q in queries])

    @classmethod
    def build(
        cls,
        corpus: Iterable[dict[str, Any]],
        model: str = DEFAULT_ENCODER,
        *,
        embeddings: np.ndarray | None = None,
        m: int = 32,
        ef_construction: int = 100,
        ef_search: int = 64,
        batch_size: int = 64,
    ) -> DenseRetriever:
        """Encode ``corpus`` with ``model`` (or take precomputed unit ``embeddings``) and build the graph."""
        import hnswlib

        documents = check_corpus(corpus)
        retriever = cls(None, documents, model, ef_search)
        if embeddings is None:
            embeddings = retriever.encode_passages([d["contents"] for d in documents], batch_size)
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or len(embeddings) != len(documents):
            raise RetrieverError(f"expected {len(documents)} embeddings, got an array of shape {embeddings.shape}")
        index = hnswlib.Index(space="ip", dim=embeddings.shape[1])
        index.init_index(max_elements=len(documents), ef_construction=ef_construction, M=m, random_seed=0)
        index.add_items(embeddings, np.arange(len(documents)), num_threads=1)  # one thread: the same graph every time
        index.set_ef(ef_search)
        index.set_num_threads(1)
        retriever.index = index
        return retriever

    def save(self, folder: str | Path) -> Path:
        """Write the graph, its passages and ``meta.json`` (last, with the graph's SHA-256) into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        graph = folder / "index.hnsw"
        self.index.save_index(str(graph))
        write_corpus(self.documents, folder / CORPUS_FILE)
        meta = {
            "kind": self.kind,
            "model": self.model,
            "dim": self.index.dim,
            "passages": len(self.documents),
            "ef_search": self.ef_search,
            "sha256": file_sha256(graph),
        }
        write_meta(folder, meta)
        return folder

    @classmethod
    def load(cls, folder: str | Path, corpus: Sequence[dict[str, Any]] | None = None) -> DenseRetriever:
        """The index saved in ``folder`` (checked against its SHA-256 first: hnswlib crashes on a damaged file)."""
        import hnswlib

        folder = Path(folder)
        meta = read_meta(folder, cls.kind)
        graph = folder / "index.hnsw"
        if not graph.is_file() or file_sha256(graph) != meta.get("sha256"):
            raise RetrieverError(f"the dense index in {folder} is missing or damaged (checksum mismatch)")
        documents = load_documents(folder, corpus, int(meta["passages"]))
        index = hnswlib.Index(space="ip", dim=int(meta["dim"]))
        index.load_index(str(graph), max_elements=len(documents))
        index.set_ef(int(meta["ef_search"]))
        index.set_num_threads(1)
        return cls(index, documents, str(meta["model"]), int(meta["ef_search"]))

    def search_vectors(self, vectors: np.ndarray, topk: int = DEFAULT_TOPK) -> list[list[Hit]]:
        """The ``topk`` passages of highest inner product with each row of ``vectors`` (already encoded)."""
        k = min(topk, len(self.documents))
        with self._lock:
            self.index.set_ef(max(self.ef_search, k))
            rows, distances = self.index.knn_query(np.asarray(vectors, dtype=np.float32), k=k)
        return [hits(self.documents, r, 1.0 - d) for r, d in zip(rows, distances, strict=True)]

    def search(self, queries: Sequence[str], topk: int = DEFAULT_TOPK) -> list[list[Hit]]:
        """The ``topk`` passages nearest to each query's embedding (score: inner product)."""
        queries = check_queries(queries, topk)
        if not queries:
            return []
        with self._lock:  # the encoder's cache is not thread-safe
            vectors = self.encode_queries(queries)
        return self.search_vectors(vectors, topk)

    def close(self) -> None:
        """Nothing to release (the graph is plain memory; the encoder is shared in-process)."""
