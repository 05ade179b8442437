"""GRPO advantages: outcome returns normalized within each group of rollouts of one task.

This module holds :func:`episode_return` (outcome reward minus the invalid-format penalty) and
:func:`group_advantages` (``(R − mean_g) / (std_g + eps)``, std switchable), the credit every turn
of an episode receives in plain GRPO.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from agents.rollout import Episode

__all__ = ["episode_return", "group_advantages", "group_normalize"]


def episode_return(episode: Episode, reward_scale: float = 10.0, invalid_penalty: float = 0.1) -> float:
    """``reward_scale · won − invalid_penalty · (#turns with an invalid format or action)`` (verl-agent style)."""
    invalid = sum(not (t.format_valid and t.action_valid) for t in episode.turns if t.phase == "act")
    return reward_scale * float(episode.won) - invalid_penalty * invalid


def group_normalize(
    values: Sequence[float], groups: Sequence[int], use_std: bool = True, eps: float = 1e-6
) -> np.ndarray:
    """Normalize ``values`` within each group: subtract the group mean, divide by its std (optional).

    >>> group_normalize([1.0, 0.0, 5.0, 5.0], [0, 0, 1, 1]).round(3).tolist()
    [1.0, -1.0, 0.0, 0.0]
    """
    values = np.asarray(values, dtype=np.float64)
    out = np.zeros_like(values)
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    for idx in members.values():
        group = values[idx]
        centered = group - group.mean()
        out[idx] = centered / (group.std() + eps) if use_std else centered
    return out


def group_advantages(
    episodes: Sequence[Episode], reward_scale: float = 10.0, invalid_penalty: float = 0.1, use_std: bool = True
) -> np.ndarray:
    """One advantage per episode (shared by all its turns)."""
    returns = [episode_return(e, reward_scale, invalid_penalty) for e in episodes]
    return group_normalize(returns, [e.group for e in episodes], use_std=use_std)
