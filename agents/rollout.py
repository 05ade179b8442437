"""The multi-turn rollout engine: the one episode loop, many text envs stepped together with batched answers.

This module holds :class:`Turn` and :class:`Episode` (what a learner trains on and the leaderboard records:
per-turn prompt and response token ids, sampling log-probs, phase, validity flags and rewards; env text is only
ever inside prompts, so it is never trained on), :class:`EnvSet` (a list of envs or a vector env behind one
interface), :class:`HoldFinalStep` (keeps a finished episode still inside a vector env), :func:`play` — the one
episode loop, driving a :class:`~agents.players.Player` over env slots with a callback per finished episode —
and :func:`rollout`, which plays one episode in each env with a chat backend or a
:class:`~skill_gym.agent.BatchAgent`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from agents.backends.base import Backend, ChatPrompt, SamplingConfig
from agents.players import AgentPlayer, ChatPlayer, Player
from agents.prompts import PromptBuilder
from skill_gym.agent import Agent, BatchAgent, agent_factory

__all__ = [
    "EnvSet",
    "Episode",
    "HoldFinalStep",
    "RolloutStats",
    "Turn",
    "play",
    "rollout",
    "rollout_seed",
]


@dataclasses.dataclass
class Turn:
    """One policy turn: what it observed, what it generated, and what the env said."""

    phase: str
    prompt_ids: list[int]
    response_ids: list[int]
    logprobs: list[float]
    text: str
    action: str
    format_valid: bool
    action_valid: bool
    reward: float
    observation: str = ""
    """The observation text the policy answered (for transcripts; the prompt holds more)."""
    prompt_tokens: int = 0
    response_tokens: int = 0
    """Token counts (a server's own where it reports no token ids)."""
    seconds: float = 0.0
    """Wall time of the turn's batched answer."""
    prompt: ChatPrompt | None = None
    """The chat prompt, kept when :func:`play` is asked to (transcripts)."""


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
    failed: bool = False
    """The player failed in this episode (an agent that raised or hung, a prompt the endpoint refused)."""
    error: str = ""
    seconds: float = 0.0
    """Wall time from the rollout's start to this episode's end."""

    @property
    def n_invalid_format(self) -> int:
        return sum(not t.format_valid for t in self.turns)

    @property
    def n_invalid_action(self) -> int:
        return sum(not t.action_valid for t in self.turns)

    @property
    def act_steps(self) -> int:
        """Turns in the base env (the ``act`` phase)."""
        return sum(t.phase == "act" for t in self.turns)


@dataclasses.dataclass
class RolloutStats:
    """Timing of a rollout: generation vs env time and token counts."""

    seconds: float = 0.0
    generate_seconds: float = 0.0
    env_seconds: float = 0.0
    prompt_tokens: int = 0
    response_tokens: int = 0


class HoldFinalStep(gym.Wrapper):
    """Keeps a finished episode still inside a vector env, so the rollout alone decides what runs next.

    A vector env steps every sub-env on every call and resets finished ones itself. During a
    rollout the unfinished envs keep stepping while the finished ones must not start a new episode
    (it would update a skill library's utilities from actions nobody chose). This wrapper reports
    the episode's end in ``info["episode_end"]`` (``"terminated"`` or ``"truncated"``) and never to the
    vector env; after it, ``step`` repeats the final observation with reward 0 and leaves the env alone.
    """

    def reset(self, **kwargs: Any):
        self._final: tuple[Any, dict[str, Any]] | None = None
        return self.env.reset(**kwargs)

    def step(self, action: Any):
        if getattr(self, "_final", None) is not None:
            obs, info = self._final
            return obs, 0.0, False, False, info
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info = {**info, "episode_end": "terminated" if terminated else "truncated"}
            self._final = (obs, info)
        return obs, reward, False, False, info


class EnvSet:
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
        full = [actions.get(i, "") for i in range(self.size)]  # finished envs hold their final step (HoldFinalStep)
        obs, rewards, terms, truncs, infos = self.vector.step(full)
        out = {}
        for i in actions:
            info = _index(infos, i)
            end = info.pop("episode_end", "")
            terminated = bool(terms[i]) or end == "terminated"
            truncated = bool(truncs[i]) or end == "truncated"
            out[i] = (_index(obs, i), float(rewards[i]), terminated, truncated, info)
        return out


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


def rollout_seed(seed: int, step: int, rank: int = 0) -> int:
    """A training step's base sampling seed, a function of the run's seed, the step and the training rank alone (so
    a resumed run draws what an uninterrupted one did, without consuming any RNG state; ranks draw apart).

    >>> rollout_seed(0, 5) == rollout_seed(0, 5) != rollout_seed(0, 6)
    True
    >>> rollout_seed(0, 5, rank=1) != rollout_seed(0, 5)
    True
    """
    entropy = [seed, step, rank] if rank else [seed, step]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] >> 1)


