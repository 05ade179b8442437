"""The GRPO trainer for multi-turn text agents (CleanRL-style: one loop, read top to bottom).

This module holds :class:`GRPOTrainer`. One step (:meth:`GRPOTrainer.train_step`):

1. **collect** — sample ``tasks_per_step`` tasks; run ``group_size`` rollouts of each in one vector env
   (:func:`agents.rollout.rollout`);
2. **advantage** — give every turn an advantage (:meth:`GRPOTrainer.turn_advantages`: the
   group-normalized outcome return in plain GRPO; Skill1 overrides it per phase);
3. **update** — the token-level clipped surrogate, low-variance KL and entropy bonus over the response
   tokens of every turn (:class:`agents.grpo.update.PolicyUpdate`), then the rollout backend gets the
   new weights;
4. **log and checkpoint** — :class:`agents.run_logger.RunLogger` and :mod:`agents.grpo.checkpoint`.

Validation runs through :func:`agents.evaluation.evaluate`. Subclasses hook in through
:meth:`turn_advantages`, :meth:`episode_metrics`, :meth:`on_step_end`, :meth:`extra_state` and
:meth:`load_extra_state`. Nothing here depends on which env is trained: the env's own instructions
say how to prompt it and how to read the policy's answers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import skill_gym
from agents.backends.base import Backend, SamplingConfig
from agents.backends.hf import LoraSettings, TransformersBackend, load_policy
from agents.distributed import copy_full_weights, frozen_copy, init_world
from agents.evaluation import evaluate, make_rollout_envs, success_by_type
from agents.grpo.advantages import episode_return, gigpo_turn_advantages, grpo_turn_advantages, step_group_sizes
from agents.grpo.checkpoint import latest_checkpoint, load_checkpoint, load_rank_state, save_checkpoint
from agents.grpo.config import GRPOConfig
from agents.grpo.update import PolicyUpdate, Sample, release_freed_memory
from agents.prompts import PromptBuilder
from agents.rollout import Episode, RolloutStats, rollout, rollout_seed
from agents.run_logger import RunLogger
from skill_gym.library import LibraryServer, SkillLibrary, is_library_url
from skill_gym.library.service import TOKEN_VARIABLE

__all__ = ["GRPOTrainer", "Sample"]


class GRPOTrainer:
    """Multi-turn GRPO on any skill_gym env.

    Example:
        >>> trainer = GRPOTrainer(GRPOConfig.cpu_defaults(env_id="SkillKeyword-v0"))  # doctest: +SKIP
        >>> history = trainer.train()  # doctest: +SKIP
    """

    def __init__(
        self,
        config: GRPOConfig,
        model: torch.nn.Module | None = None,
        tokenizer: Any = None,
        backend: Backend | None = None,
    ) -> None:
        self.config = config
        self.run_dir = Path(config.run_dir)
        self.world = init_world(config.device, config.dist_timeout_minutes, single_group=config.fsdp_offload)
        self.sharded = self.world.distributed or config.fsdp_offload  # FSDP2 holds the policy
        n_episodes = config.tasks_per_step * config.group_size
        if n_episodes < self.world.size:
            raise ValueError(f"{n_episodes} rollouts per step (tasks_per_step x group_size) cannot be spread over "
                             f"{self.world.size} ranks: use at least one per rank")  # fmt: skip
        earlier = latest_checkpoint(self.run_dir)
        if earlier is not None and not config.resume:  # a new run here would mix with it and prune its checkpoints
            raise ValueError(f"{self.run_dir} holds a run (checkpoint {earlier.name}): pass resume=True (--resume) "
                             "to continue it, or another run_dir (--run-dir)")  # fmt: skip
        if earlier is not None:
            _check_resumable(self.run_dir / "config.json", config)
        if self.world.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        _seed_everything(config.seed)  # the same initial weights (a LoRA adapter's too) on every rank
        if model is None:
            lora = LoraSettings(rank=config.lora_rank, alpha=config.lora_alpha) if config.lora_rank > 0 else None
            # sharded training keeps float32 master weights and computes in bfloat16 (shard_policy)
            dtype = "float32" if self.sharded else config.dtype
            model, tokenizer = load_policy(config.model, lora=lora, dtype=dtype, device=config.device)
        self.model = model
        self.tokenizer = tokenizer
        # a distributed run generates with an unsharded copy that gets the full weights once a step (verl's hybrid engine)
        self.rollout_model = frozen_copy(model, config.dtype) if self.sharded else model
        self.policy = PolicyUpdate(model, tokenizer, config, self.world)
        if self.world.distributed:  # each rank samples its own rollouts
            torch.manual_seed(rollout_seed(config.seed, 0, self.world.rank))
        self._library_server: LibraryServer | None = None
        self.backend = backend or self._make_backend()
        self.env_kwargs = self._resolve_env_kwargs(dict(config.env_kwargs))
        self.envs = make_rollout_envs(
            config.env_id, len(self.world.share(n_episodes)), self.env_kwargs, config.vectorization_mode,
            config.vector_kwargs,
        )  # fmt: skip
        self.builder = PromptBuilder(self.envs.get_attr("instructions")[0], history_length=config.history_length)
        self.task_ids: list[str] = list(self.envs.get_attr("task_ids")[0])
        self.sampler = np.random.default_rng(config.seed)
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.logger = (
            RunLogger(self.run_dir, config.wandb_project, dataclasses.asdict(config)) if self.world.main else None
        )
        if config.resume:
            self.load_checkpoint()
        if self.world.main:
            config.save(self.run_dir / "config.json")

    # -- set-up helpers ------------------------------------------------------------------------

    def _make_backend(self) -> Backend:
        cfg = self.config
        batch_size = max(cfg.micro_batch_size, 8)
        if cfg.num_engines != 1 and self.world.distributed:
            raise ValueError("num_engines > 1 (a Ray engine pool) is not available in a distributed (torchrun) run yet: "
                             "each rank generates with its own engine")  # fmt: skip
        if cfg.num_engines != 1:  # engines built inside Ray actors, weights synced through Ray
            import types
            from functools import partial

            from agents.backends.engine_pool import EnginePoolBackend

            if cfg.backend == "vllm":
                from agents.backends.vllm import VLLMBackend

                # for_policy reads only the policy's peft config: the actors need not get its weights
                shape = types.SimpleNamespace(peft_config=getattr(self.model, "peft_config", None))
                make: Any = partial(VLLMBackend.for_policy, shape, cfg.model, dtype=cfg.dtype, seed=cfg.seed,
                                    device=cfg.device)  # fmt: skip
            else:  # a copy of the policy in each actor
                make = partial(TransformersBackend, self.model, self.tokenizer, batch_size=batch_size)
            address = cfg.vector_kwargs.get("address") if cfg.vectorization_mode == "ray" else None
            return EnginePoolBackend(make, cfg.num_engines, cfg.engine_options or None, address=address)
        if cfg.backend == "vllm":
            from agents.backends.vllm import VLLMBackend

            on_gpu = (
                {"gpu_memory_utilization": cfg.vllm_gpu_memory_utilization} if cfg.device.startswith("cuda") else {}
            )
            return VLLMBackend.for_policy(self.rollout_model, cfg.model, dtype=cfg.dtype, seed=cfg.seed + self.world.rank,
                                          device=cfg.device, sleep_level=cfg.vllm_sleep_level, **on_gpu)  # fmt: skip
        return TransformersBackend(self.rollout_model, self.tokenizer, batch_size=batch_size)

    def _resolve_env_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Skill envs get a library inside the run directory unless the user named one; with ``library_service``,
        and always on several ranks, rank 0 serves it and every rank's envs get its URL."""
        cfg = self.config
        if not skill_gym.is_skill_env(cfg.env_id):
            return kwargs
        kwargs.setdefault("library", str(self.run_dir / "library.sqlite"))
        if (cfg.library_service or self.world.distributed) and not is_library_url(kwargs["library"]):
            url = None
            if self.world.main:
                library = SkillLibrary(kwargs["library"], **self.library_options())
                self._library_server = LibraryServer(library, host=cfg.library_host).start()
                url = self._library_server.url
            kwargs["library"] = self.world.broadcast(url)
            if os.environ.get(TOKEN_VARIABLE):  # workers on other nodes do not see this process's environment
                kwargs["library_token"] = os.environ[TOKEN_VARIABLE]
        return kwargs

    def library_options(self) -> dict[str, Any]:
        """Keyword arguments of the served :class:`~skill_gym.library.SkillLibrary` (a learner's own settings)."""
        return {}

    @property
    def library_path(self) -> Path | None:
        """The run's library file (the served one with a library service; ``None`` on other ranks or without one)."""
        if self._library_server is not None:
            return self._library_server.library.path
        path = self.env_kwargs.get("library")
        return Path(path) if path and not is_library_url(path) else None

    # -- the loop ------------------------------------------------------------------------------

    def train(self) -> list[dict[str, Any]]:
        """Run until ``total_steps``; returns the metrics of every step of this call."""
        from tqdm.auto import tqdm

        done: list[dict[str, Any]] = []
        show = self.config.progress and self.world.main
        bar = tqdm(total=self.config.total_steps, initial=self.step, disable=not show, desc="grpo")
        while self.step < self.config.total_steps:
            metrics = self.train_step()
            done.append(metrics)
            bar.update(1)
            bar.set_postfix(
                reward=f"{metrics['reward/mean']:.2f}", success=f"{metrics['success/all']:.2f}",
                tok_s=f"{metrics['perf/tokens_per_s']:.0f}",
            )  # fmt: skip
        bar.close()
        return done

    def train_step(self) -> dict[str, Any]:
        """One policy update: collect, assign advantages, optimize, log, maybe checkpoint."""
        started = time.perf_counter()
        episodes, stats = self.collect()
        advantages = self.turn_advantages(episodes)
        samples = [
            Sample(turn.prompt_ids, turn.response_ids, float(adv), turn.phase)
            for episode, per_turn in zip(episodes, advantages, strict=True)
            for turn, adv in zip(episode.turns, per_turn, strict=True)
            if turn.response_ids
        ]
        update = self.update(samples)
        self.step += 1
        metrics = {"step": self.step, **self.episode_metrics(episodes), **update}
        metrics.update(_perf_metrics(stats, time.perf_counter() - started))
        metrics.update(self.on_step_end(episodes))
        if self.config.eval_every and self.step % self.config.eval_every == 0:
            metrics.update({f"val/{k}": v for k, v in self.world.on_main(self.evaluate).items()})
        metrics = self.world.broadcast(metrics)  # rank 0's view (its library, its clock) on every rank
        self.log(metrics)
        if self.step % self.config.save_every == 0 or self.step == self.config.total_steps:
            self.save_checkpoint()
        return metrics

    def collect(self) -> tuple[list[Episode], RolloutStats]:
        """``group_size`` rollouts of each of ``tasks_per_step`` sampled tasks."""
        cfg = self.config
        if self.task_ids:
            replace = len(self.task_ids) < cfg.tasks_per_step
            chosen = list(self.sampler.choice(len(self.task_ids), size=cfg.tasks_per_step, replace=replace))
            tasks: list[str | None] = [self.task_ids[i] for i in chosen]
        else:
            tasks = [None] * cfg.tasks_per_step
        task_seeds = self.sampler.integers(0, 2**31 - 1, size=cfg.tasks_per_step).tolist()
        task_ids = [t for t in tasks for _ in range(cfg.group_size)]
        seeds = [s for s in task_seeds for _ in range(cfg.group_size)]
        groups = [g for g in range(cfg.tasks_per_step) for _ in range(cfg.group_size)]
        # backends that take per-request seeds (transformers, vLLM) get them: rollouts are a function of (run seed,
        # step, rank, request) alone, so a resumed run replays and nothing else drawing randomness can move them
        seed = (
            rollout_seed(cfg.seed, self.step, self.world.rank)
            if getattr(self.backend, "request_seeds", False)
            else None
        )
        sampling = SamplingConfig(
            max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p, seed=seed
        )
        mine = self.world.share(len(task_ids))  # several ranks: each runs its share, then all see every episode
        episodes, stats = rollout(
            self.envs, self.backend, self.builder, task_ids[mine.start : mine.stop], seeds[mine.start : mine.stop],
            sampling, groups=groups[mine.start : mine.stop], policy_step=self.step, max_turns=cfg.max_turns,
        )  # fmt: skip
        if not self.world.distributed:
            return episodes, stats
        parts = self.world.all_gather((episodes, stats))
        return [e for part, _ in parts for e in part], _merged_stats([s for _, s in parts])

    def turn_advantages(self, episodes: Sequence[Episode]) -> list[list[float]]:
        """GRPO: each turn's group-normalized return (``group_stats``, ``invalid_penalty_scope``); with
        ``advantage="gigpo"`` plus ω times GiGPO's step-level advantage."""
        cfg = self.config
        common = dict(
            reward_scale=cfg.reward_scale, invalid_penalty=cfg.invalid_penalty, use_std=cfg.norm_adv_by_std,
            group_stats=cfg.group_stats, invalid_scope=cfg.invalid_penalty_scope, invalid_kind=cfg.invalid_kind,
        )  # fmt: skip
        if cfg.advantage == "gigpo":
            return gigpo_turn_advantages(episodes, **common, step_weight=cfg.gigpo_step_weight, gamma=cfg.gigpo_gamma)
        return grpo_turn_advantages(episodes, **common)

    def update(self, samples: list[Sample]) -> dict[str, float]:
        """Optimize on ``samples`` (:class:`~agents.grpo.update.PolicyUpdate`), then push the weights to the backend."""
        engine_sleeps = callable(getattr(self.backend, "sleep", None))
        if engine_sleeps:  # a colocated vLLM engine hands its GPU memory to the update
            self.backend.sleep()
        metrics = self.policy(samples)
        release_freed_memory()  # activations and logits are gone: give their pages back before the next rollout
        if engine_sleeps:
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                torch.cuda.empty_cache()  # what the update freed goes back to the engine's KV cache
            self.backend.wake_up()
        self.sync_rollout_weights(self.step + 1)
        return metrics

    def sync_rollout_weights(self, step: int) -> None:
        """The rollout backend gets the policy's weights: on several ranks first gathered from the shards into the
        rollout copy (the adapter alone with LoRA), then pushed to the engine."""
        if self.sharded:
            copy_full_weights(self.model, self.rollout_model, trainable_only=self.policy.uses_lora)
        self.backend.sync_weights(self.rollout_model, step, self._engine_dir())

    def _engine_dir(self) -> Path:
        """Where the engine's weight files go: the run directory, or a folder of this rank's on other ranks."""
        if self.world.main:
            return self.run_dir
        import tempfile

        if not hasattr(self, "_rank_dir"):
            self._rank_dir = Path(tempfile.mkdtemp(prefix=f"skill-gym-rank{self.world.rank}-"))
        return self._rank_dir

    # -- evaluation ----------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, n_tasks: int | None = None) -> dict[str, float]:
        """One rollout per validation task at ``val_temperature`` (library frozen for skill envs)."""
        cfg = self.config
        result = evaluate(
            self.backend, cfg.env_id, env_kwargs={**self.env_kwargs, **cfg.eval_env_kwargs},
            n_tasks=n_tasks or cfg.eval_tasks, num_envs=cfg.eval_envs, vectorization_mode=cfg.vectorization_mode,
            vector_kwargs=cfg.vector_kwargs,
            temperature=cfg.val_temperature, max_new_tokens=cfg.max_new_tokens, history_length=cfg.history_length,
            max_turns=cfg.max_turns, seed=cfg.seed, policy_step=self.step,
        )  # fmt: skip
        return result.metrics()

    # -- metrics and logging -------------------------------------------------------------------

    def episode_metrics(self, episodes: Sequence[Episode]) -> dict[str, float]:
        """``reward/mean`` is the return the advantages are computed from (outcome minus invalid-turn penalty)."""
        cfg = self.config
        returns = [episode_return(e, cfg.reward_scale, cfg.invalid_penalty, cfg.invalid_kind) for e in episodes]
        act_turns = [t for e in episodes for t in e.turns if t.phase == "act"]
        out = {
            "reward/mean": float(np.mean(returns)),
            "reward/score": float(np.mean([e.score for e in episodes])),
            "turns/act_per_episode": len(act_turns) / max(len(episodes), 1),
            "turns/invalid_format": float(np.mean([not t.format_valid for t in act_turns])) if act_turns else 0.0,
            "turns/invalid_action": float(np.mean([not t.action_valid for t in act_turns])) if act_turns else 0.0,
            "turns/response_tokens": float(np.mean([len(t.response_ids) for e in episodes for t in e.turns] or [0])),
        }
        out.update({f"success/{k}": v for k, v in success_by_type(episodes).items()})
        if cfg.advantage == "gigpo":
            out["adv/step_group_size"] = float(np.mean(step_group_sizes(episodes) or [0]))
        return out

    def on_step_end(self, episodes: Sequence[Episode]) -> dict[str, Any]:
        """Subclass hook run after each update (e.g. a curriculum); returns extra metrics."""
        return {}

    def log(self, metrics: dict[str, Any]) -> None:
        self.history.append(metrics)
        if self.logger is not None:
            self.logger.log(metrics, self.step)

    # -- checkpoints ---------------------------------------------------------------------------

    def save_checkpoint(self) -> Path:
        """Everything needed to continue exactly (:func:`agents.grpo.checkpoint.save_checkpoint`); every rank calls it."""
        return save_checkpoint(self.run_dir, self.step, self.policy, self.sampler, self.extra_state,
                               self.library_path, self.config.keep_checkpoints, self.world,
                               export_model=self.rollout_model, rank_state=self.rank_state())  # fmt: skip

    def load_checkpoint(self, path: str | Path | None = None) -> bool:
        """Restore the latest (or given) checkpoint; ``False`` when there is none."""
        restored = load_checkpoint(self.run_dir, self.policy, self.sampler, self.library_path, path, self.world)
        if restored is None:
            return False
        self.step, folder, extra = restored
        if self._library_server is not None:  # the checkpoint put another library file in place
            self._library_server.reopen()
        self.load_rank_state(load_rank_state(folder, self.world.rank))
        self.load_extra_state(folder, extra)
        self.sync_rollout_weights(self.step)
        return True

    def extra_state(self, directory: Path) -> dict[str, Any]:
        """Subclass hook: JSON state to store in a checkpoint (files may go into ``directory``)."""
        return {}

    def rank_state(self) -> dict[str, Any]:
        """This rank's own JSON state in a checkpoint: what its skill envs remember across episodes (the attempts
        ``contrast`` shows; :attr:`~skill_gym.skill_env.SkillEnv.contrast_memory`)."""
        if not skill_gym.is_skill_env(self.config.env_id):
            return {}
        memories = list(self.envs.get_attr("contrast_memory"))
        return {"contrast_memory": memories} if any(memories) else {}

    def load_rank_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`rank_state`; envs of another number than the checkpoint's start with empty memories."""
        memories = state.get("contrast_memory")
        if memories is None:
            return
        if len(memories) != self.envs.num_envs:
            warnings.warn(f"the checkpoint holds the contrast attempts of {len(memories)} envs on this rank and it "
                          f"has {self.envs.num_envs}: they start without earlier attempts", stacklevel=2)  # fmt: skip
            return
        self.envs.set_attr("contrast_memory", list(memories))

    def load_extra_state(self, directory: Path, state: dict[str, Any]) -> None:
        """Subclass hook: restore what :meth:`extra_state` saved."""

    def close(self) -> None:
        self.envs.close()
        self.backend.close()
        if self.logger is not None:
            self.logger.close()
        if self._library_server is not None:
            self._library_server.close()
        if hasattr(self, "_rank_dir"):
            import shutil

            shutil.rmtree(self._rank_dir, ignore_errors=True)


