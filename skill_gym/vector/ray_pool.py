"""A Gymnasium vector env whose envs live in Ray actors, on this machine or spread over a Ray cluster.

This module holds :class:`RayVectorEnv` and :func:`make_ray_vec` (what ``skill_gym.make_vec(...,
vectorization_mode="ray")`` calls). Each worker is a Ray actor (:class:`~skill_gym.vector.env_worker.EnvWorker`)
holding one or more envs, so 32 envs need not mean 32 processes.

* ``reset``/``step`` are Gymnasium's vector API (text observations batch as tuples of strings, infos as
  ``SyncVectorEnv`` batches them, autoreset ``NEXT_STEP`` by default, ``SAME_STEP`` and ``DISABLED`` too).
* ``step_async(actions, env_ids)`` + ``step_wait(timeout, min_ready)`` step some envs and return the results
  that are ready without waiting for the slowest env (envpool's ``send``/``recv``): ``infos["env_id"]``
  says which envs the batch holds.
* A worker that dies (``ray.kill``, SIGKILL, a lost node) is replaced by a new actor with fresh envs; the
  episodes it held are reported ``truncated=True`` with ``info["worker_restarted"]`` (and the cause in
  ``info["worker_error"]``), and the pool keeps going.
* Skill envs in different workers pointed at one library path share it: the library is SQLite (WAL) and
  every process catches up with the others' writes before it retrieves.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
import ray
from gymnasium.error import AlreadyPendingCallError, ClosedEnvironmentError, NoAsyncCallError
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array, iterate
from ray.exceptions import GetTimeoutError, RayActorError

from skill_gym.vector.env_worker import EnvWorker, StepResult, make_env

__all__ = ["RayVectorEnv", "make_ray_vec"]

DEFAULT_WORKER_OPTIONS: dict[str, Any] = {"num_cpus": 0, "scheduling_strategy": "SPREAD"}
"""Ray actor options of a worker: spread over the cluster's nodes, no CPU reserved (so a second pool, e.g.
validation beside training, never waits for the first to free cores). ``{"num_cpus": 1}`` reserves one."""


class RayVectorEnv(gym.vector.VectorEnv):
    """Vectorized env over Ray actors that each hold a few envs; steps all envs or only some of them.

    Connects to Ray if it is not initialised: to ``address`` (or ``$RAY_ADDRESS``) when given, else a
    local Ray with the dashboard off, bound to 127.0.0.1. An initialised Ray is reused as it is.

    Args:
        env_fns: one picklable function per env that makes it (as for ``AsyncVectorEnv``).
        num_workers: Ray actors to spread the envs over (default: one per CPU of the cluster, at most
            one per env).
        envs_per_worker: envs an actor holds at most (sets ``num_workers`` when that is not given).
        worker_options: Ray actor options of each worker (default :data:`DEFAULT_WORKER_OPTIONS`).
        address: the Ray cluster to connect to when Ray is not initialised yet.
        autoreset_mode: Gymnasium's autoreset mode (default ``NEXT_STEP``, as ``make_vec``'s envs).
        start_timeout: seconds to wait for the workers to start before giving up with a clear error.

    Example:
        >>> import skill_gym
        >>> envs = skill_gym.make_vec("Keyword-v0", 4, vectorization_mode="ray", vector_kwargs={"num_workers": 2})
        >>> envs.worker_env_ids
        [[0, 1], [2, 3]]
        >>> obs, infos = envs.reset(seed=0, options={"task_id": "echo/apple"})
        >>> obs["task"]
        ("Answer with the word 'apple'.", "Answer with the word 'apple'.", "Answer with the word 'apple'.", "Answer with the word 'apple'.")
        >>> envs.step(["apple", "river", "apple", "apple"])[1]
        array([1., 0., 1., 1.])
        >>> envs.step_async(["apple"], env_ids=[1])  # step one env; collect whatever is ready
        >>> obs, rewards, terminated, truncated, infos = envs.step_wait(min_ready=1)
        >>> infos["env_id"], rewards, terminated
        (array([1]), array([1.]), array([ True]))
        >>> envs.close()
    """

    def __init__(
        self,
        env_fns: Sequence[Callable[[], gym.Env]],
        num_workers: int | None = None,
        envs_per_worker: int | None = None,
        *,
        worker_options: dict[str, Any] | None = None,
        address: str | None = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        start_timeout: float = 300.0,
    ) -> None:
        super().__init__()
        if not env_fns:
            raise ValueError("RayVectorEnv needs at least one env function")
        self.num_envs = len(env_fns)
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        self.worker_options = dict(DEFAULT_WORKER_OPTIONS if worker_options is None else worker_options)
        self.start_timeout = start_timeout
        connect(address)
        num_workers = _resolve_num_workers(self.num_envs, num_workers, envs_per_worker)
        self.worker_env_ids: list[list[int]] = [
            [int(i) for i in chunk] for chunk in np.array_split(np.arange(self.num_envs), num_workers)
        ]
        """The env ids each worker holds, by worker."""
        self._slots = [(w, k) for w, ids in enumerate(self.worker_env_ids) for k in range(len(ids))]
        self._env_fns = list(env_fns)
        self._actor_class = ray.remote(EnvWorker)
        self._workers: list[Any] = []
        try:
            self._workers = [self._start_worker(w, restarted=False) for w in range(num_workers)]
            self._wait_started(self._workers)
            observation_space, action_space, metadata, render_mode = ray.get(self._workers[0].spaces.remote())
        except BaseException:
            self._kill_workers()
            raise
        self.single_observation_space = observation_space
        self.single_action_space = action_space
        self.observation_space = batch_space(observation_space, self.num_envs)
        self.action_space = batch_space(action_space, self.num_envs)
        self.metadata = {**metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = render_mode
        self._last_obs: list[Any] = [None] * self.num_envs  # each env's latest observation
        self._episode_over = np.ones(self.num_envs, dtype=np.bool_)  # no episode running (none yet, or it ended)
        self._in_flight: dict[Any, tuple[int, Any, list[int], list[Any]]] = {}  # step -> (worker, actor, ids, actions)
        self._busy: set[int] = set()  # stepped, result not yet returned
        self._ready: dict[int, StepResult] = {}  # results that arrived and wait to be returned
        self._lost: dict[int, StepResult] = {}  # envs whose episode died with a worker: their next step result

    # -- the vector API -----------------------------------------------------------------------------

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset every env (or those in ``options["reset_mask"]``), as ``SyncVectorEnv.reset`` does."""
        self._assert_open()
        if self._busy:
            raise AlreadyPendingCallError("reset while a step is pending: call step_wait() first", "step")
        seeds = _seeds(seed, self.num_envs)
        options = dict(options) if options is not None else None
        env_ids = list(range(self.num_envs))
        if options is not None and "reset_mask" in options:
            mask = np.asarray(options.pop("reset_mask"))
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_ or not mask.any():
                raise ValueError(
                    f"options['reset_mask'] must be a bool array of shape ({self.num_envs},), not all False"
                )
            env_ids = [int(i) for i in np.flatnonzero(mask)]
        outputs = self._on_workers(
            env_ids, lambda actor, local, ids: actor.reset.remote(local, [seeds[i] for i in ids], options)
        )
        infos: dict[str, Any] = {}
        for i, (obs, info) in outputs.items():
            self._last_obs[i] = obs
            self._episode_over[i] = False
            self._lost.pop(i, None)
            infos = self._add_info(infos, info, i)
        return self._concatenate(self._last_obs), infos

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every env with its action and wait for all of them (Gymnasium's ``VectorEnv.step``)."""
        self.step_async(actions)
        ids, results = self._wait(timeout=None, min_ready=self.num_envs)
        return self._batch(ids, results)

    def step_async(self, actions: Any, env_ids: Sequence[int] | None = None) -> None:
        """Send ``actions`` to the envs ``env_ids`` (default: all, in order) and return at once.

        Envs still stepping from an earlier call cannot be stepped again until their result was returned
        by :meth:`step_wait`; the other envs can.
        """
        self._assert_open()
        if env_ids is None:
            if self._busy:
                raise AlreadyPendingCallError(
                    f"envs {sorted(self._busy)} are still stepping: call step_wait() first, or pass env_ids", "step"
                )
            ids = list(range(self.num_envs))
        else:
            ids = self._check_env_ids(env_ids)
        if isinstance(actions, str | bytes):
            raise TypeError(f"actions must be a sequence of one action per env, got a single {type(actions).__name__}")
        items = list(iterate(batch_space(self.single_action_space, len(ids)), actions))
        if len(items) != len(ids):
            raise ValueError(f"got {len(items)} actions for {len(ids)} envs")
        by_worker: dict[int, tuple[list[int], list[int], list[Any]]] = {}
        for i, action in zip(ids, items, strict=True):
            if i in self._lost:  # its episode died with its worker: report that, step nothing
                self._ready[i] = self._lost.pop(i)
                continue
            w, k = self._slots[i]
            ids_w, local, acts = by_worker.setdefault(w, ([], [], []))
            ids_w.append(i)
            local.append(k)
            acts.append(action)
        for w, (ids_w, local, acts) in by_worker.items():
            actor = self._workers[w]
            self._in_flight[actor.step.remote(local, acts)] = (w, actor, ids_w, acts)
        self._busy.update(ids)

    def step_wait(
        self, timeout: float | None = None, min_ready: int | None = None
    ) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Results of stepped envs: once ``min_ready`` of them are ready (default: all), every ready one.

        A worker's envs come back together (it steps them one after another). The batch is ordered by env
        id and ``infos["env_id"]`` names the envs. Raises ``TimeoutError`` when fewer than ``min_ready``
        results arrived within ``timeout`` seconds; the rest stay pending for the next call.
        """
        self._assert_open()
        if not self._busy:
            raise NoAsyncCallError("step_wait() without a pending step_async()", "step")
        want = len(self._busy) if min_ready is None else min(int(min_ready), len(self._busy))
        if want < 1:
            raise ValueError(f"min_ready must be at least 1, got {min_ready}")
        ids, results = self._wait(timeout, want)
        obs, rewards, terminated, truncated, infos = self._batch(ids, results)
        infos["env_id"] = np.asarray(ids, dtype=np.int64)
        return obs, rewards, terminated, truncated, infos

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call method ``name`` (or read attribute ``name``) of every env (through its wrappers)."""
        outputs = self._on_workers(
            range(self.num_envs), lambda actor, local, _: actor.call.remote(local, name, args, kwargs)
        )
        return tuple(outputs[i] for i in range(self.num_envs))

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Attribute ``name`` of every env."""
        return self.call(name)

    def set_attr(self, name: str, values: Any) -> None:
        """Set attribute ``name`` of every env: one value each (a list or tuple), or one value for all."""
        if not isinstance(values, list | tuple):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(f"got {len(values)} values for {self.num_envs} envs")
        self._on_workers(
            range(self.num_envs), lambda actor, local, ids: actor.set_attr.remote(local, name, [values[i] for i in ids])
        )

    def render(self) -> tuple[Any, ...]:
        return self.call("render")

    def worker_pids(self) -> list[int]:
        """Process id of each worker (the order of :attr:`worker_env_ids`)."""
        self._assert_open()
        return ray.get([actor.pid.remote() for actor in self._workers])

    def close_extras(self, timeout: float = 30.0, **kwargs: Any) -> None:
        """Close every env in its worker (up to ``timeout`` seconds), then end the workers."""
        if not getattr(self, "_workers", None) or not ray.is_initialized():
            return
        closing = [actor.close.remote() for actor in self._workers]
        ray.wait(closing, num_returns=len(closing), timeout=timeout)
        self._kill_workers()

    # -- workers ------------------------------------------------------------------------------------

    def _start_worker(self, w: int, restarted: bool) -> Any:
        fns = [self._env_fns[i] for i in self.worker_env_ids[w]]
        return self._actor_class.options(**self.worker_options).remote(fns, self.autoreset_mode, restarted)

    def _wait_started(self, actors: Sequence[Any]) -> None:
        try:
            ray.get([actor.pid.remote() for actor in actors], timeout=self.start_timeout)
        except GetTimeoutError:
            raise RuntimeError(
                f"{len(actors)} Ray env workers did not start within {self.start_timeout:.0f} s: each asks for "
                f"{self.worker_options}; the cluster has {ray.cluster_resources()} and "
                f"{ray.available_resources()} free"
            ) from None

    def _restart(self, w: int, error: BaseException) -> None:
        """Replace dead worker ``w``; every episode it held becomes a truncated step result in ``_lost``."""
        dead = self._workers[w]
        ray.kill(dead, no_restart=True)
        actor = self._start_worker(w, restarted=True)
        self._wait_started([actor])
        self._workers[w] = actor
        ids = self.worker_env_ids[w]
        flag = {
            "worker_restarted": True,
            "worker_error": f"env worker {w} died ({type(error).__name__}); its envs {ids} were made anew",
        }
        logging.getLogger(__name__).warning(flag["worker_error"])
        if self.autoreset_mode == AutoresetMode.SAME_STEP:  # the result is already the next episode's start
            fresh = ray.get(actor.reset.remote(list(range(len(ids))), [None] * len(ids), None))
            for i, (obs, info) in zip(ids, fresh, strict=True):
                final = {"final_obs": self._last_obs[i], "final_info": dict(flag)}
                self._lost[i] = (obs, 0.0, False, True, {**final, **info, **flag})
        else:  # NEXT_STEP: the new worker resets these envs at their next step; DISABLED: the caller does
            for i in ids:
                if not self._episode_over[i]:  # an episode that had ended already lost nothing
                    self._lost[i] = (self._last_obs[i], 0.0, False, True, dict(flag))

    def _on_workers(self, env_ids: Sequence[int], send: Callable[[Any, list[int], list[int]], Any]) -> dict[int, Any]:
        """``send(actor, local_ids, env_ids)`` to each worker holding some of ``env_ids``; one output per env.

        A worker found dead is restarted and asked again.
        """
        self._assert_open()
        groups: dict[int, list[int]] = {}
        for i in env_ids:
            groups.setdefault(self._slots[i][0], []).append(i)
        calls = {w: send(self._workers[w], [self._slots[i][1] for i in ids], ids) for w, ids in groups.items()}
        outputs: dict[int, Any] = {}
        for w, ref in calls.items():
            try:
                values = ray.get(ref)
            except RayActorError as error:
                self._restart(w, error)
                ids = groups[w]
                values = ray.get(send(self._workers[w], [self._slots[i][1] for i in ids], ids))
            for i, value in zip(groups[w], values or [None] * len(groups[w]), strict=True):
                outputs[i] = value
        return outputs

    def _kill_workers(self) -> None:
        for actor in self._workers:
            with contextlib.suppress(Exception):  # already gone with its node or with Ray
                ray.kill(actor, no_restart=True)
        self._workers = []

    # -- step results -------------------------------------------------------------------------------

    def _wait(self, timeout: float | None, min_ready: int) -> tuple[list[int], list[StepResult]]:
        """Collect step results until ``min_ready`` are ready, then every ready one; pop and return them."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while len(self._ready) < min_ready:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = ray.wait(list(self._in_flight), num_returns=1, timeout=remaining)
            if not done:
                raise TimeoutError(
                    f"{len(self._ready)} of {min_ready} step results ready after {timeout} s; "
                    "the rest are still pending: call step_wait() again"
                )
            self._collect(done[0])
        if self._in_flight:
            done, _ = ray.wait(list(self._in_flight), num_returns=len(self._in_flight), timeout=0)
            for ref in done:
                self._collect(ref)
        ids = sorted(self._ready)
        results = [self._ready.pop(i) for i in ids]
        self._busy.difference_update(ids)
        return ids, results

    def _collect(self, ref: Any) -> None:
        w, actor, ids, actions = self._in_flight.pop(ref)
        try:
            try:
                results = ray.get(ref)
            except RayActorError as error:
                if self._workers[w] is actor:  # not replaced yet by an earlier failed call
                    self._restart(w, error)
                results = self._after_restart(w, ids, actions)
        except BaseException:
            self._busy.difference_update(ids)  # an env raised: its error goes to the caller
            raise
        for i, result in zip(ids, results, strict=True):
            self._ready[i] = result
            self._last_obs[i] = result[0]
            self._episode_over[i] = result[2] or result[3]

    def _after_restart(self, w: int, ids: list[int], actions: list[Any]) -> list[StepResult]:
        """Results of a step call that died with worker ``w``: an episode it held is reported truncated; an env
        whose episode had ended lost nothing, so the new worker takes its step (``NEXT_STEP``: a reset)."""
        again = [(i, action) for i, action in zip(ids, actions, strict=True) if i not in self._lost]
        if again:
            local = [self._slots[i][1] for i, _ in again]
            fresh = ray.get(self._workers[w].step.remote(local, [action for _, action in again]))
            self._lost.update((i, result) for (i, _), result in zip(again, fresh, strict=True))
        return [self._lost.pop(i) for i in ids]

    def _batch(
        self, ids: list[int], results: list[StepResult]
    ) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        batch = _InfoBatch(len(ids))
        infos: dict[str, Any] = {}
        for j, result in enumerate(results):
            infos = batch._add_info(infos, result[4], j)
        return (
            self._concatenate([r[0] for r in results]),
            np.array([r[1] for r in results], dtype=np.float64),
            np.array([r[2] for r in results], dtype=np.bool_),
            np.array([r[3] for r in results], dtype=np.bool_),
            infos,
        )

    def _concatenate(self, observations: list[Any]) -> Any:
        out = create_empty_array(self.single_observation_space, n=len(observations), fn=np.zeros)
        return concatenate(self.single_observation_space, observations, out)

    def _check_env_ids(self, env_ids: Sequence[int]) -> list[int]:
        ids = [int(i) for i in env_ids]
        unknown = [i for i in ids if not 0 <= i < self.num_envs]
        if unknown:
            raise ValueError(f"unknown env ids {unknown}: the pool has envs 0..{self.num_envs - 1}")
        if len(set(ids)) != len(ids):
            raise ValueError(f"env ids repeat: {ids}")
        stepping = sorted(self._busy.intersection(ids))
        if stepping:
            raise AlreadyPendingCallError(f"envs {stepping} are still stepping: collect them with step_wait()", "step")
        return ids

    def _assert_open(self) -> None:
        if self.closed:
            raise ClosedEnvironmentError("this RayVectorEnv is closed")


class _InfoBatch:
    """Gymnasium's info batching (``VectorEnv._add_info``) for a batch of ``num_envs`` results."""

    _add_info = gym.vector.VectorEnv._add_info

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs


def connect(address: str | None = None) -> None:
    """Initialise Ray unless it is: the cluster at ``address`` (or ``$RAY_ADDRESS``; ``"auto"``: the one
    ``ray start`` made on this machine), else a new local Ray bound to 127.0.0.1 with the dashboard off."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
    else:  # "local": never a cluster some earlier `ray start` left recorded in /tmp/ray
        ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1", logging_level=logging.WARNING)


def _resolve_num_workers(num_envs: int, num_workers: int | None, envs_per_worker: int | None) -> int:
    for name, value in (("num_workers", num_workers), ("envs_per_worker", envs_per_worker)):
        if value is not None and (not isinstance(value, int | np.integer) or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if num_workers is None:
        if envs_per_worker is not None:
            return math.ceil(num_envs / envs_per_worker)
        return max(1, min(num_envs, int(ray.cluster_resources().get("CPU", 1))))
    if num_workers > num_envs:
        raise ValueError(f"num_workers={num_workers} is more than num_envs={num_envs}")
    if envs_per_worker is not None and num_workers * envs_per_worker < num_envs:
        raise ValueError(f"{num_workers} workers x {envs_per_worker} envs each cannot hold {num_envs} envs")
    return num_workers


def _seeds(seed: int | Sequence[int | None] | None, n: int) -> list[int | None]:
    if seed is None:
        return [None] * n
    if isinstance(seed, int | np.integer):
        return [int(seed) + i for i in range(n)]
    seeds = list(seed)
    if len(seeds) != n:
        raise ValueError(f"got {len(seeds)} seeds for {n} envs")
    return seeds


def make_ray_vec(
    env_id: str,
    num_envs: int = 1,
    vector_kwargs: dict[str, Any] | None = None,
    wrappers: Sequence[Callable[[gym.Env], gym.Env]] | None = None,
    **kwargs: Any,
) -> RayVectorEnv:
    """``gym.make_vec``'s arguments, for a :class:`RayVectorEnv`: ``vector_kwargs`` go to the pool, ``kwargs``
    to each env, and ``wrappers`` wrap each env inside its worker."""
    gym.spec(env_id)  # an unknown id fails here, with Gymnasium's message, before any worker starts
    fn = partial(make_env, env_id, dict(kwargs), tuple(wrappers or ()))
    return RayVectorEnv([fn] * num_envs, **(vector_kwargs or {}))
