"""The backend protocol: a batch of chat prompts in, texts with token ids and log-probs out.

This module holds :class:`SamplingConfig`, :class:`Generation` and the :class:`Backend`
protocol that every backend (transformers, vLLM, OpenAI-compatible HTTP) implements.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

__all__ = ["Backend", "ChatPrompt", "Generation", "SamplingConfig"]

ChatPrompt = list[dict[str, str]]
"""OpenAI-style messages: ``[{"role": "system"|"user"|"assistant", "content": str}, ...]``."""


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    """How to sample. ``temperature=0`` means greedy."""

    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    stop: tuple[str, ...] = ()
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclasses.dataclass
class Generation:
    """One completion: its text, the prompt's and response's token ids, and per-token log-probs.

    ``logprobs[i]`` is the sampling log-probability of ``response_ids[i]`` (empty when the backend
    cannot report them, e.g. a hosted endpoint).
    """

    text: str
    prompt_ids: list[int]
    response_ids: list[int]
    logprobs: list[float]
    finish_reason: str = "stop"


@runtime_checkable
class Backend(Protocol):
    """Generates completions for a batch of chat prompts."""

    def generate(self, prompts: Sequence[ChatPrompt], sampling: SamplingConfig) -> list[Generation]:
        """One :class:`Generation` per prompt, in order."""
        ...