def _merged_stats(parts: Sequence[RolloutStats]) -> RolloutStats:
    """The ranks' rollouts as one: the slowest rank's times (they ran side by side), the tokens of all."""
    return RolloutStats(
        seconds=max(p.seconds for p in parts), generate_seconds=max(p.generate_seconds for p in parts),
        env_seconds=max(p.env_seconds for p in parts), prompt_tokens=sum(p.prompt_tokens for p in parts),
        response_tokens=sum(p.response_tokens for p in parts),
    )  # fmt: skip


def _perf_metrics(stats: RolloutStats, step_seconds: float) -> dict[str, float]:
    return {
        "perf/step_seconds": step_seconds,
        "perf/rollout_seconds": stats.seconds,
        "perf/generate_seconds": stats.generate_seconds,
        "perf/env_seconds": stats.env_seconds,
        "perf/response_tokens": float(stats.response_tokens),
        "perf/prompt_tokens": float(stats.prompt_tokens),
        "perf/tokens_per_s": stats.response_tokens / max(stats.generate_seconds, 1e-9),
    }


FIXED_ON_RESUME = ("env_id", "model", "dtype", "lora_rank", "lora_alpha", "learning_rate", "weight_decay")
"""Settings a checkpoint fixes: its weights, adapter and optimizer state were made with them."""


def _check_resumable(saved_path: Path, config: GRPOConfig) -> None:
    """Refuse to resume a run with other :data:`FIXED_ON_RESUME` settings than it was made with."""
    try:
        saved = json.loads(saved_path.read_text())
    except (OSError, ValueError):
        return  # no record of the run's settings to compare with
    changed = [f"{k}: {saved[k]!r} -> {getattr(config, k)!r}" for k in FIXED_ON_RESUME
               if k in saved and saved[k] != getattr(config, k)]  # fmt: skip
    if changed:
        raise ValueError(f"cannot resume {saved_path.parent} with other settings than it was trained with "
                         f"({'; '.join(changed)}): use the run's, or start a new run_dir")  # fmt: skip


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
