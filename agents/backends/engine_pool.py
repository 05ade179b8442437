"""A backend that spreads generation over several engine actors on Ray (data parallel), on one machine or a cluster.

This module holds :class:`EnginePoolBackend`. Each engine is a Ray actor (:class:`EngineWorker`) holding a
:class:`~agents.backends.base.Backend` that ``make_backend`` builds inside it: a
:class:`~agents.backends.vllm.VLLMBackend` per GPU, or a :class:`~agents.backends.hf.TransformersBackend`
with a copy of the policy.

* ``generate`` splits the prompts into contiguous chunks, one per engine, runs them at once and returns the
  generations in order. A seeded config gives the chunk that starts at prompt ``start`` the seed
  ``seed + start``: an engine that seeds request ``i`` with ``seed + i`` (vLLM) gives every request the seed
  one engine would, whatever the number of engines. An unseeded config gets a fresh random seed per call, used
  the same way: the engines' RNGs start alike, so unseeded engines would draw alike.
* ``sync_weights`` writes the weights once, as the engines load them (the peft adapter or the full weights,
  :func:`~agents.backends.vllm.write_weights`), puts the folder's files into the Ray object store once, and
  every engine writes them into its own temporary folder and loads them (``load_weights``): the nodes need
  no shared filesystem.
* An engine that dies (``ray.kill``, SIGKILL, a lost node) makes the call fail with :class:`EngineDiedError`,
  which names it; the pool does not restart engines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import random
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray
from ray.exceptions import RayActorError

from agents.backends.base import Backend, ChatPrompt, Generation, SamplingConfig
from agents.backends.vllm import write_weights
from skill_gym.vector.ray_pool import connect

if TYPE_CHECKING:
    import torch

__all__ = ["DEFAULT_ENGINE_OPTIONS", "EngineDiedError", "EnginePoolBackend", "EngineWorker"]

DEFAULT_ENGINE_OPTIONS: dict[str, Any] = {"num_cpus": 0, "scheduling_strategy": "SPREAD"}
"""Ray actor options of an engine, as the env pool's workers: spread over the nodes, no CPU reserved (so a pool
never waits for another to free cores). On GPU nodes pass ``{"num_gpus": 1}``."""


class EngineDiedError(RuntimeError):
    """An engine actor of an :class:`EnginePoolBackend` is gone; the message names it."""


class EngineWorker:
    """The Ray actor behind one engine: the backend ``make_backend`` builds, and a folder for the weights it is sent."""

    def __init__(self, make_backend: Callable[[], Backend]) -> None:
        self.backend = make_backend()
        self.weights_dir = Path(tempfile.mkdtemp(prefix="skill_gym_engine_"))

    def weights_format(self) -> str | None:
        """The weights the backend loads: ``"lora"`` (a peft adapter), ``"full"``; ``None``: it loads none."""
        return getattr(self.backend, "sync", None) if hasattr(self.backend, "load_weights") else None

    def generate(self, prompts: Sequence[ChatPrompt], sampling: SamplingConfig) -> list[Generation]:
        return self.backend.generate(prompts, sampling)

    def load_weights(self, files: dict[str, bytes], step: int) -> None:
        """Write ``files`` (relative path -> bytes) into ``step_<step>`` of this engine's folder and load them."""
        path = self.weights_dir / f"step_{step}"
        shutil.rmtree(path, ignore_errors=True)
        for name, data in files.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_bytes(data)
        self.backend.load_weights(path, step)  # type: ignore[attr-defined]  # the folder is the backend's now

    def close(self) -> None:
        self.backend.close()
        shutil.rmtree(self.weights_dir, ignore_errors=True)


