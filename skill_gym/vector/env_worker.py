"""What one env worker of a :class:`~skill_gym.vector.RayVectorEnv` does: a few envs stepped in order.

This module holds :class:`EnvWorker` (the pool makes it a Ray actor; the class itself knows nothing of
Ray, so it runs and tests in-process too) and :func:`make_env`, the picklable env factory the pool sends
to its workers. A worker answers for its envs by their local index ``0..k-1`` and applies the pool's
autoreset mode to each env exactly as Gymnasium's ``SyncVectorEnv`` does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
from gymnasium.vector import AutoresetMode

__all__ = ["EnvWorker", "StepResult", "make_env"]

StepResult = tuple[Any, float, bool, bool, dict[str, Any]]
"""One env's ``(obs, reward, terminated, truncated, info)``."""


def make_env(env_id: str, kwargs: dict[str, Any], wrappers: Sequence[Callable[[gym.Env], gym.Env]] = ()) -> gym.Env:
    """``gym.make(env_id, **kwargs)`` inside ``wrappers`` (what ``gym.make_vec``'s workers build).

    >>> env = make_env("Keyword-v0", {"max_steps": 2})
    >>> env.spec.id, env.unwrapped.max_steps
    ('Keyword-v0', 2)
    """
    env = gym.make(env_id, **kwargs)  # a fresh worker imported skill_gym (this module's package): ids registered
    for wrapper in wrappers:
        env = wrapper(env)
    return env


class EnvWorker:
    """Holds the envs of one pool worker and steps the ones asked for, one after another.

    Example:
        >>> from functools import partial
        >>> worker = EnvWorker([partial(make_env, "Keyword-v0", {})] * 2, AutoresetMode.NEXT_STEP)
        >>> [info["task_id"] for _, info in worker.reset([0, 1], [0, 0], {"task_id": "echo/apple"})]
        ['echo/apple', 'echo/apple']
        >>> [(r, term) for _, r, term, _, _ in worker.step([1], ["apple"])]
        [(1.0, True)]
        >>> obs, reward, term, trunc, info = worker.step([1], ["ignored: NEXT_STEP resets"])[0]
        >>> reward, term, obs["observation"].endswith("Choose one of the admissible actions.")
        (0.0, False, True)
        >>> worker.close()
    """

    def __init__(
        self, env_fns: Sequence[Callable[[], gym.Env]], autoreset_mode: AutoresetMode, restarted: bool = False
    ) -> None:
        self.envs = [fn() for fn in env_fns]
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        # NEXT_STEP: the env's next step is a reset. A restarted worker's envs start that way: the episode
        # they were in died with the old worker and was reported truncated.
        self.needs_reset = [restarted] * len(self.envs)

    def pid(self) -> int:
        """The worker's process id (the pool's readiness check; tests kill workers by it)."""
        return os.getpid()

    def spaces(self) -> tuple[gym.Space, gym.Space, dict[str, Any], str | None]:
        """``(observation_space, action_space, metadata, render_mode)`` of the first env."""
        env = self.envs[0]
        return env.observation_space, env.action_space, dict(env.metadata), env.render_mode

    def reset(
        self, local_ids: Sequence[int], seeds: Sequence[int | None], options: dict[str, Any] | None
    ) -> list[tuple[Any, dict[str, Any]]]:
        """Reset the envs ``local_ids`` with their seeds and the pool's ``options``."""
        out = []
        for i, seed in zip(local_ids, seeds, strict=True):
            out.append(self.envs[i].reset(seed=seed, options=options))
            self.needs_reset[i] = False
        return out

    def step(self, local_ids: Sequence[int], actions: Sequence[Any]) -> list[StepResult]:
        """Step the envs ``local_ids`` in order, each with its action, autoresetting as the pool's mode says."""
        return [self._step_one(i, action) for i, action in zip(local_ids, actions, strict=True)]

    def _step_one(self, i: int, action: Any) -> StepResult:
        env = self.envs[i]
        if self.autoreset_mode == AutoresetMode.NEXT_STEP and self.needs_reset[i]:
            obs, info = env.reset()
            self.needs_reset[i] = False
            return obs, 0.0, False, False, info
        obs, reward, terminated, truncated, info = env.step(action)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self.needs_reset[i] = bool(terminated or truncated)
        elif self.autoreset_mode == AutoresetMode.SAME_STEP and (terminated or truncated):
            final = {"final_obs": obs, "final_info": info}
            obs, info = env.reset()
            info = {**final, **info}
        return obs, float(reward), bool(terminated), bool(truncated), info

    def call(self, local_ids: Sequence[int], name: str, args: tuple, kwargs: dict[str, Any]) -> list[Any]:
        """``env.get_wrapper_attr(name)`` of each env, called with ``args``/``kwargs`` when it is callable."""
        out = []
        for i in local_ids:
            attr = self.envs[i].get_wrapper_attr(name)
            out.append(attr(*args, **kwargs) if callable(attr) else attr)
        return out

    def set_attr(self, local_ids: Sequence[int], name: str, values: Sequence[Any]) -> None:
        """``env.set_wrapper_attr(name, value)`` for each env and its value."""
        for i, value in zip(local_ids, values, strict=True):
            self.envs[i].set_wrapper_attr(name, value)

    def close(self) -> None:
        for env in self.envs:
            env.close()
