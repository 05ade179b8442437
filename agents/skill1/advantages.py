"""Skill1's credit assignment: one outcome, four kinds of turns.

This module holds :func:`skill1_turn_advantages` (the paper's text, ``credit="paper"``):

* act and query (``select``) turns: the GRPO group advantage of the outcome return (the GRPO core's
  switches apply: ``group_stats``, ``invalid_scope``, ``invalid_kind``, computed over those turns only);
* the rerank turn: REINFORCE on ``R_rerank = NDCG(agent's ranking, order by utilities)``, times λ1
  (optionally minus the group mean);
* the distill turn: ``R_distill = r(τ) − Û`` (Û = max utility of the retrieved skills), normalized
  within the group separately from the outcome advantages, times λ2.

and :func:`skill1_released_turn_advantages` (``credit="released"``), the released code's
(AlphaLab-USTC/Skill1, ``agent_system/multi_turn_rollout/rollout_loop.py``, ``credit_assignment``):
every trained turn's score is the trajectory's summed step rewards, ``reward_scale·won + λ1·q + λ1·NDCG``,
minus the invalid penalty of that turn, and the scores are normalized over all turns of the task's
group (verl-agent statistics). ``q`` is the query turn's contrast reward, the retrieving half's success
rate minus the control half's; with every rollout retrieving (the released scripts' ``full_group_memory``)
the control half is empty and ``q`` is the group's success rate. The distill turn's ``r − Û`` is computed
(and logged) but the turn is not trained: :func:`released_trained_phases` lists the phases that are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from agents.grpo.advantages import (
    GroupStats,
    InvalidKind,
    InvalidScope,
    group_normalize,
    grpo_turn_advantages,
    is_invalid,
)
from agents.rollout import Episode

__all__ = ["released_trained_phases", "skill1_released_turn_advantages", "skill1_turn_advantages"]


def skill1_turn_advantages(
    episodes: Sequence[Episode],
    lambda_rerank: float = 0.3,
    lambda_distill: float = 0.3,
    reward_scale: float = 10.0,
    invalid_penalty: float = 0.1,
    use_std: bool = True,
    rerank_baseline: str = "none",
    phase_invalid_penalty: float = 0.1,
    group_stats: GroupStats = "episode",
    invalid_scope: InvalidScope = "episode",
    invalid_kind: InvalidKind = "format_or_action",
) -> list[list[float]]:
    """Per-turn advantages for each episode (same shape as ``episode.turns``).

    A query, rank or distill turn the env could not parse also gets ``−phase_invalid_penalty``.
    """
    groups = [e.group for e in episodes]
    outcome_turns = [[t for t in e.turns if t.phase in _OUTCOME_PHASES] for e in episodes]
    outcome_episodes = [dataclasses.replace(e, turns=turns) for e, turns in zip(episodes, outcome_turns, strict=True)]
    outcome_advantages = grpo_turn_advantages(
        outcome_episodes, reward_scale, invalid_penalty, use_std, group_stats, invalid_scope, invalid_kind
    )
    outcome = iter(value for per in outcome_advantages for value in per)
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
            elif turn.phase in _OUTCOME_PHASES:  # in turn order
                value = next(outcome)
            else:
                value = 0.0
            if turn.phase in ("select", "rerank", "distill") and not valid:
                value -= phase_invalid_penalty
            per_turn.append(value)
        out.append(per_turn)
    return out


_OUTCOME_PHASES = ("act", "select")
"""Phases credited with the outcome's GRPO advantage in the paper's assignment."""


def released_trained_phases(lambda_rerank: float) -> tuple[str, ...]:
    """Phases whose turns the released code trains: query and rerank only while ``λ1 > 0``; never distill."""
    return ("select", "rerank", "act") if lambda_rerank > 0 else ("act",)


def skill1_released_turn_advantages(
    episodes: Sequence[Episode],
    lambda_rerank: float = 0.3,
    reward_scale: float = 10.0,
    invalid_penalty: float = 0.1,
    invalid_kind: InvalidKind = "format",
    use_std: bool = True,
    eps: float = 1e-6,
) -> list[list[float]]:
    """Per-turn advantages of Skill1's released credit assignment (0 for turns it does not train).

    >>> from agents.rollout import Turn
    >>> def turn(phase):
    ...     return Turn(phase, [], [1], [], "", "", format_valid=True, action_valid=True, reward=0.0)
    >>> won = Episode("t", "x", 0, turns=[turn("select"), turn("act"), turn("distill")], won=True)
    >>> lost = Episode("t", "x", 0, turns=[turn("select"), turn("act"), turn("distill")], won=False)
    >>> [[round(a, 3) for a in per] for per in skill1_released_turn_advantages([won, lost])]
    [[0.866, 0.866, 0.0], [-0.866, -0.866, 0.0]]
    """
    trained = released_trained_phases(lambda_rerank)
    won: dict[int, list[float]] = {}
    for e in episodes:
        won.setdefault(e.group, []).append(float(e.won))
    scores, groups, where = [], [], []
    for i, episode in enumerate(episodes):
        phases = {turn.phase for turn in episode.turns}
        total = reward_scale * float(episode.won)
        if "select" in phases and "select" in trained:
            total += lambda_rerank * float(np.mean(won[episode.group]))
        if "rerank" in phases and "rerank" in trained:
            ranked = episode.skill.get("reranked", False) and episode.skill.get("rank_valid", True)
            total += lambda_rerank * float(episode.skill.get("ndcg", 0.0)) * ranked
        for t, turn in enumerate(episode.turns):
            if turn.phase in trained:
                scores.append(total - invalid_penalty * is_invalid(turn, invalid_kind))
                groups.append(episode.group)
                where.append((i, t))
    normalized = group_normalize(scores, groups, use_std, eps, unbiased=True, lone="keep")
    out = [[0.0] * len(e.turns) for e in episodes]
    for (i, t), value in zip(where, normalized.tolist(), strict=True):
        out[i][t] = value
    return out
