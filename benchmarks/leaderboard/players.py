"""How the runner asks an agent for actions, one batch of envs at a time, and what it records of each answer.

This module holds :class:`Decision` (one answer: action, response, prompt, tokens, or the reason the agent
failed), the :class:`Player` protocol the runner drives, and its two kinds:

* :class:`AgentPlayer` — third-party :class:`~benchmarks.leaderboard.protocol.Agent` objects, one per env,
  each call in its own thread under a per-step timeout: an agent that raises, returns a non-string or hangs
  fails its own episode only (a hung agent is abandoned and a fresh one made for the next episode);
* :class:`BackendPlayer` — a chat :class:`~agents.backends.base.Backend` (our policies, an OpenAI-compatible
  endpoint): prompts from the env's own instructions (:class:`~agents.prompts.PromptBuilder`), answers parsed
  by the env's format, exactly as the shared evaluator does;

and :class:`MeteredOpenAIBackend`, the OpenAI-compatible backend that keeps the server's token counts.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from agents.backends.base import Backend, ChatPrompt, Generation, SamplingConfig
from agents.backends.openai import OpenAIBackend
from agents.prompts import PromptBuilder
from benchmarks.leaderboard.protocol import Agent
from skill_gym.envs.instructions import Instructions

__all__ = ["AgentPlayer", "BackendPlayer", "Decision", "MeteredOpenAIBackend", "Player"]

MAX_RECORDED_CHARS = 20_000
"""Longest response or action kept in a transcript (a malformed agent may return megabytes)."""


@dataclasses.dataclass
class Decision:
    """One answer of an agent to one observation. A non-empty ``error`` ends the episode as failed."""

    action: str
    response: str = ""
    prompt: ChatPrompt | None = None
    prompt_tokens: int = 0
    response_tokens: int = 0
    format_valid: bool = True
    error: str = ""


class Player(Protocol):
    """What the runner drives: episodes begin per env slot, decisions come in batches over active slots."""

    def begin(self, slot: int, observation: Mapping[str, str], info: Mapping[str, Any]) -> str:
        """A new episode starts in ``slot``; returns an error message when the agent failed already, else ''."""
        ...

    def decide(self, slots: Sequence[int], observations: Sequence[Mapping[str, str]],
               infos: Sequence[Mapping[str, Any]]) -> list[Decision]:  # fmt: skip
        """One :class:`Decision` per slot, in order."""
        ...

    def feedback(self, slot: int, action: str, observation: Mapping[str, str], reward: float, terminated: bool,
                 truncated: bool, info: Mapping[str, Any]) -> str:  # fmt: skip
        """What the step of ``slot`` did; returns an error message when the agent failed, else ''."""
        ...

    def close(self) -> None: ...


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


class AgentPlayer:
    """Third-party agents (the :class:`~benchmarks.leaderboard.protocol.Agent` protocol), one per env slot."""

    def __init__(self, factory: Callable[[], Agent], step_timeout: float | None = 30.0) -> None:
        self.factory = factory
        self.step_timeout = step_timeout
        self.agents: dict[int, Any] = {}

    def begin(self, slot: int, observation: Mapping[str, str], info: Mapping[str, Any]) -> str:
        if self.agents.get(slot) is None:
            [(status, made)] = _run_with_deadline({0: self.factory}, self.step_timeout).values()
            if status != "ok" or not callable(getattr(made, "act", None)):
                return f"could not make the agent: {made if status != 'ok' else 'it has no act() method'}"
            self.agents[slot] = made
        reset = getattr(self.agents[slot], "reset", None)
        return self._guard(slot, lambda: reset(observation, info)) if callable(reset) else ""

    def decide(self, slots: Sequence[int], observations: Sequence[Mapping[str, str]],
               infos: Sequence[Mapping[str, Any]]) -> list[Decision]:  # fmt: skip
        calls = {s: (lambda a=self.agents[s], o=o, i=i: a.act(o, i)) for s, o, i in zip(slots, observations, infos,
                                                                                       strict=True)}  # fmt: skip
        results = _run_with_deadline(calls, self.step_timeout)
        decisions = []
        for slot in slots:
            status, value = results[slot]
            if status == "ok" and isinstance(value, str):
                decisions.append(Decision(action=value, response=value[:MAX_RECORDED_CHARS]))
                continue
            error = value if status != "ok" else f"act() returned {type(value).__name__}, not a string"
            if status == "hung":
                self.agents[slot] = None  # still running somewhere: never ask it again
            decisions.append(Decision(action="", response="", error=str(error)))
        return decisions

    def feedback(self, slot: int, action: str, observation: Mapping[str, str], reward: float, terminated: bool,
                 truncated: bool, info: Mapping[str, Any]) -> str:  # fmt: skip
        observe = getattr(self.agents.get(slot), "observe", None)
        if not callable(observe):
            return ""
        return self._guard(slot, lambda: observe(action, observation, reward, terminated, truncated, info))

    def _guard(self, slot: int, call: Callable[[], Any]) -> str:
        [(status, value)] = _run_with_deadline({slot: call}, self.step_timeout).values()
        if status == "ok":
            return ""
        if status == "hung":
            self.agents[slot] = None
        return str(value)

    def close(self) -> None:
        for agent in self.agents.values():
            close = getattr(agent, "close", None)
            if callable(close):
                _run_with_deadline({0: close}, self.step_timeout)
        self.agents.clear()


class BackendPlayer:
    """A chat backend playing through the env's instructions, as :func:`agents.evaluation.evaluate` does."""

    def __init__(self, backend: Backend, instructions: Instructions, sampling: SamplingConfig,
                 history_length: int = 2, close_backend: bool = True) -> None:  # fmt: skip
        self.backend = backend
        self.close_backend = close_backend
        """Whether :meth:`close` closes the backend (not when one loaded model serves several runs)."""
        self.builder = PromptBuilder(instructions, history_length=history_length)
        self.sampling = sampling
        self.histories: dict[int, list[tuple[str, str]]] = {}
        self.steps: dict[int, int] = {}
        self.last: dict[int, Mapping[str, str]] = {}

    def begin(self, slot: int, observation: Mapping[str, str], info: Mapping[str, Any]) -> str:
        self.histories[slot], self.steps[slot] = [], 0
        return ""

    def decide(self, slots: Sequence[int], observations: Sequence[Mapping[str, str]],
               infos: Sequence[Mapping[str, Any]]) -> list[Decision]:  # fmt: skip
        prompts = [self.builder.build(dict(o), self.histories[s], self.steps[s]) for s, o in zip(slots, observations,
                                                                                               strict=True)]  # fmt: skip
        decisions = []
        for slot, observation, prompt, gen in zip(slots, observations, prompts, self._generate(prompts), strict=True):
            if isinstance(gen, str):  # this prompt failed after the backend's retries: its episode fails, not the run
                decisions.append(Decision(action="", prompt=prompt, error=gen))
                continue
            phase = observation.get("phase", "act") or "act"
            action, format_valid = self.builder.parse(gen.text, phase)
            prompt_tokens, response_tokens = _token_counts(gen)
            self.last[slot] = observation
            decisions.append(Decision(action=action, response=gen.text[:MAX_RECORDED_CHARS], prompt=prompt,
                                      prompt_tokens=prompt_tokens, response_tokens=response_tokens,
                                      format_valid=format_valid))  # fmt: skip
        return decisions

    def _generate(self, prompts: list[ChatPrompt]) -> list[Generation | str]:
        """One generation per prompt, or the error that prompt met: when a batch fails, its prompts are asked
        again one at a time, so one bad prompt (too long for the endpoint, say) fails only its own episode."""
        try:
            generations = self.backend.generate(prompts, self.sampling)
            if len(generations) != len(prompts):
                raise ValueError(f"the backend answered {len(generations)} of {len(prompts)} prompts")
            return list(generations)
        except Exception as problem:
            if len(prompts) > 1:
                return [answer for p in prompts for answer in self._generate([p])]
            return [f"{type(problem).__name__}: {str(problem)[:300]}"]

    def feedback(self, slot: int, action: str, observation: Mapping[str, str], reward: float, terminated: bool,
                 truncated: bool, info: Mapping[str, Any]) -> str:  # fmt: skip
        before = self.last.get(slot, {})
        if (before.get("phase", "act") or "act") == "act":
            self.histories[slot].append((before.get("observation", ""), action))
            self.steps[slot] += 1
        return ""

    def close(self) -> None:
        if self.close_backend:
            self.backend.close()


