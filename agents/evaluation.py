"""Evaluation: any policy over a split of any registered env, with vector envs, into one result record.

This module holds :func:`evaluate` and :class:`EvalResult`: GRPO's validation and SKILL0's with/without-skills
validation call it; the leaderboard plays the same episode loop (:func:`agents.rollout.play`) with transcripts.

A policy is any of:

* a :class:`~agents.backends.base.Backend` (transformers, vLLM, an OpenAI-compatible endpoint): chat
  prompts are built from the env's own instructions and its answers parsed by the env's formats;
* a :class:`~skill_gym.agent.BatchAgent`, or one :class:`~skill_gym.agent.Agent` (``act(observation, info) ->
  action``; each env plays a copy): scripted, oracle, random or third-party agents that write env actions;
* a plain callable ``f(prompts: list[ChatPrompt]) -> list[str]``: any chat model behind a function.

Skill envs are evaluated with a frozen library (``read_only=True``) unless ``env_kwargs`` says otherwise.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

import skill_gym
from agents.backends.base import Backend, ChatPrompt, Generation, SamplingConfig, StaticBackend
from agents.prompts import PromptBuilder
from agents.rollout import Episode, HoldFinalStep, rollout
from skill_gym.agent import Agent, BatchAgent

__all__ = ["CallableBackend", "EvalResult", "evaluate", "make_rollout_envs", "success_by_type"]


class CallableBackend(StaticBackend):
    """A backend from a plain function ``prompts -> texts`` (no token ids, no log-probs)."""

    def __init__(self, fn: Callable[[list[ChatPrompt]], Sequence[str]]) -> None:
        self.fn = fn

    def generate(self, prompts: Sequence[ChatPrompt], sampling: SamplingConfig) -> list[Generation]:
        return [Generation(str(text), [], [], []) for text in self.fn(list(prompts))]


@dataclasses.dataclass
class EvalResult:
    """What an evaluation measured, per episode and in aggregate."""

    env_id: str
    episodes: list[Episode]
    success: dict[str, float]
    """``"all"`` and one entry per task type: the fraction of episodes won."""
    score: float
    """Mean task score in [0, 1] (``info["score"]``)."""
    mean_return: float
    """Mean undiscounted env return."""
    mean_steps: float
    """Mean number of base-env (``act``) steps per episode."""
    prompt_tokens: int
    response_tokens: int
    seconds: float

    def metrics(self, prefix: str = "") -> dict[str, float]:
        """Flat metrics: ``success/all``, ``success/<task_type>``, ``score``, ``return``, ``steps``, ``tokens/*``."""
        out = {f"{prefix}success/{k}": v for k, v in self.success.items()}
        out.update({f"{prefix}score": self.score, f"{prefix}return": self.mean_return,
                    f"{prefix}steps": self.mean_steps,
                    f"{prefix}tokens/prompt_per_turn": self.prompt_tokens / max(self.n_turns, 1),
                    f"{prefix}tokens/response": float(self.response_tokens)})  # fmt: skip
        return out

    @property
    def n_turns(self) -> int:
        return sum(len(e.turns) for e in self.episodes)

    def transcripts(self) -> list[dict[str, Any]]:
        """One JSON-ready record per episode: task, outcome, and each turn's observation, response and action."""
        return [_transcript(e) for e in self.episodes]


def _transcript(episode: Episode) -> dict[str, Any]:
    turns = [
        {"phase": t.phase, "observation": t.observation, "response": t.text, "action": t.action,
         "format_valid": t.format_valid, "action_valid": t.action_valid, "reward": t.reward}
        for t in episode.turns
    ]  # fmt: skip
    return {"task_id": episode.task_id, "task_type": episode.task_type, "won": episode.won, "score": episode.score,
            "return": episode.env_return, "truncated": episode.truncated, "turns": turns}  # fmt: skip


def success_by_type(episodes: Sequence[Episode]) -> dict[str, float]:
    """``{"all": rate, <task_type>: rate, ...}`` of won episodes."""
    by_type: dict[str, list[bool]] = defaultdict(list)
    for e in episodes:
        if e.task_type:
            by_type[e.task_type].append(e.won)
    out = {"all": float(np.mean([e.won for e in episodes])) if episodes else 0.0}
    out.update({k: float(np.mean(v)) for k, v in sorted(by_type.items())})
    return out


def make_rollout_envs(
    env_id: str,
    num_envs: int,
    env_kwargs: dict[str, Any] | None = None,
    vectorization_mode: str = "sync",
    vector_kwargs: dict[str, Any] | None = None,
) -> gym.vector.VectorEnv:
    """A vector env of ``env_id`` ready for :func:`~agents.rollout.rollout` (finished episodes hold still).

    ``vector_kwargs`` go to the vector env (with ``"ray"``: ``num_workers``, ``envs_per_worker``, ``address``,
    ``worker_options``), ``env_kwargs`` to each env.
    """
    return skill_gym.make_vec(
        env_id, num_envs, vectorization_mode=vectorization_mode, vector_kwargs=dict(vector_kwargs or {}),
        wrappers=[HoldFinalStep], **(env_kwargs or {}),
    )  # fmt: skip


def evaluate(
    policy: Backend | BatchAgent | Agent | Callable[[list[ChatPrompt]], Sequence[str]],
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    task_ids: Sequence[str] | None = None,
    n_tasks: int = 0,
    episodes_per_task: int = 1,
    num_envs: int = 8,
    vectorization_mode: str = "sync",
    vector_kwargs: dict[str, Any] | None = None,
    temperature: float = 0.0,
    max_new_tokens: int = 512,
    history_length: int = 2,
    max_turns: int = 64,
    seed: int = 0,
    policy_step: int | None = None,
    setup: Callable[[gym.vector.VectorEnv], None] | None = None,
) -> EvalResult:
    """Run ``policy`` on the tasks of ``env_id`` (all of its split, the first ``n_tasks``, or ``task_ids``).

    Tasks run ``num_envs`` at a time in one vector env (``"sync"``, ``"async"`` or ``"ray"``, sized by
    ``vector_kwargs``); each task is played
    ``episodes_per_task`` times with seeds ``seed, seed + 1, ...``. ``temperature=0`` is greedy.
    ``setup`` is called on the vector env before the first episode (e.g. to set SKILL0's active skill files).
    """
    kwargs = dict(env_kwargs or {})
    if skill_gym.is_skill_env(env_id):
        kwargs.setdefault("read_only", True)
    if not isinstance(policy, (Backend, BatchAgent, Agent)):
        if not callable(policy):
            raise TypeError(
                f"policy must be a Backend, an Agent, a BatchAgent or a callable, got {type(policy).__name__}"
            )
        policy = CallableBackend(policy)
    probe = gym.make(env_id, **kwargs)
    try:
        known = list(getattr(probe.unwrapped, "task_ids", []))
        instructions = probe.unwrapped.instructions
    finally:
        probe.close()
    tasks: list[str | None] = list(task_ids) if task_ids is not None else (known[:n_tasks] if n_tasks else known)
    if not tasks:
        tasks = [None] * max(n_tasks, 1)  # an env without task ids: draw tasks from the seeds
    runs = [t for t in tasks for _ in range(episodes_per_task)]
    seeds = [seed + k for _ in tasks for k in range(episodes_per_task)]
    builder = PromptBuilder(instructions, history_length=history_length)
    sampling = SamplingConfig(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    width = max(1, min(num_envs, len(runs)))
    episodes: list[Episode] = []
    seconds = 0.0
    vec = make_rollout_envs(env_id, width, kwargs, vectorization_mode, vector_kwargs)
    try:
        if setup is not None:
            setup(vec)
        for start in range(0, len(runs), width):
            wave, wave_seeds = runs[start : start + width], seeds[start : start + width]
            pad = width - len(wave)  # the last wave: extra envs replay its first task, and are dropped
            done, stats = rollout(vec, policy, builder, wave + wave[:1] * pad, wave_seeds + wave_seeds[:1] * pad,
                                  sampling, policy_step=policy_step, max_turns=max_turns)  # fmt: skip
            episodes += done[: len(wave)]
            seconds += stats.seconds
    finally:
        vec.close()
    return EvalResult(
        env_id=env_id,
        episodes=episodes,
        success=success_by_type(episodes),
        score=float(np.mean([e.score for e in episodes])) if episodes else 0.0,
        mean_return=float(np.mean([e.env_return for e in episodes])) if episodes else 0.0,
        mean_steps=float(np.mean([e.act_steps for e in episodes])) if episodes else 0.0,
        prompt_tokens=sum(len(t.prompt_ids) for e in episodes for t in e.turns),
        response_tokens=sum(len(t.response_ids) for e in episodes for t in e.turns),
        seconds=seconds,
    )
