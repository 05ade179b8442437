"""The agent protocol: one env's observation and info in, one action string out.

This module holds :class:`Agent` (the protocol every scripted expert, random baseline and third-party agent
implements, for one env at a time), the small agents that need nothing else — :class:`FunctionAgent` (a plain
callable), :class:`RandomAgent` (a random admissible action), :class:`InfoActionAgent` (the action an env offers
in ``info``, e.g. ALFWorld's expert) and :class:`PerEpisode` (a fresh inner agent per episode, seeded from the
run's seed and the task) — and :class:`BatchAgent`, the one adapter that plays an :class:`Agent` in each env of
a batch (``act(observations, infos) -> actions``), which is what the rollout loop drives.

It lives in ``skill_gym`` so an env's scripted expert implements it without importing the learners; the
leaderboard's plug-in protocol (``benchmarks.leaderboard.protocol``) is this one. The protocol is duck-typed:
any object with an ``act(observation, info) -> str`` method is an agent.
"""

from __future__ import annotations

import copy
import inspect
import random
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "Agent",
    "BatchAgent",
    "FunctionAgent",
    "InfoActionAgent",
    "PerEpisode",
    "RandomAgent",
    "admissible_actions",
    "agent_factory",
]


@runtime_checkable
class Agent(Protocol):
    """One episode of one env at a time: an observation (a dict of strings) and its info in, one action out.

    Optional methods, called when present:

    * ``reset(observation, info) -> None`` — a new episode begins (before its first ``act``);
    * ``observe(action, observation, reward, terminated, truncated, info) -> None`` — what a step did;
    * ``close() -> None`` — the run is over.

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


def agent_factory(obj: Any) -> Callable[[], Agent]:
    """One fresh agent per call from a class (called with no arguments), an object with ``act`` (each call gives
    a copy; the object given stays as it is) or a plain function ``f(observation, info)``.

    >>> make = agent_factory(lambda observation, info: "look")
    >>> make().act({}, {})
    'look'
    """
    if inspect.isclass(obj):
        return obj
    if callable(getattr(obj, "act", None)):
        return lambda: copy.deepcopy(obj)  # one shared object would see every env's episodes at once
    if callable(obj):
        return lambda: FunctionAgent(obj)
    raise ValueError(f"an agent must be a class, an object with act() or a function, got {type(obj).__name__}")


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


class PerEpisode:
    """An inner agent made afresh for each episode by ``make(seed)``, so an episode replays exactly on resume.

    The inner agent's seed is drawn from (``seed``, the task id); ``seed=None`` gives ``make(None)`` (for agents
    without randomness).

    >>> agent = PerEpisode(lambda s: RandomAgent(s), seed=3)
    >>> agent.reset({}, {"task_id": "t/1"})
    >>> first = [agent.act({"admissible_actions": "a\\nb\\nc"}, {}) for _ in range(5)]
    >>> agent.reset({}, {"task_id": "t/1"})
    >>> first == [agent.act({"admissible_actions": "a\\nb\\nc"}, {}) for _ in range(5)]
    True
    """

    def __init__(self, make: Callable[[int | None], Agent], seed: int | None = None) -> None:
        self.make, self.seed = make, seed
        self.inner = make(seed)

    def reset(self, observation: Mapping[str, str], info: Mapping[str, Any]) -> None:
        key = f"{self.seed}/{info.get('task_id', '')}"
        self.inner = self.make(None if self.seed is None else zlib.crc32(key.encode()))
        _call_reset(self.inner, observation, info)

    def act(self, observation: Mapping[str, str], info: Mapping[str, Any]) -> str:
        return self.inner.act(observation, info)


def _call_reset(agent: Any, observation: Mapping[str, str], info: Mapping[str, Any]) -> None:
    reset = getattr(agent, "reset", None)
    if callable(reset):
        reset(observation, info)


class BatchAgent:
    """An :class:`Agent` in each env of a batch: ``act(observations, infos) -> actions``, one action per env.

    ``make_agent(slot)`` makes slot ``slot``'s agent on first use. :meth:`begin` starts an episode in a slot
    (the rollout loop calls it after each reset); a caller that steps a vector env itself, with its automatic
    resets, may skip it: :meth:`act` begins an episode in a slot whose env reports step 0 or another task.
    """

    def __init__(self, make_agent: Callable[[int], Agent]) -> None:
        self.make_agent = make_agent
        self.agents: dict[int, Agent] = {}
        self._tasks: dict[int, str] = {}
        self._acted: dict[int, int] = {}

    def agent(self, slot: int) -> Agent:
        """Slot ``slot``'s agent (made now if it has none)."""
        if slot not in self.agents:
            self.agents[slot] = self.make_agent(slot)
        return self.agents[slot]

    def begin(self, slot: int, observation: Mapping[str, str], info: Mapping[str, Any]) -> None:
        """An episode starts in ``slot``: its agent is reset with the first observation."""
        self._tasks[slot], self._acted[slot] = str(info.get("task_id", "")), 0
        _call_reset(self.agent(slot), observation, info)

    def act(self, observations: Sequence[Mapping[str, str]], infos: Sequence[Mapping[str, Any]],
            slots: Sequence[int] | None = None) -> list[str]:  # fmt: skip
        """One action per observation, in order; ``slots`` name the envs (default: their positions)."""
        slots = range(len(observations)) if slots is None else slots
        actions = []
        for slot, observation, info in zip(slots, observations, infos, strict=True):
            if self._starts_episode(slot, info):
                self.begin(slot, observation, info)
            self._acted[slot] += 1
            actions.append(self.agent(slot).act(observation, info))
        return actions

    def _starts_episode(self, slot: int, info: Mapping[str, Any]) -> bool:
        """Whether ``slot``'s env is in an episode :meth:`begin` was not told of (a vector env's own reset)."""
        if slot not in self._tasks or self._tasks[slot] != str(info.get("task_id", "")):
            return True
        return info.get("step") == 0 and self._acted[slot] > 0

    def observe(self, slot: int, action: str, observation: Mapping[str, str], reward: float, terminated: bool,
                truncated: bool, info: Mapping[str, Any]) -> None:  # fmt: skip
        """What a step of ``slot`` did, told to its agent when it has ``observe``."""
        observe = getattr(self.agents.get(slot), "observe", None)
        if callable(observe):
            observe(action, observation, reward, terminated, truncated, info)

    def drop(self, slot: int) -> None:
        """Forget ``slot``'s agent (a hung one is never asked again; the next episode makes a fresh one)."""
        self.agents.pop(slot, None)
        self._tasks.pop(slot, None)
        self._acted.pop(slot, None)

    def close(self) -> None:
        """Close every agent that has ``close``."""
        for agent in self.agents.values():
            close = getattr(agent, "close", None)
            if callable(close):
                close()
        self.agents.clear()
        self._tasks.clear()
        self._acted.clear()
