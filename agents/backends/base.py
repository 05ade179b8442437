"""The backend protocol: a batch of chat prompts in, texts with token ids and log-probs out.

This module holds :class:`SamplingConfig`, :class:`Generation` and the :class:`Backend`
protocol that every backend (transformers, vLLM, OpenAI-compatible HTTP) implements:
``generate`` a batch, ``sync_weights`` after a policy update (a no-op for backends that share the
trainer's model or serve a fixed one) and ``close``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

__all__ = ["Backend", "ChatPrompt", "Generation", "SamplingConfig", "StaticBackend"]

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
    usage: tuple[int, int] | None = None
    """``(prompt tokens, response tokens)`` as a server reported them (an HTTP endpoint returns no token ids)."""

    @property
    def token_counts(self) -> tuple[int, int]:
        """``(prompt tokens, response tokens)``: the server's count where it gave one, else the token ids'."""
        return self.usage if self.usage is not None else (len(self.prompt_ids), len(self.response_ids))


@runtime_checkable
class Backend(Protocol):
    """Generates completions for a batch of chat prompts."""

    def generate(self, prompts: Sequence[ChatPrompt], sampling: SamplingConfig) -> list[Generation]:
        """One :class:`Generation` per prompt, in order."""
        ...

    def sync_weights(self, model: torch.nn.Module, step: int, run_dir: str | Path) -> None:
        """Make the next generations use ``model``'s current weights (the trainer calls it once per step, after the update)."""
        ...

    def close(self) -> None:
        """Release the engine, its workers or its connections."""
        ...


class StaticBackend:
    """Mixin for backends whose weights never need a push: ``sync_weights`` and ``close`` do nothing.

    For backends that share the trainer's model object (transformers), serve a fixed model (an HTTP
    endpoint) or are scripted (tests, baselines).
    """

    def sync_weights(self, model: torch.nn.Module, step: int, run_dir: str | Path) -> None:
        """Nothing to push: generation already sees ``model`` (or never trains)."""

    def close(self) -> None:
        """Nothing to release."""
