"""Skill1's credit assignment: one outcome, four kinds of turns.

This module holds :func:`skill1_turn_advantages`:

* act and query (``select``) turns: the GRPO group advantage of the outcome return;
* the rerank turn: REINFORCE on ``R_rerank = NDCG(agent's ranking, order by utilities)``, times λ1
  (optionally minus the group mean);
* the distill turn: ``R_distill = r(τ) − Û`` (Û = max utility of the retrieved skills), normalized
  within the group separately from the outcome advantages, times λ2.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agents.grpo.advantages import group_advantages, group_normalize
from agents.rollout import Episode

__all__ = ["skill1_turn_advantages"]


def skill1_turn_advantages(
    episodes: Sequence[Episode],
    lambda_rerank: float = 0.3,
    lambda_distill: float = 0.3,
    reward_scale: float = 10.0,
    invalid_penalty: float = 0.1,
    use_std: bool = True,
    rerank_baseline: str = "none",
    phase_invalid_penalty: float = 0.1,
) -> list[list[float]]:
    """Per-turn advantages for each episode (same shape as ``episode.turns``).

    A query, rank or distill turn the env could not parse also gets ``−phase_invalid_penalty``.
    """
    groups = [e.group for e in episodes]
    outcome = group_advantages(episodes, reward_scale, invalid_penalty, use_std)
    distill_reward = [float(e.skill.get("distill_reward", 0.0)) for e in episodes]
    distill = group_normalize(distill_reward, groups, use_std=use_std)
    ndcg = np.array([float(e.skill.get("ndcg", 0.0)) for e in episodes])
    if rerank_baseline == "group_mean":
        ndcg = group_normalize(ndcg, groups, use_std=False)
    out = []
    for i, episode in enumerate(episodes):
        per_turn = []
        for turn in episode.turns:
            valid = turn.format_valid and turn.action_valid
            if turn.phase == "rerank":
                value = lambda_rerank * float(ndcg[i]) if valid else 0.0
            elif turn.phase == "distill":
                value = lambda_distill * float(distill[i])
            else:  # act and select
                value = float(outcome[i])
            if turn.phase in ("select", "rerank", "distill") and not valid:
                value -= phase_invalid_penalty
            per_turn.append(value)
        out.append(per_turn)
    return out