def play(
    pool: EnvSet,
    player: Player,
    options: Sequence[dict[str, Any]],
    seeds: Sequence[int],
    max_turns: int = 64,
    groups: Sequence[int] | None = None,
    slots: Sequence[int] | None = None,
    on_end: Callable[[int, Episode], None] | None = None,
    keep_prompts: bool = False,
) -> tuple[list[Episode], RolloutStats]:
    """The episode loop: reset every env (env ``i`` with ``options[i]`` and ``seeds[i]``), then play ``slots``
    (default: all) until each episode ends or ``max_turns`` turns have passed; the episodes in slot order.

    Each turn the player answers all unfinished slots at once. An error from the player (``begin``, a
    :class:`~agents.players.Decision`'s ``error``, ``feedback``) ends that slot's episode as failed; the others go
    on. ``on_end(slot, episode)`` is called as each episode ends. Envs outside ``slots`` are reset but never played.
    """
    start = time.perf_counter()
    slots = list(range(pool.size)) if slots is None else list(slots)
    if not (pool.size == len(options) == len(seeds)):
        raise ValueError(f"{pool.size} envs but {len(options)} task options and {len(seeds)} seeds")
    groups = list(groups) if groups is not None else list(range(pool.size))
    stats = RolloutStats()
    t0 = time.perf_counter()
    first = pool.reset(list(options), [int(s) for s in seeds])
    stats.env_seconds += time.perf_counter() - t0
    observations = {s: first[s][0] for s in slots}
    infos = {s: first[s][1] for s in slots}
    episodes = {s: Episode(task_id=str(infos[s].get("task_id", "")), task_type=str(infos[s].get("task_type", "")),
                           group=groups[s]) for s in slots}  # fmt: skip

    def end(slot: int, error: str = "") -> None:
        episode = episodes[slot]
        if error:
            episode.failed, episode.error, episode.won, episode.score = True, error[:1000], False, 0.0
        episode.seconds = round(time.perf_counter() - start, 4)
        if on_end is not None:
            on_end(slot, episode)

    active = []
    for slot in slots:
        problem = player.begin(slot, observations[slot], infos[slot])
        if problem:
            end(slot, problem)
        else:
            active.append(slot)
    turns = 0
    while active and turns < max_turns:
        turns += 1
        t0 = time.perf_counter()
        decisions = player.decide(active, [observations[s] for s in active], [infos[s] for s in active], turns)
        decide_seconds = time.perf_counter() - t0
        stats.generate_seconds += decide_seconds
        if len(decisions) != len(active):
            raise ValueError(f"the player answered {len(decisions)} of {len(active)} observations")
        chosen = {}
        for slot, decision in zip(active, decisions, strict=True):
            if decision.error:
                end(slot, decision.error)
            else:
                chosen[slot] = decision
        t0 = time.perf_counter()
        results = pool.step({s: d.action for s, d in chosen.items()}) if chosen else {}
        stats.env_seconds += time.perf_counter() - t0
        still = []
        for slot, decision in chosen.items():
            obs, reward, terminated, truncated, info = results[slot]
            gen = decision.generation
            prompt_tokens, response_tokens = gen.token_counts
            episodes[slot].turns.append(
                Turn(
                    phase=observations[slot].get("phase", "act") or "act",
                    prompt_ids=gen.prompt_ids,
                    response_ids=gen.response_ids,
                    logprobs=gen.logprobs,
                    text=gen.text,
                    action=decision.action,
                    format_valid=decision.format_valid,
                    action_valid=bool(info.get("action_valid", True)),
                    reward=float(reward),
                    observation=observations[slot].get("observation", ""),
                    prompt_tokens=prompt_tokens,
                    response_tokens=response_tokens,
                    seconds=round(decide_seconds, 4),
                    prompt=decision.prompt if keep_prompts else None,
                )
            )
            stats.prompt_tokens += prompt_tokens
            stats.response_tokens += response_tokens
            observations[slot], infos[slot] = obs, info
            episode = episodes[slot]
            episode.env_return += float(reward)
            episode.won = bool(info.get("won", episode.won))
            episode.score = float(info.get("score", episode.score))
            episode.task_type = str(info.get("task_type", episode.task_type))
            if "skill" in info:
                episode.skill = dict(info["skill"])
            problem = player.feedback(slot, decision.action, obs, float(reward), terminated, truncated, info)
            if problem:
                end(slot, problem)
            elif terminated or truncated:
                episode.truncated = bool(truncated)
                end(slot)
            else:
                still.append(slot)
        active = still
    for slot in active:  # ran out of turns
        episodes[slot].truncated = True
        end(slot)
    stats.seconds = time.perf_counter() - start
    return [episodes[s] for s in slots], stats


def rollout(
    envs: Sequence[gym.Env] | gym.vector.VectorEnv,
    policy: Backend | BatchAgent | Agent,
    builder: PromptBuilder,
    task_ids: Sequence[str | None],
    seeds: Sequence[int],
    sampling: SamplingConfig,
    groups: Sequence[int] | None = None,
    policy_step: int | None = None,
    max_turns: int = 64,
) -> tuple[list[Episode], RolloutStats]:
    """Run one episode per env (env ``i`` on ``task_ids[i]`` with ``seeds[i]``); return them in order.

    ``policy`` is a :class:`~agents.backends.base.Backend` (chat prompts built by ``builder``, answers parsed
    by the env's format), a :class:`~skill_gym.agent.BatchAgent` (observations in, env actions out) or one
    :class:`~skill_gym.agent.Agent`, copied into each env (:func:`~skill_gym.agent.agent_factory`). A vector
    env must wrap its envs in :class:`HoldFinalStep` (``gym.make_vec(..., wrappers=[HoldFinalStep])``).
    """
    pool = EnvSet(envs)
    if not (pool.size == len(task_ids) == len(seeds)):
        raise ValueError(f"{pool.size} envs but {len(task_ids)} task ids and {len(seeds)} seeds")
    options = [
        {"task_id": t, "policy_step": policy_step} if t is not None else {"policy_step": policy_step} for t in task_ids
    ]
    if isinstance(policy, Agent) and not isinstance(policy, BatchAgent):
        make = agent_factory(policy)
        policy = BatchAgent(lambda slot: make())
    player = AgentPlayer(policy) if isinstance(policy, BatchAgent) else ChatPlayer(policy, builder, sampling, pool.size)
    return play(pool, player, options, seeds, max_turns, groups)
