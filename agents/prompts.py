"""Prompts for every env and phase, and parsing of the policy's answers into env actions.

This module holds :class:`PromptBuilder`. Each turn is a fresh prompt (verl-agent style): the
task, the skills in context, the last ``history_length`` steps, the current observation and the
admissible actions, then the answer format: ``<think>...</think><action>...</action>`` for
ALFWorld-like envs, ``<search>``/``<answer>`` for Search-QA, or a bare word (``action_format="plain"``)
for tiny test policies. The skill phases (select, rerank, distill) get their own prompts built
from what the skill env shows. Written for this project.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from agents.backends.base import ChatPrompt
from skill_gym.skill_env.parsing import tag_content

__all__ = ["ENV_INTROS", "PromptBuilder"]

ENV_INTROS = {
    "alfworld": "You are an agent acting in a household simulated as text (ALFWorld). You move between "
    "receptacles, pick objects up, open, heat, cool and clean things to complete the task.",
    "keyword": "You are an agent that answers word tasks with one word from a list.",
    "webshop": "You are an agent shopping on a web store described as text.",
    "searchqa": "You are an agent that answers questions by searching a knowledge base.",
}
_DEFAULT_INTRO = "You are an agent acting in a text environment."


@dataclasses.dataclass
class PromptBuilder:
    """Builds one chat prompt per turn and turns the policy's text into an env action."""

    env_name: str = "alfworld"
    history_length: int = 2
    action_format: Literal["tagged", "plain", "search"] = "tagged"
    think: bool = True
    max_observation_chars: int = 4000

    def build(self, obs: dict[str, str], history: list[tuple[str, str]], step: int) -> ChatPrompt:
        """The prompt for the current phase; ``history`` holds ``(observation, action)`` of past act steps."""
        phase = obs.get("phase", "act") or "act"
        intro = ENV_INTROS.get(self.env_name, _DEFAULT_INTRO)
        body = {
            "select": self._select,
            "rerank": self._rerank,
            "distill": self._distill,
        }.get(phase, self._act)(obs, history, step)
        return [{"role": "user", "content": f"{intro}\n\n{body}"}]

    def parse(self, text: str, phase: str) -> tuple[str, bool]:
        """``(action_for_env, format_valid)``. Skill phases pass the whole text (the env parses it)."""
        if phase in ("select", "rerank", "distill"):
            return text, bool(text.strip())
        if self.action_format == "plain":
            action = text.strip().splitlines()[0].strip() if text.strip() else ""
            return action, bool(action)
        if self.action_format == "search":
            for tag in ("answer", "search"):
                content = tag_content(text, tag)
                if content is not None:
                    return f"<{tag}>{content}</{tag}>", True
            return text, False
        action = tag_content(text, "action")
        if action is None:
            return "", False  # the env answers "invalid action"; the learner applies the format penalty
        if self.think and tag_content(text, "think") is None:
            return action, False
        return action, True

    # -- phases --------------------------------------------------------------------------------

    def _answer_format(self) -> str:
        if self.action_format == "plain":
            return "Answer with the action only, exactly as listed."
        if self.action_format == "search":
            return (
                "Reason inside <think> </think>. To look something up write <search> query </search>; "
                "when you know the answer write <answer> answer </answer>."
            )
        think = "First reason about the situation inside <think> </think>. " if self.think else ""
        return f"{think}Then write exactly one admissible action inside <action> </action>."

    def _act(self, obs: dict[str, str], history: list[tuple[str, str]], step: int) -> str:
        parts = []
        if obs.get("skills"):
            parts.append(obs["skills"])
        parts.append(f"Your task: {obs.get('task', '')}")
        recent = history[-self.history_length :] if self.history_length > 0 else []
        if recent:
            lines = [
                f"[step {step - len(recent) + i + 1}] observation: {o}\naction: {a}" for i, (o, a) in enumerate(recent)
            ]
            parts.append(f"You have taken {step} step(s). The most recent ones:\n" + "\n".join(lines))
        observation = obs.get("observation", "")[-self.max_observation_chars :]
        parts.append(f"Now at step {step + 1}, you observe: {observation}")
        actions = obs.get("admissible_actions", "")
        if actions:
            parts.append("Admissible actions: " + ", ".join(a for a in actions.split("\n") if a))
        parts.append(self._answer_format())
        return "\n\n".join(parts)

    def _select(self, obs: dict[str, str], history: list[tuple[str, str]], step: int) -> str:
        return (
            f"Your task: {obs.get('task', '')}\n\n"
            "Before acting you may consult a library of skills learnt from earlier tasks. Describe in one "
            "sentence the skill that would help most, inside <query> </query>."
        )

    def _rerank(self, obs: dict[str, str], history: list[tuple[str, str]], step: int) -> str:
        return (
            f"Your task: {obs.get('task', '')}\n\nCandidate skills:\n{obs.get('candidates', '')}\n\n"
            "Rank the candidates from most to least useful for this task by their numbers, inside "
            "<rank> </rank>, for example <rank>2,1,3</rank>."
        )

    def _distill(self, obs: dict[str, str], history: list[tuple[str, str]], step: int) -> str:
        return (
            f"{obs.get('observation', '')[-self.max_observation_chars :]}\n\n"
            'Reply with the JSON object only: {"description": "...", "strategy": "..."}. The description says '
            "when the skill applies (it is what future tasks are matched against); the strategy says what to do."
        )
