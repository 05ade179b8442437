"""One-env scripted agents (the envs' oracles and random baselines) over a batch of envs.

This module holds :class:`BatchAgent`: it keeps one inner agent per batch position, made on first use by a
factory of the position, and resets it when its env starts an episode (``info["step"] == 0``) or moves to
another task. The inner agents have ``reset()`` and ``act(observation, info) -> str``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

__all__ = ["BatchAgent", "OneEnvAgent"]


class OneEnvAgent(Protocol):
    """A scripted agent for one env at a time."""

    def reset(self) -> None: ...

    def act(self, observation: Mapping[str, str], info: Mapping[str, Any]) -> str: ...


class BatchAgent:
    """``act(observations, infos) -> actions`` over a batch of envs, one :class:`OneEnvAgent` per position."""

    def __init__(self, make_agent: Callable[[int], OneEnvAgent]) -> None:
        self.make_agent = make_agent
        self.agents: dict[int, OneEnvAgent] = {}
        self._tasks: dict[int, str] = {}

    def act(self, observations: Sequence[Mapping[str, str]], infos: Sequence[Mapping[str, Any]]) -> list[str]:
        """One action per observation, in order."""
        actions = []
        for position, (observation, info) in enumerate(zip(observations, infos, strict=True)):
            agent = self.agents.get(position)
            if agent is None:
                agent = self.agents[position] = self.make_agent(position)
            task = str(info.get("task_id", ""))
            if info.get("step", 0) == 0 or self._tasks.get(position) != task:
                agent.reset()
                self._tasks[position] = task
            actions.append(agent.act(observation, info))
        return actions
