"""Who answers the envs in a rollout: a chat model through prompts, or agents that write actions directly.

This module holds :class:`Decision` (one answer: the action, the generation behind it, its prompt, or why the
episode failed), the :class:`Player` protocol that the one episode loop (:func:`agents.rollout.play`) drives, and
its two kinds:

* :class:`ChatPlayer` — a :class:`~agents.backends.base.Backend` through the env's instructions: prompts built
  by :class:`~agents.prompts.PromptBuilder` from each env's observation and its own history, answers parsed by
  the env's format; with ``isolate_failures`` a prompt the backend cannot answer fails its own episode only;
* :class:`AgentPlayer` — a :class:`~skill_gym.agent.BatchAgent`: scripted experts, random baselines,
  third-party agents, one :class:`~skill_gym.agent.Agent` per env.

A player answers a batch of env *slots* at a time: :meth:`Player.begin` when an episode starts in a slot,
:meth:`Player.decide` for the active slots each turn, :meth:`Player.feedback` after each step. ``begin`` and
``feedback`` return an error message ('' when all is well) that ends that slot's episode as failed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from agents.backends.base import Backend, ChatPrompt, Generation, SamplingConfig
from agents.prompts import PromptBuilder
from skill_gym.agent import BatchAgent

__all__ = ["AgentPlayer", "ChatPlayer", "Decision", "Player", "turn_sampling"]


@dataclasses.dataclass
class Decision:
    """One answer to one observation. A non-empty ``error`` ends that episode as failed."""

    action: str
    generation: Generation
    """The text and, for a model, its prompt and response token ids and sampling log-probs."""
    format_valid: bool = True
    prompt: ChatPrompt | None = None
    error: str = ""


class Player(Protocol):
    """What the episode loop drives: episodes begin per env slot, decisions come in batches of active slots."""

    def begin(self, slot: int, observation: Mapping[str, str], info: Mapping[str, Any]) -> str:
        """An episode starts in ``slot``; an error message when it failed already, else ''."""
        ...

    def decide(self, slots: Sequence[int], observations: Sequence[Mapping[str, str]],
               infos: Sequence[Mapping[str, Any]], turn: int) -> list[Decision]:  # fmt: skip
        """One :class:`Decision` per slot, in order; ``turn`` counts the loop's turns from 1."""
        ...

    def feedback(self, slot: int, action: str, observation: Mapping[str, str], reward: float, terminated: bool,
                 truncated: bool, info: Mapping[str, Any]) -> str:  # fmt: skip
        """What the step of ``slot`` did; an error message when the player failed, else ''."""
        ...


def turn_sampling(sampling: SamplingConfig, turn: int, width: int) -> SamplingConfig:
    """The sampling settings of turn ``turn`` (1-based) of a rollout over ``width`` envs: a seeded config moves
    its seed by ``(turn − 1)·width``, so with the backends' per-request ``seed + index`` no two requests of a
    rollout share a seed and a rerun draws the same ones.

    >>> turn_sampling(SamplingConfig(seed=100), turn=3, width=8).seed
    116
    """
    if sampling.seed is None:
        return sampling
    return dataclasses.replace(sampling, seed=sampling.seed + (turn - 1) * width)


class ChatPlayer:
    """A chat backend playing through the env's instructions, each slot with its own action history.

    ``width`` is the number of envs of the rollout (it spaces the turns' sampling seeds: :func:`turn_sampling`).
    With ``isolate_failures``, a batch the backend fails on is asked again one prompt at a time, so one bad prompt
    (too long for an endpoint, say) fails its own episode; without it, the backend's error ends the rollout.
    """

    def __init__(self, backend: Backend, builder: PromptBuilder, sampling: SamplingConfig, width: int,
                 isolate_failures: bool = False) -> None:  # fmt: skip
        self.backend = backend
        self.builder = builder
        self.sampling = sampling
        self.width = width
        self.isolate_failures = isolate_failures
        self.histories: dict[int, list[tuple[str, str]]] = {}
        self.act_steps: dict[int, int] = {}
        self.asked: dict[int, Mapping[str, str]] = {}

    def begin(self, slot: int, observation: Mapping[str, str], info: Mapping[str, Any]) -> str:
        self.histories[slot], self.act_steps[slot] = [], 0
        return ""

    def decide(self, slots: Sequence[int], observations: Sequence[Mapping[str, str]],
               infos: Sequence[Mapping[str, Any]], turn: int) -> list[Decision]:  # fmt: skip
        prompts = [self.builder.build(dict(o), self.histories[s], self.act_steps[s])
                   for s, o in zip(slots, observations, strict=True)]  # fmt: skip
        sampling = turn_sampling(self.sampling, turn, self.width)
        answers = self._generate(prompts, sampling) if self.isolate_failures else self._generate_all(prompts, sampling)
        decisions = []
        for slot, observation, prompt, gen in zip(slots, observations, prompts, answers, strict=True):
            self.asked[slot] = observation
            if isinstance(gen, str):  # this prompt failed after the backend's retries: its episode fails
                decisions.append(Decision("", Generation("", [], [], []), prompt=prompt, error=gen))
                continue
            action, format_valid = self.builder.parse(gen.text, observation.get("phase", "act") or "act")
            decisions.append(Decision(action, gen, format_valid, prompt))
        return decisions

    def _generate_all(self, prompts: list[ChatPrompt], sampling: SamplingConfig) -> list[Generation]:
        generations = self.backend.generate(prompts, sampling)
        if len(generations) != len(prompts):
            raise ValueError(f"the policy answered {len(generations)} of {len(prompts)} prompts")
        return list(generations)

    def _generate(self, prompts: list[ChatPrompt], sampling: SamplingConfig) -> list[Generation | str]:
        """One generation per prompt, or the error that prompt met (a failed batch is retried prompt by prompt)."""
        try:
            return list(self._generate_all(prompts, sampling))
        except Exception as problem:
            if len(prompts) > 1:
                return [answer for p in prompts for answer in self._generate([p], sampling)]
            return [f"{type(problem).__name__}: {str(problem)[:300]}"]

    def feedback(self, slot: int, action: str, observation: Mapping[str, str], reward: float, terminated: bool,
                 truncated: bool, info: Mapping[str, Any]) -> str:  # fmt: skip
        asked = self.asked.get(slot, {})
        if (asked.get("phase", "act") or "act") == "act":
            self.histories[slot].append((asked.get("observation", ""), action))
            self.act_steps[slot] += 1
        return ""


class AgentPlayer:
    """A :class:`~skill_gym.agent.BatchAgent`'s agents playing their env slots (actions written directly)."""

    def __init__(self, agents: BatchAgent) -> None:
        self.agents = agents

    def begin(self, slot: int, observation: Mapping[str, str], info: Mapping[str, Any]) -> str:
        self.agents.begin(slot, observation, info)
        return ""

    def decide(self, slots: Sequence[int], observations: Sequence[Mapping[str, str]],
               infos: Sequence[Mapping[str, Any]], turn: int) -> list[Decision]:  # fmt: skip
        texts = self.agents.act(observations, infos, slots)
        if len(texts) != len(slots):
            raise ValueError(f"the agents answered {len(texts)} of {len(slots)} observations")
        return [Decision(str(text), Generation(str(text), [], [], [])) for text in texts]

    def feedback(self, slot: int, action: str, observation: Mapping[str, str], reward: float, terminated: bool,
                 truncated: bool, info: Mapping[str, Any]) -> str:  # fmt: skip
        self.agents.observe(slot, action, observation, reward, terminated, truncated, info)
        return ""