@dataclasses.dataclass
class _MeteredGeneration(Generation):
    """A generation from an HTTP endpoint, with the token counts the server reported in ``usage``."""

    usage_prompt_tokens: int = 0
    usage_completion_tokens: int = 0


def _token_counts(gen: Generation) -> tuple[int, int]:
    if isinstance(gen, _MeteredGeneration):
        return gen.usage_prompt_tokens, gen.usage_completion_tokens
    return len(gen.prompt_ids), len(gen.response_ids)


class MeteredOpenAIBackend(OpenAIBackend):
    """:class:`~agents.backends.openai.OpenAIBackend` that keeps each answer's ``usage`` (no token ids over HTTP)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._usage = threading.local()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        data = super()._post(path, body)
        usage = data.get("usage") if isinstance(data, dict) else None
        self._usage.value = usage if isinstance(usage, dict) else {}
        return data

    def _complete(self, prompt: ChatPrompt, sampling: SamplingConfig) -> Generation:
        self._usage.value = {}
        gen = super()._complete(prompt, sampling)
        usage = self._usage.value

        def count(key: str) -> int:
            value = usage.get(key)
            return value if isinstance(value, int) and value >= 0 else 0

        return _MeteredGeneration(gen.text, gen.prompt_ids, gen.response_ids, gen.logprobs, gen.finish_reason,
                                  count("prompt_tokens"), count("completion_tokens"))  # fmt: skip
