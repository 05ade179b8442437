"""GRPO and GiGPO advantages: outcome returns normalized within each group of rollouts of one task.

This module holds

* :func:`episode_return` — outcome reward minus the invalid-turn penalty of a whole episode;
* :func:`turn_returns` — the return each turn is credited with (the penalty on every turn of the
  episode, or only on the turn that was invalid, as verl-agent's ``apply_invalid_action_penalty``);
* :func:`group_normalize` — ``(x − mean_g) / (std_g + eps)`` within groups, with the statistics of
  this project (population std, a lone sample gets 0) or of verl (unbiased std, a lone sample keeps
  its value: mean 0, std 1);
* :func:`grpo_turn_advantages` — one advantage per turn, the group statistics taken over episodes
  (one sample per rollout, the GRPO papers' text) or over turns (verl-agent's
  ``compute_grpo_outcome_advantage`` with ``compute_mean_std_cross_steps=True``: every turn is a
  sample of its task's group);
* :func:`gigpo_step_advantages` and :func:`gigpo_turn_advantages` — GiGPO (Feng et al., 2025,
  arXiv 2505.10978; verl-agent ``gigpo/core_gigpo.py``): turns that acted on the same observation
  in any episode of the task's group form a step group; each turn's discounted return is normalized
  within its step group and added, weighted by ω, to the episode-level advantage;
* :func:`group_advantages` — one advantage per episode (the episode-level GRPO value).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import Literal

import numpy as np

from agents.rollout import Episode, Turn

__all__ = [
    "GroupStats",
    "InvalidKind",
    "InvalidScope",
    "anchor_key",
    "discounted_returns",
    "episode_return",
    "gigpo_step_advantages",
    "gigpo_turn_advantages",
    "group_advantages",
    "group_normalize",
    "grpo_turn_advantages",
    "is_invalid",
    "step_group_sizes",
    "turn_returns",
]

GroupStats = Literal["episode", "turn"]
InvalidScope = Literal["episode", "turn"]
InvalidKind = Literal["format", "format_or_action"]


def is_invalid(turn: Turn, kind: InvalidKind = "format_or_action") -> bool:
    """Whether an ``act`` turn is penalized: a bad answer format, or (``format_or_action``) also an action
    the env refused. verl-agent counts the format only (its projection's ``is_action_valid``)."""
    if turn.phase != "act":
        return False
    return not turn.format_valid or (kind == "format_or_action" and not turn.action_valid)


def episode_return(
    episode: Episode,
    reward_scale: float = 10.0,
    invalid_penalty: float = 0.1,
    invalid_kind: InvalidKind = "format_or_action",
) -> float:
    """``reward_scale · won − invalid_penalty · (#invalid act turns)``."""
    invalid = sum(is_invalid(t, invalid_kind) for t in episode.turns)
    return reward_scale * float(episode.won) - invalid_penalty * invalid


def turn_returns(
    episode: Episode,
    reward_scale: float = 10.0,
    invalid_penalty: float = 0.1,
    scope: InvalidScope = "episode",
    invalid_kind: InvalidKind = "format_or_action",
) -> list[float]:
    """The return credited to each turn: ``scope="episode"`` gives every turn :func:`episode_return`;
    ``scope="turn"`` gives ``reward_scale · won − invalid_penalty · [this turn is invalid]`` (verl-agent).

    >>> from agents.rollout import Turn
    >>> bad = Turn("act", [], [], [], "", "", format_valid=False, action_valid=True, reward=0.0)
    >>> good = Turn("act", [], [], [], "", "", format_valid=True, action_valid=True, reward=0.0)
    >>> e = Episode("t", "x", 0, turns=[bad, good], won=True)
    >>> turn_returns(e, scope="episode"), turn_returns(e, scope="turn")
    ([9.9, 9.9], [9.9, 10.0])
    """
    if scope == "episode":
        return [episode_return(episode, reward_scale, invalid_penalty, invalid_kind)] * len(episode.turns)
    outcome = reward_scale * float(episode.won)
    return [outcome - invalid_penalty * is_invalid(t, invalid_kind) for t in episode.turns]


def _moments(values: np.ndarray, unbiased: bool, lone: Literal["zero", "keep"]) -> tuple[float, float]:
    """Mean and std of one group; a one-member group gets (value, 1) for ``zero`` and (0, 1) for ``keep``."""
    if len(values) == 1:
        return (0.0 if lone == "keep" else float(values[0])), 1.0
    return float(values.mean()), float(values.std(ddof=1 if unbiased else 0))


def _members(groups: Sequence[Hashable]) -> dict[Hashable, list[int]]:
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    return members


def group_normalize(
    values: Sequence[float],
    groups: Sequence[Hashable],
    use_std: bool = True,
    eps: float = 1e-6,
    unbiased: bool = False,
    lone: Literal["zero", "keep"] = "zero",
) -> np.ndarray:
    """Normalize ``values`` within each group: subtract the group mean, divide by ``std + eps`` (optional).

    ``unbiased`` uses the n−1 std (torch's default, verl); ``lone="keep"`` gives a one-member group
    mean 0 and std 1 as verl's GRPO does (the value passes through), ``"zero"`` centres it to 0.

    >>> group_normalize([1.0, 0.0, 5.0, 5.0], [0, 0, 1, 1]).round(3).tolist()
    [1.0, -1.0, 0.0, 0.0]
    >>> group_normalize([1.0, 0.0, 3.0], [0, 0, 1], unbiased=True, lone="keep").round(3).tolist()
    [0.707, -0.707, 3.0]
    """
    values = np.asarray(values, dtype=np.float64)
    out = np.zeros_like(values)
    for idx in _members(groups).values():
        mean, std = _moments(values[idx], unbiased, lone)
        centered = values[idx] - mean
        out[idx] = centered / (std + eps) if use_std else centered
    return out


def group_advantages(
    episodes: Sequence[Episode],
    reward_scale: float = 10.0,
    invalid_penalty: float = 0.1,
    use_std: bool = True,
    invalid_kind: InvalidKind = "format_or_action",
) -> np.ndarray:
    """One advantage per episode (shared by all its turns): episode returns normalized per group."""
    returns = [episode_return(e, reward_scale, invalid_penalty, invalid_kind) for e in episodes]
    return group_normalize(returns, [e.group for e in episodes], use_std=use_std)


def grpo_turn_advantages(
    episodes: Sequence[Episode],
    reward_scale: float = 10.0,
    invalid_penalty: float = 0.1,
    use_std: bool = True,
    group_stats: GroupStats = "episode",
    invalid_scope: InvalidScope = "episode",
    invalid_kind: InvalidKind = "format_or_action",
    eps: float = 1e-6,
) -> list[list[float]]:
    """One GRPO advantage per turn: ``(r_turn − mean_g) / (std_g + eps)`` with :func:`turn_returns`.

    ``group_stats="episode"``: each rollout is one sample of its group (the mean of its turns' returns;
    population std; a lone rollout gets 0). ``group_stats="turn"``: every turn is a sample (verl-agent:
    unbiased std over all turns of the group's rollouts; a lone sample keeps its value).
    """
    returns = [turn_returns(e, reward_scale, invalid_penalty, invalid_scope, invalid_kind) for e in episodes]
    if group_stats == "turn":
        flat = [r for per in returns for r in per]
        groups = [e.group for e, per in zip(episodes, returns, strict=True) for _ in per]
        normalized = iter(group_normalize(flat, groups, use_std, eps, unbiased=True, lone="keep").tolist())
        return [[next(normalized) for _ in per] for per in returns]
    samples: dict[Hashable, list[float]] = defaultdict(list)  # one sample per rollout that has turns
    for episode, per in zip(episodes, returns, strict=True):
        if per:
            samples[episode.group].append(float(np.mean(per)))
    moments = {g: _moments(np.array(v), False, "zero") for g, v in samples.items()}
    out = []
    for episode, per in zip(episodes, returns, strict=True):
        mean, std = moments.get(episode.group, (0.0, 1.0))
        out.append([(r - mean) / (std + eps) if use_std else r - mean for r in per])
    return out


def discounted_returns(rewards: Sequence[float], gamma: float) -> list[float]:
    """``G_t = r_t + γ·G_{t+1}`` from the last step back (GiGPO Eq. 5).

    >>> discounted_returns([0.0, 0.0, 10.0], 0.5)
    [2.5, 5.0, 10.0]
    """
    out = [0.0] * len(rewards)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = float(rewards[t]) + gamma * running
        out[t] = running
    return out


def anchor_key(episode: Episode, turn: Turn) -> tuple[Hashable, str]:
    """GiGPO's step group of an ``act`` turn: its task's group and the observation text it answered."""
    return episode.group, turn.observation


def step_group_sizes(episodes: Sequence[Episode]) -> list[int]:
    """The size of every GiGPO step group (how many ``act`` turns share an anchor state).

    >>> from agents.rollout import Turn
    >>> t = lambda o: Turn("act", [], [], [], "", "", True, True, 0.0, observation=o)
    >>> sorted(step_group_sizes([Episode("t", "x", 0, [t("a"), t("b")]), Episode("t", "x", 0, [t("a")])]))
    [1, 2]
    """
    keys = [anchor_key(e, t) for e in episodes for t in e.turns if t.phase == "act"]
    return [len(idx) for idx in _members(keys).values()]


def gigpo_step_advantages(
    episodes: Sequence[Episode],
    reward_scale: float = 10.0,
    gamma: float = 0.95,
    invalid_penalty: float = 0.1,
    use_std: bool = True,
    invalid_kind: InvalidKind = "format_or_action",
    eps: float = 1e-6,
) -> list[list[float]]:
    """GiGPO's step-level advantage of every turn (0 for turns outside the ``act`` phase).

    The step reward of an ``act`` turn is ``reward_scale · won`` on the episode's last ``act`` turn and 0
    before it (verl-agent's ALFWorld and WebShop envs: 10 on the winning step); its discounted return,
    minus ``invalid_penalty`` when the turn itself was invalid, is normalized within its step group:
    the ``act`` turns of the task's group (all its rollouts) whose anchor observation (the env
    observation text the turn answered) is identical. Unbiased std; a lone turn gets 0.
    """
    values: list[float] = []
    keys: list[tuple[Hashable, str]] = []
    where: list[tuple[int, int]] = []
    for e, episode in enumerate(episodes):
        act = [t for t, turn in enumerate(episode.turns) if turn.phase == "act"]
        rewards = [0.0] * len(act)
        if act:
            rewards[-1] = reward_scale * float(episode.won)
        for t, ret in zip(act, discounted_returns(rewards, gamma), strict=True):
            turn = episode.turns[t]
            values.append(ret - invalid_penalty * is_invalid(turn, invalid_kind))
            keys.append(anchor_key(episode, turn))
            where.append((e, t))
    normalized = group_normalize(values, keys, use_std, eps, unbiased=True, lone="zero")
    out = [[0.0] * len(e.turns) for e in episodes]
    for (e, t), value in zip(where, normalized.tolist(), strict=True):
        out[e][t] = value
    return out


def gigpo_turn_advantages(
    episodes: Sequence[Episode],
    reward_scale: float = 10.0,
    invalid_penalty: float = 0.1,
    use_std: bool = True,
    group_stats: GroupStats = "turn",
    invalid_scope: InvalidScope = "turn",
    invalid_kind: InvalidKind = "format_or_action",
    step_weight: float = 1.0,
    gamma: float = 0.95,
) -> list[list[float]]:
    """GiGPO (Eq. 8): ``A = A_episode + ω · A_step``; ``use_std`` is verl-agent's ``mode``
    (``mean_std_norm`` when true, ``mean_norm`` when false) for both levels."""
    episode_level = grpo_turn_advantages(
        episodes, reward_scale, invalid_penalty, use_std, group_stats, invalid_scope, invalid_kind
    )
    step_level = gigpo_step_advantages(episodes, reward_scale, gamma, invalid_penalty, use_std, invalid_kind)
    return [
        [a + step_weight * s for a, s in zip(per_a, per_s, strict=True)]
        for per_a, per_s in zip(episode_level, step_level, strict=True)
    ]
