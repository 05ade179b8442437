"""Ranking quality: NDCG of an agent's ordering of skill candidates.

Skill1 rewards the rerank turn with NDCG of the agent's order, using the candidates' current
utilities as gains (:func:`ndcg`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["ndcg"]


def ndcg(order: Sequence[int], gains: Sequence[float]) -> float:
    """NDCG of ``order`` (indices into ``gains``, best first) against the ideal order.

    Gains are used as they are (linear), discounted by ``log2(rank + 1)``. Returns 0.0 when
    every gain is zero (no ranking is better than another, so none is rewarded).

    >>> ndcg([0, 1, 2], [0.9, 0.5, 0.1])
    1.0
    >>> round(ndcg([2, 1, 0], [0.9, 0.5, 0.1]), 4)
    0.6839
    """
    if sorted(order) != list(range(len(gains))):
        raise ValueError(f"order {list(order)} is not a permutation of {len(gains)} candidates")
    dcg = sum(gains[i] / math.log2(rank + 2) for rank, i in enumerate(order))
    ideal = sum(g / math.log2(rank + 2) for rank, g in enumerate(sorted(gains, reverse=True)))
    return float(dcg / ideal) if ideal > 0 else 0.0