class EnginePoolBackend:
    """Generation spread over ``num_engines`` Ray actors, each with its own engine; weights synced through Ray.

    Connects to Ray if it is not initialised, as :class:`~skill_gym.vector.RayVectorEnv` does
    (:func:`~skill_gym.vector.ray_pool.connect`).

    Args:
        make_backend: a picklable function without arguments that builds a backend (e.g.
            ``functools.partial(VLLMBackend, model_path, dtype="bfloat16")``); it runs inside each actor.
        num_engines: engine actors (at least 1).
        actor_options: Ray actor options of each engine (default :data:`DEFAULT_ENGINE_OPTIONS`).
        address: the Ray cluster to connect to when Ray is not initialised yet.
        start_timeout: seconds to wait for the engines to start before giving up with a clear error.

    Example:
        >>> from functools import partial
        >>> from agents.backends.vllm import VLLMBackend
        >>> pool = EnginePoolBackend(partial(VLLMBackend, "Qwen/Qwen2.5-7B-Instruct", dtype="bfloat16"), 4,
        ...                          actor_options={"num_gpus": 1})  # doctest: +SKIP
        >>> pool.generate(prompts, SamplingConfig(seed=0))  # each engine gets a quarter  # doctest: +SKIP
    """

    request_seeds = True
    """Trainers give training requests seeds: the engines' RNGs live in the actors and are not checkpointed (seeds
    make a resumed run replay), and actors started alike draw alike."""

    def __init__(
        self,
        make_backend: Callable[[], Backend],
        num_engines: int,
        actor_options: dict[str, Any] | None = None,
        address: str | None = None,
        start_timeout: float = 600.0,
    ) -> None:
        if not callable(make_backend):
            raise ValueError(f"make_backend must be a function without arguments, got {make_backend!r}")
        if isinstance(num_engines, bool) or not isinstance(num_engines, int) or num_engines < 1:
            raise ValueError(f"num_engines must be a positive integer, got {num_engines!r}")
        if actor_options is not None and not isinstance(actor_options, dict):
            raise ValueError(f"actor_options must be a dict of Ray actor options, got {actor_options!r}")
        if start_timeout <= 0:
            raise ValueError(f"start_timeout must be positive, got {start_timeout}")
        self.actor_options = dict(DEFAULT_ENGINE_OPTIONS if actor_options is None else actor_options)
        self._entropy = random.Random()  # seeded by the OS: the seeds of unseeded calls
        connect(address)
        engine = ray.remote(EngineWorker).options(**self.actor_options)
        factory = ray.put(make_backend)  # one copy in the object store, however many engines
        self._engines: list[Any] = [engine.remote(factory) for _ in range(num_engines)]
        try:
            calls = [e.weights_format.remote() for e in self._engines]
            started, _ = ray.wait(calls, num_returns=len(calls), timeout=start_timeout)
            if len(started) < len(calls):
                raise RuntimeError(
                    f"{num_engines - len(started)} of {num_engines} engines did not start within {start_timeout:.0f} s: "
                    f"each asks for {self.actor_options}; the cluster has {ray.cluster_resources()} and "
                    f"{ray.available_resources()} free"
                )
            formats = self._get(calls)
        except BaseException:
            self._kill()
            raise
        self.sync: str | None = formats[0]
        """The weights the engines load (``"lora"``: the peft adapter; ``"full"``); ``None``: they load none."""
        if any(f != self.sync for f in formats):
            self._kill()
            raise ValueError(f"the engines load different weights: {formats}")

    @property
    def num_engines(self) -> int:
        return len(self._engines)

    @property
    def actors(self) -> list[Any]:
        """The engines' Ray actor handles, in chunk order (empty once closed)."""
        return list(self._engines)

    def generate(self, prompts: Sequence[ChatPrompt], sampling: SamplingConfig) -> list[Generation]:
        """One :class:`Generation` per prompt, in order; each engine generates one contiguous chunk, all at once."""
        self._assert_open()
        calls = {}
        base = self._entropy.randrange(2**31) if sampling.seed is None else sampling.seed
        for w, chunk in enumerate(_chunks(len(prompts), self.num_engines)):
            if chunk:
                seed = base + chunk.start
                part = list(prompts[chunk.start : chunk.stop])
                calls[w] = self._engines[w].generate.remote(part, dataclasses.replace(sampling, seed=seed))
        parts = self._get(list(calls.values()), engines=list(calls))
        return [g for part in parts for g in part]

    def sync_weights(self, model: torch.nn.Module, step: int, run_dir: str | Path) -> None:
        """Write ``model``'s weights once under ``run_dir/engine_weights``, send them to every engine and load them."""
        self._assert_open()
        if self.sync is None:
            raise TypeError("the engines cannot load weights: their backend has no load_weights")
        path = Path(run_dir) / "engine_weights" / f"step_{step}"
        try:
            write_weights(model, path, self.sync)  # type: ignore[arg-type]
            files = {str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()}
        finally:
            shutil.rmtree(path, ignore_errors=True)
        shipped = ray.put(files)
        self._get([e.load_weights.remote(shipped, step) for e in self._engines])

    def close(self, timeout: float = 60.0) -> None:
        """Close each engine's backend (up to ``timeout`` seconds), then end the actors. Closing twice is fine."""
        if not self._engines or not ray.is_initialized():
            self._engines = []
            return
        closing = [e.close.remote() for e in self._engines]
        ray.wait(closing, num_returns=len(closing), timeout=timeout)
        self._kill()

    def _get(self, refs: list[Any], engines: list[int] | None = None) -> list[Any]:
        """``ray.get`` of one call per engine (``engines[k]`` made ``refs[k]``; default all, in order)."""
        engines = list(range(len(refs))) if engines is None else engines
        out = []
        for w, ref in zip(engines, refs, strict=True):
            try:
                out.append(ray.get(ref))
            except RayActorError as error:
                raise EngineDiedError(
                    f"engine {w} of {self.num_engines} died ({type(error).__name__}); the pool does not restart "
                    f"engines: close it and make a new one. {error}"
                ) from error
        return out

    def _kill(self) -> None:
        for engine in self._engines:
            with contextlib.suppress(Exception):  # already gone with its node or with Ray
                ray.kill(engine, no_restart=True)
        self._engines = []

    def _assert_open(self) -> None:
        if not self._engines:
            raise RuntimeError("this EnginePoolBackend is closed")


def _chunks(n: int, k: int) -> list[range]:
    """``range(n)`` cut into ``k`` contiguous chunks whose sizes differ by at most one (the first are longer).

    >>> _chunks(5, 2), _chunks(1, 3)
    ([range(0, 3), range(3, 5)], [range(0, 1), range(1, 1), range(1, 1)])
    """
    size, extra = divmod(n, k)
    bounds = [0]
    for w in range(k):
        bounds.append(bounds[-1] + size + (w < extra))
    return [range(a, b) for a, b in itertools.pairwise(bounds)]
