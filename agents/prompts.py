"""Chat prompts for any skill-gym env: the env's instructions, the skills, the history and the observation.

This module holds :class:`PromptBuilder`. Each turn is a fresh prompt (verl-agent style). What the env
is and how to answer come from the env itself (:class:`~skill_gym.envs.instructions.Instructions`,
``env.unwrapped.instructions``); the builder only assembles them: the intro, the skills in context, the
task, the last ``history_length`` steps, the current observation, the admissible actions or the
candidates, and the answer format of the current phase. It never branches on an env's name.

When the env's instructions carry a :class:`~skill_gym.envs.instructions.Demonstration` of a phase (the act
phase's, or a skill phase's: ``Instructions.demonstration_for``), that phase's prompt opens with it as a finished
exchange (the example observation's prompt, then the example answer as the assistant's turn): one-shot prompting,
which a 135M-parameter model needs to answer in the asked form at all (``benchmarks/perf/learning_curve.py``).
``demonstration=False`` leaves them out.
"""

from __future__ import annotations

import dataclasses

from agents.backends.base import ChatPrompt
from skill_gym.envs.instructions import Instructions

__all__ = ["PromptBuilder"]


@dataclasses.dataclass
class PromptBuilder:
    """Builds one chat prompt per turn and turns the policy's text into an env action.

    Example:
        >>> import gymnasium as gym, skill_gym
        >>> env = gym.make("Keyword-v0", answer_format="plain")
        >>> obs, info = env.reset(options={"task_id": "plural/box"})
        >>> builder = PromptBuilder(env.unwrapped.instructions)
        >>> prompt = builder.build(obs, [], 0)
        >>> [m["role"] for m in prompt], prompt[1]["content"]  # the env's worked example first
        (['user', 'assistant', 'user'], 'cats')
        >>> print(prompt[-1]["content"].splitlines()[-1])
        Answer with the action only, exactly as listed.
        >>> builder.parse("boxes", "act")
        ('boxes', True)
    """

    instructions: Instructions
    history_length: int = 2
    max_observation_chars: int = 4000
    demonstration: bool = True
    """Open a phase's prompts with the env's worked example of it, when its instructions carry one."""

    def build(self, obs: dict[str, str], history: list[tuple[str, str]], step: int) -> ChatPrompt:
        """The prompt for the current phase; ``history`` holds ``(observation, action)`` of past act steps."""
        phase = obs.get("phase", "act") or "act"
        example = self.instructions.demonstration_for(phase) if self.demonstration else None
        opening: ChatPrompt = []
        if example is not None:
            opening = [{"role": "user", "content": self._content(dict(example.observation), [], 0, phase)},
                       {"role": "assistant", "content": example.response}]  # fmt: skip
        return [*opening, {"role": "user", "content": self._content(obs, history, step, phase)}]

    def parse(self, text: str, phase: str) -> tuple[str, bool]:
        """``(action_for_env, format_valid)`` by the env's format for ``phase``."""
        return self.instructions.parse(text, phase or "act")

    def _content(self, obs: dict[str, str], history: list[tuple[str, str]], step: int, phase: str) -> str:
        parts = [self.instructions.intro]
        if phase == "act":
            parts += self._act(obs, history, step)
        else:
            parts.append(f"Your task: {obs.get('task', '')}")
            parts.append(self._clip(obs.get("observation", "")))
            if obs.get("candidates"):
                parts.append(f"Candidate skills:\n{obs['candidates']}")
        parts.append(self.instructions.format(phase).instruction)
        return "\n\n".join(p for p in parts if p)

    def _act(self, obs: dict[str, str], history: list[tuple[str, str]], step: int) -> list[str]:
        parts = [obs.get("skills", ""), f"Your task: {obs.get('task', '')}"]
        recent = history[-self.history_length :] if self.history_length > 0 else []
        if recent:
            lines = [
                f"[step {step - len(recent) + i + 1}] observation: {o}\naction: {a}" for i, (o, a) in enumerate(recent)
            ]
            parts.append(f"You have taken {step} step(s). The most recent ones:\n" + "\n".join(lines))
        parts.append(f"Now at step {step + 1}, you observe: {self._clip(obs.get('observation', ''))}")
        actions = obs.get("admissible_actions", "")
        if actions:
            parts.append("Admissible actions: " + ", ".join(a for a in actions.split("\n") if a))
        return parts

    def _clip(self, text: str) -> str:
        return text[-self.max_observation_chars :]
