"""The multi-turn rollout engine: many text envs stepped together with batched generation.

This module holds :class:`Turn` and :class:`Episode` (what a learner trains on: per-turn prompt
and response token ids, sampling log-probs, phase, validity flags and rewards; env text is only
ever inside prompts, so it is never trained on) and :func:`rollout`, which runs one episode in
each env — a list of envs or a Gymnasium vector env — generating for all unfinished envs at once.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym

from agents.backends.base import Backend, SamplingConfig
from agents.prompts import PromptBuilder

__all__ = ["Episode", "RolloutStats", "Turn", "rollout"]


@dataclasses.dataclass
class Turn:
    """One policy turn: the prompt it saw, what it generated, and what the env said."""

    phase: str
    prompt_ids: list[int]
    response_ids: list[int]
    logprobs: list[float]
    text: str
    action: str
    format_valid: bool
    action_valid: bool
    reward: float


@dataclasses.dataclass
class Episode:
    """One episode of one env: its turns and outcome. ``group`` indexes the GRPO group."""

    task_id: str
    task_type: str
    group: int
    turns: list[Turn] = dataclasses.field(default_factory=list)
    won: bool = False
    score: float = 0.0
    env_return: float = 0.0
    truncated: bool = False
    skill: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def n_invalid_format(self) -> int:
        return sum(not t.format_valid for t in self.turns)

    @property
    def n_invalid_action(self) -> int:
        return sum(not t.action_valid for t in self.turns)


@dataclasses.dataclass
class RolloutStats:
    """Timing of a rollout: generation vs env time and token counts."""

    seconds: float = 0.0
    generate_seconds: float = 0.0
    env_seconds: float = 0.0
    prompt_tokens: int = 0
    response_tokens: int = 0


class _EnvSet:
    """A list of envs or a vector env behind one interface (reset per env, step the unfinished ones)."""

    def __init__(self, envs: Sequence[gym.Env] | gym.vector.VectorEnv) -> None:
        self.vector = envs if isinstance(envs, gym.vector.VectorEnv) else None
        self.envs = None if self.vector is not None else list(envs)
        self.size = self.vector.num_envs if self.vector is not None else len(self.envs)

    def reset(self, options: list[dict[str, Any]], seeds: list[int]) -> list[tuple[dict[str, str], dict]]:
        if self.vector is None:
            return [env.reset(seed=s, options=o) for env, s, o in zip(self.envs, seeds, options, strict=True)]
        self.vector.set_attr("pending_options", options)
        obs, infos = self.vector.reset(seed=seeds)
        return [(_index(obs, i), _index(infos, i)) for i in range(self.size)]

    def step(self, actions: dict[int, str]) -> dict[int, tuple]:
        if self.vector is None:
            return {i: self.envs[i].step(a) for i, a in actions.items()}
        full = [actions.get(i, "") for i in range(self.size)]  # finished envs get a no-op we ignore
        obs, rewards, terms, truncs, infos = self.vector.step(full)
        return {
            i: (_index(obs, i), float(rewards[i]), bool(terms[i]), bool(truncs[i]), _index(infos, i)) for i in actions
        }


def _index(batch: Any, i: int) -> Any:
    """Element ``i`` of a vector env's batched observation or info (dicts of arrays, nested)."""
    if isinstance(batch, dict):
        out = {}
        for key, value in batch.items():
            if key.startswith("_"):
                continue
            mask = batch.get(f"_{key}")
            if mask is not None and not mask[i]:
                continue
            out[key] = _index(value, i)
        return out
    item = batch[i]
    return item.item() if hasattr(item, "item") and getattr(item, "ndim", 1) == 0 else item


def rollout(
    envs: Sequence[gym.Env] | gym.vector.VectorEnv,
    backend: Backend,
    builder: PromptBuilder,
    task_ids: Sequence[str | None],
    seeds: Sequence[int],
    sampling: SamplingConfig,
    groups: Sequence[int] | None = None,
    policy_step: int | None = None,
    max_turns: int = 64,
    tokenize: Any = None,
) -> tuple[list[Episode], RolloutStats]:
    """Run one episode per env (env ``i`` on ``task_ids[i]`` with ``seeds[i]``); return them in order.

    ``tokenize`` maps a prompt to token ids for backends that do not return them (defaults to the
    backend's own ``encode_prompt`` when it has one).
    """
    start = time.perf_counter()
    pool = _EnvSet(envs)
    if not (pool.size == len(task_ids) == len(seeds)):
        raise ValueError(f"{pool.size} envs but {len(task_ids)} task ids and {len(seeds)} seeds")
    groups = list(groups) if groups is not None else list(range(pool.size))
    options = [
        {"task_id": t, "policy_step": policy_step} if t is not None else {"policy_step": policy_step} for t in task_ids
    ]
    stats = RolloutStats()
    t0 = time.perf_counter()
    first = pool.reset(options, [int(s) for s in seeds])
    stats.env_seconds += time.perf_counter() - t0
    episodes = [
        Episode(task_id=str(info.get("task_id", "")), task_type=str(info.get("task_type", "")), group=g)
        for (_, info), g in zip(first, groups, strict=True)
    ]
    observations = [obs for obs, _ in first]
    histories: list[list[tuple[str, str]]] = [[] for _ in range(pool.size)]
    act_steps = [0] * pool.size
    active = list(range(pool.size))
    turns = 0
    while active and turns < max_turns:
        turns += 1
        prompts = [builder.build(observations[i], histories[i], act_steps[i]) for i in active]
        t0 = time.perf_counter()
        generations = backend.generate(prompts, sampling)
        stats.generate_seconds += time.perf_counter() - t0
        actions: dict[int, str] = {}
        parsed: dict[int, tuple[str, bool, str]] = {}
        for i, gen in zip(active, generations, strict=True):
            phase = observations[i].get("phase", "act") or "act"
            action, format_ok = builder.parse(gen.text, phase)
            actions[i] = action
            parsed[i] = (action, format_ok, phase)
        t0 = time.perf_counter()
        results = pool.step(actions)
        stats.env_seconds += time.perf_counter() - t0
        still = []
        for i, gen in zip(active, generations, strict=True):
            obs, reward, terminated, truncated, info = results[i]
            action, format_ok, phase = parsed[i]
            prompt_ids = gen.prompt_ids or (list(tokenize(prompts[active.index(i)])) if tokenize else [])
            episodes[i].turns.append(
                Turn(
                    phase=phase,
                    prompt_ids=prompt_ids,
                    response_ids=gen.response_ids,
                    logprobs=gen.logprobs,
                    text=gen.text,
                    action=action,
                    format_valid=format_ok,
                    action_valid=bool(info.get("action_valid", True)),
                    reward=float(reward),
                )
            )
            stats.prompt_tokens += len(prompt_ids)
            stats.response_tokens += len(gen.response_ids)
            if phase == "act":
                histories[i].append((observations[i].get("observation", ""), action))
                act_steps[i] += 1
            observations[i] = obs
            episode = episodes[i]
            episode.env_return += float(reward)
            episode.won = bool(info.get("won", episode.won))
            episode.score = float(info.get("score", episode.score))
            if "skill" in info:
                episode.skill = dict(info["skill"])
            if terminated or truncated:
                episode.truncated = bool(truncated)
            else:
                still.append(i)
        active = still
    for i in active:  # ran out of turns
        episodes[i].truncated = True
    stats.seconds = time.perf_counter() - start
    return episodes, stats
