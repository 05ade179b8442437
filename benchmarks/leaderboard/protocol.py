"""The plug-in agent protocol: what a third-party agent implements to enter the leaderboard.

This module holds :class:`Agent` (the protocol), :func:`admissible_actions` and the adapters that need no
learner code: :class:`FunctionAgent` (a plain callable), :class:`RandomAgent` (a random admissible action)
and :class:`InfoActionAgent` (an expert or oracle whose action the env puts in ``info``).

Where and why here: the protocol belongs to the leaderboard (``benchmarks``), and this module imports only
the standard library — not ``agents`` (the learners, torch, transformers) and not an env engine — so a third
party imports it in well under a millisecond, in any process, with none of the training stack installed.
Importing it is optional: the protocol is duck-typed, and ``skill-gym leaderboard run --agent
python:my_module:MyAgent`` loads any class or function that has the shape below.

An agent plays one episode at a time. The runner makes one instance per parallel env (a class is called with
no arguments; an object is copied; a function is wrapped in :class:`FunctionAgent`), calls ``reset`` when an episode begins,
``act`` once per step, and ``observe`` after each step. ``act`` must return a string within the per-step
timeout; an agent that raises, returns something else or hangs ends that episode as *failed* (recorded, and
the run goes on).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["Agent", "FunctionAgent", "InfoActionAgent", "RandomAgent", "admissible_actions"]


@runtime_checkable
class Agent(Protocol):
    """One episode at a time: an env observation (a dict of strings) and its info in, one action string out.

    Optional methods, called when present:

    * ``reset(observation, info) -> None`` — a new episode begins (before its first ``act``);
    * ``observe(action, observation, reward, terminated, truncated, info) -> None`` — what a step did.

    ``observation`` holds at least ``observation``, ``task`` and ``admissible_actions`` (newline-joined);
    skill envs add ``phase`` and ``skills``. ``info`` holds ``task_id``, ``task_type``, ``won``, ``score``.
    """

    def act(self, observation: Mapping[str, str], info: Mapping[str, Any]) -> str:
        """The next action, as the env expects it (an admissible command for ALFWorld)."""
        ...


def admissible_actions(observation: Mapping[str, str]) -> list[str]:
    """The admissible actions of an observation, as a list.

    >>> admissible_actions({"admissible_actions": "go to desk 1\\nlook\\n"})
    ['go to desk 1', 'look']
    """
    return [a for a in str(observation.get("admissible_actions", "")).split("\n") if a.strip()]


class FunctionAgent:
    """An agent from a plain function ``f(observation, info) -> str`` (stateless).

    >>> agent = FunctionAgent(lambda observation, info: admissible_actions(observation)[0])
    >>> agent.act({"admissible_actions": "look\\ninventory"}, {})
    'look'
    """

    def __init__(self, fn: Callable[[Mapping[str, str], Mapping[str, Any]], str]) -> None:
        if not callable(fn):
            raise TypeError(f"FunctionAgent needs a callable, got {type(fn).__name__}")
        self.fn = fn

    def act(self, observation: Mapping[str, str], info: Mapping[str, Any]) -> str:
        return self.fn(observation, info)


class RandomAgent:
    """A uniformly random admissible action (``fallback`` when the env lists none), from its own seeded RNG.

    >>> agent = RandomAgent(seed=0)
    >>> agent.act({"admissible_actions": "a\\nb\\nc"}, {}) in {"a", "b", "c"}
    True
    """

    def __init__(self, seed: int | None = None, fallback: str = "look") -> None:
        self.rng = random.Random(seed)
        self.fallback = fallback

    def act(self, observation: Mapping[str, str], info: Mapping[str, Any]) -> str:
        choices = admissible_actions(observation)
        return self.rng.choice(choices) if choices else self.fallback


class InfoActionAgent:
    """Plays the action the env itself offers in ``info[key]`` (ALFWorld's hand-coded expert: ``expert_action``).

    >>> InfoActionAgent("expert_action").act({}, {"expert_action": "go to desk 1"})
    'go to desk 1'
    """

    def __init__(self, key: str, fallback: str = "look") -> None:
        self.key = key
        self.fallback = fallback

    def act(self, observation: Mapping[str, str], info: Mapping[str, Any]) -> str:
        value = info.get(self.key)
        return value if isinstance(value, str) and value else self.fallback
