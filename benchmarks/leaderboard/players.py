"""Third-party agents in the leaderboard: each call under a per-step deadline, so one agent fails only itself.

This module holds :class:`TimedAgentPlayer`, the :class:`~agents.players.AgentPlayer` of the leaderboard: one
:class:`~skill_gym.agent.Agent` per env slot (through a :class:`~skill_gym.agent.BatchAgent`), each call in its own
thread under the per-step timeout. An agent that raises, returns a non-string or hangs fails its own episode
only; a hung agent is abandoned and a fresh one made for the next episode. Chat models play through
:class:`~agents.players.ChatPlayer` with ``isolate_failures=True``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agents.backends.base import Generation
from agents.players import AgentPlayer, Decision
from skill_gym.agent import Agent, BatchAgent

__all__ = ["MAX_RECORDED_CHARS", "TimedAgentPlayer"]

MAX_RECORDED_CHARS = 20_000
"""Longest response or action kept in a transcript (a malformed agent may return megabytes)."""


def _run_with_deadline(calls: dict[int, Callable[[], Any]], timeout: float | None) -> dict[int, tuple[str, Any]]:
    """Run each call in its own daemon thread; ``{slot: ("ok", value) | ("raised" | "hung", message)}``.

    Daemon threads, so an agent that never returns cannot keep the process alive after the run.
    """
    results: dict[int, tuple[str, Any]] = {}

    def target(slot: int, call: Callable[[], Any]) -> None:
        try:
            results[slot] = ("ok", call())
        except BaseException as problem:  # a third-party agent may raise anything; it fails its episode only
            results[slot] = ("raised", f"raised {type(problem).__name__}: {str(problem)[:300]}")

    threads = {slot: threading.Thread(target=target, args=(slot, call), daemon=True) for slot, call in calls.items()}
    for thread in threads.values():
        thread.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    for thread in threads.values():
        thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
    return {slot: results.get(slot, ("hung", f"no answer within the per-step timeout of {timeout:g} s"))
            for slot in calls}  # fmt: skip


class TimedAgentPlayer(AgentPlayer):
    """Agents made by ``factory``, one per env slot, every call under ``step_timeout`` seconds."""

    def __init__(self, factory: Callable[[], Agent], step_timeout: float | None = 30.0) -> None:
        super().__init__(BatchAgent(lambda slot: factory()))
        self.factory = factory
        self.step_timeout = step_timeout

    def begin(self, slot: int, observation: Mapping[str, str], info: Mapping[str, Any]) -> str:
        if slot not in self.agents.agents:
            [(status, made)] = _run_with_deadline({0: self.factory}, self.step_timeout).values()
            if status != "ok" or not callable(getattr(made, "act", None)):
                return f"could not make the agent: {made if status != 'ok' else 'it has no act() method'}"
            self.agents.agents[slot] = made
        return self._guard(slot, lambda: self.agents.begin(slot, observation, info))

    def decide(self, slots: Sequence[int], observations: Sequence[Mapping[str, str]],
               infos: Sequence[Mapping[str, Any]], turn: int) -> list[Decision]:  # fmt: skip
        calls = {s: (lambda s=s, o=o, i=i: self.agents.act([o], [i], [s])[0])
                 for s, o, i in zip(slots, observations, infos, strict=True)}  # fmt: skip
        results = _run_with_deadline(calls, self.step_timeout)
        decisions = []
        for slot in slots:
            status, value = results[slot]
            if status == "ok" and isinstance(value, str):
                decisions.append(Decision(value, Generation(value[:MAX_RECORDED_CHARS], [], [], [])))
                continue
            error = value if status != "ok" else f"act() returned {type(value).__name__}, not a string"
            if status == "hung":
                self.agents.drop(slot)  # still running somewhere: never ask it again
            decisions.append(Decision("", Generation("", [], [], []), error=str(error)))
        return decisions

    def feedback(self, slot: int, action: str, observation: Mapping[str, str], reward: float, terminated: bool,
                 truncated: bool, info: Mapping[str, Any]) -> str:  # fmt: skip
        if not callable(getattr(self.agents.agents.get(slot), "observe", None)):
            return ""
        return self._guard(slot, lambda: self.agents.observe(slot, action, observation, reward, terminated,
                                                             truncated, info))  # fmt: skip

    def _guard(self, slot: int, call: Callable[[], Any]) -> str:
        [(status, value)] = _run_with_deadline({slot: call}, self.step_timeout).values()
        if status == "ok":
            return ""
        if status == "hung":
            self.agents.drop(slot)
        return str(value)

    def close(self) -> None:
        for slot, agent in list(self.agents.agents.items()):
            close = getattr(agent, "close", None)
            if callable(close):
                _run_with_deadline({0: close}, self.step_timeout)
            self.agents.drop(slot)
