"""The GRPO trainer for multi-turn text agents (CleanRL-style: one loop, read top to bottom).

This module holds :class:`GRPOTrainer`. One step:

1. sample ``tasks_per_step`` tasks; run ``group_size`` rollouts of each (:func:`agents.rollout.rollout`);
2. give every turn an advantage (:meth:`GRPOTrainer.turn_advantages`: the group-normalized outcome
   return in plain GRPO; Skill1 overrides it per phase);
3. update the policy on the response tokens of every turn with the token-level clipped surrogate,
   the low-variance KL to the reference (the base model with the LoRA adapter disabled) and an
   entropy bonus, accumulating gradients over micro-batches to ``mini_batch_size`` turns;
4. log metrics (JSONL, TensorBoard, progress bar) and checkpoint (policy, optimizer, scheduler,
   RNG, sampler position, library) so that ``resume`` continues exactly.

Subclasses hook in through :meth:`turn_advantages`, :meth:`episode_metrics`, :meth:`on_step_end`,
:meth:`extra_state` and :meth:`load_extra_state`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import shutil
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import skill_gym  # noqa: F401  (registers the env ids)
from agents.backends.base import Backend, SamplingConfig
from agents.backends.hf import LoraSettings, TransformersBackend, load_policy
from agents.grpo.advantages import group_advantages
from agents.grpo.config import GRPOConfig
from agents.grpo.loss import grpo_token_loss, token_logprobs
from agents.prompts import PromptBuilder
from agents.rollout import Episode, RolloutStats, rollout

__all__ = ["GRPOTrainer", "Sample"]


@dataclasses.dataclass
class Sample:
    """One trainable turn: token ids, which of them are the response, and its advantage."""

    prompt_ids: list[int]
    response_ids: list[int]
    advantage: float
    phase: str = "act"


class GRPOTrainer:
    """Multi-turn GRPO on a skill_gym env.

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
        self.run_dir.mkdir(parents=True, exist_ok=True)
        _seed_everything(config.seed)
        if model is None:
            lora = LoraSettings(rank=config.lora_rank, alpha=config.lora_alpha) if config.lora_rank > 0 else None
            model, tokenizer = load_policy(config.model, lora=lora, dtype=config.dtype, device=config.device)
        self.model = model
        self.tokenizer = tokenizer
        self.uses_lora = hasattr(model, "disable_adapter")
        self.reference = None
        if config.kl_coef > 0 and not self.uses_lora:
            self.reference = _frozen_copy(model)
        self.backend = backend or self._make_backend()
        self.builder = PromptBuilder(
            env_name=self._env_name(), history_length=config.history_length,
            action_format=config.action_format, think=config.think,
        )  # fmt: skip
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        warmup = max(config.warmup_steps, 0)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0
        )
        self.env_kwargs = self._resolve_env_kwargs(dict(config.env_kwargs))
        n_envs = config.tasks_per_step * config.group_size
        self.envs = [gym.make(config.env_id, **self.env_kwargs) for _ in range(n_envs)]
        self.task_ids: list[str] = list(getattr(self.envs[0].unwrapped, "task_ids", []))
        self.sampler = np.random.default_rng(config.seed)
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self._writer = None
        if config.resume:
            self.load_checkpoint()
        config.save(self.run_dir / "config.json")

    # -- set-up helpers ------------------------------------------------------------------------

    def _make_backend(self) -> Backend:
        if self.config.backend == "vllm":
            from agents.backends.vllm import VLLMBackend

            return VLLMBackend.from_trainer(self)
        return TransformersBackend(self.model, self.tokenizer, batch_size=max(self.config.micro_batch_size, 8))

    def _env_name(self) -> str:
        spec = gym.spec(self.config.env_id)
        name = spec.kwargs.get("env_name") or spec.id.removeprefix("Skill").split("-")[0]
        return str(name).lower()

    def _resolve_env_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Skill envs with a library get one inside the run directory unless the user named one."""
        if self.config.env_id.startswith("Skill") and "library" not in kwargs:
            kwargs["library"] = str(self.run_dir / "library.sqlite")
        return kwargs

    @property
    def library_path(self) -> Path | None:
        path = self.env_kwargs.get("library")
        return Path(path) if path else None

    # -- the loop ------------------------------------------------------------------------------

    def train(self) -> list[dict[str, Any]]:
        """Run until ``total_steps``; returns the metrics of every step of this call."""
        from tqdm.auto import tqdm

        done: list[dict[str, Any]] = []
        bar = tqdm(total=self.config.total_steps, initial=self.step, disable=not self.config.progress, desc="grpo")
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
            metrics.update({f"val/{k}": v for k, v in self.evaluate().items()})
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
        sampling = SamplingConfig(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p)
        return rollout(
            self.envs, self.backend, self.builder, task_ids, seeds, sampling,
            groups=groups, policy_step=self.step, max_turns=cfg.max_turns,
        )  # fmt: skip

    def turn_advantages(self, episodes: Sequence[Episode]) -> list[list[float]]:
        """Plain GRPO: every turn of an episode gets the episode's group-normalized return."""
        cfg = self.config
        per_episode = group_advantages(episodes, cfg.reward_scale, cfg.invalid_penalty, cfg.norm_adv_by_std)
        return [[float(a)] * len(e.turns) for e, a in zip(episodes, per_episode, strict=True)]

    # -- optimization --------------------------------------------------------------------------

    def update(self, samples: list[Sample]) -> dict[str, float]:
        """``ppo_epochs`` passes of mini-batches over ``samples``; token-level loss aggregation."""
        cfg = self.config
        if not samples:
            return {"loss/total": 0.0, "loss/policy": 0.0, "loss/kl": 0.0, "loss/entropy": 0.0,
                    "loss/clip_frac": 0.0, "loss/grad_norm": 0.0, "loss/lr": self.scheduler.get_last_lr()[0]}  # fmt: skip
        self.model.train()
        n_mini = math.ceil(len(samples) / cfg.mini_batch_size)
        needs_old = cfg.ppo_epochs > 1 or n_mini > 1
        old = (
            [self._logprobs(batch)[0].detach() for batch in _chunks(samples, cfg.micro_batch_size)]
            if needs_old
            else None
        )
        sums: dict[str, float] = defaultdict(float)
        total_tokens = 0
        grad_norms = []
        order = list(range(len(samples)))
        for _ in range(cfg.ppo_epochs):
            for mini in _chunks(order, cfg.mini_batch_size):
                batch = [samples[i] for i in mini]
                n_tokens = sum(len(s.response_ids) for s in batch)
                self.optimizer.zero_grad(set_to_none=True)
                for micro_idx in _chunks(list(range(len(batch))), cfg.micro_batch_size):
                    micro = [batch[i] for i in micro_idx]
                    logp, entropy, mask = self._logprobs(micro, with_entropy=cfg.entropy_coef > 0)
                    old_logp = logp.detach() if old is None else _gather_old(old, [mini[i] for i in micro_idx], cfg)
                    ref = self._reference_logprobs(micro) if cfg.kl_coef > 0 else None
                    adv = torch.tensor([s.advantage for s in micro], dtype=logp.dtype, device=logp.device)
                    terms = grpo_token_loss(
                        logp, old_logp, adv[:, None].expand_as(logp), ref, entropy,
                        cfg.clip_low, cfg.clip_high, cfg.kl_coef, cfg.entropy_coef,
                    )  # fmt: skip
                    loss = (terms.loss * mask).sum() / n_tokens
                    loss.backward()
                    for name, value in (("total", terms.loss), ("policy", terms.policy), ("kl", terms.kl),
                                        ("entropy", terms.entropy), ("clip_frac", terms.clipped.float())):  # fmt: skip
                        sums[name] += float((value.detach() * mask).sum())
                total_tokens += n_tokens
                params = [p for p in self.model.parameters() if p.requires_grad]
                grad_norms.append(float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)))
                self.optimizer.step()
        self.scheduler.step()
        self._sync_backend()
        out = {f"loss/{k}": v / max(total_tokens, 1) for k, v in sums.items()}
        out["loss/grad_norm"] = float(np.mean(grad_norms))
        out["loss/lr"] = self.scheduler.get_last_lr()[0]
        return out

    def _batch_tensors(self, batch: Sequence[Sample]):
        """Left-padded ``prompt+response`` ids, attention mask, position ids, targets and response mask."""
        device = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id or 0
        lengths = [len(s.prompt_ids) + len(s.response_ids) for s in batch]
        width = max(lengths)
        keep = max(len(s.response_ids) for s in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        targets = torch.full((len(batch), keep), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), keep), dtype=torch.float32)
        for i, s in enumerate(batch):
            seq = s.prompt_ids + s.response_ids
            ids[i, width - len(seq) :] = torch.tensor(seq)
            attention[i, width - len(seq) :] = 1
            targets[i, keep - len(s.response_ids) :] = torch.tensor(s.response_ids)
            mask[i, keep - len(s.response_ids) :] = 1.0
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        return ids.to(device), attention.to(device), positions.to(device), targets.to(device), mask.to(device), keep

    def _logprobs(self, batch: Sequence[Sample], with_entropy: bool = False, model: Any = None):
        """Per-token log-probs (and entropies) of the response tokens, right-aligned, with their mask."""
        ids, attention, positions, targets, mask, keep = self._batch_tensors(batch)
        net = model or self.model
        logits = net(input_ids=ids, attention_mask=attention, position_ids=positions, logits_to_keep=keep + 1).logits
        logits = logits[:, -(keep + 1) : -1, :]
        logp, entropy = token_logprobs(logits, targets, with_entropy)
        return logp * mask, (entropy * mask if entropy is not None else None), mask

    @torch.no_grad()
    def _reference_logprobs(self, batch: Sequence[Sample]) -> torch.Tensor:
        if self.uses_lora:
            with self.model.disable_adapter():
                return self._logprobs(batch)[0]
        return self._logprobs(batch, model=self.reference)[0]

    def _sync_backend(self) -> None:
        sync = getattr(self.backend, "sync_weights", None)
        if sync is not None:
            sync(self.model, self.step + 1, self.run_dir)

    # -- evaluation ----------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, n_tasks: int | None = None) -> dict[str, float]:
        """One rollout per validation task at ``val_temperature`` (library frozen for skill envs)."""
        cfg = self.config
        kwargs = {**self.env_kwargs, **cfg.eval_env_kwargs}
        if cfg.env_id.startswith("Skill"):
            kwargs.setdefault("read_only", True)
        probe = gym.make(cfg.env_id, **kwargs)
        tasks = list(getattr(probe.unwrapped, "task_ids", []))
        probe.close()
        limit = n_tasks or cfg.eval_tasks or len(tasks)
        tasks = tasks[:limit]
        envs = [gym.make(cfg.env_id, **kwargs) for _ in tasks]
        sampling = SamplingConfig(max_new_tokens=cfg.max_new_tokens, temperature=cfg.val_temperature, seed=cfg.seed)
        episodes, _ = rollout(envs, self.backend, self.builder, tasks, list(range(len(tasks))), sampling,
                              policy_step=self.step, max_turns=cfg.max_turns)  # fmt: skip
        for env in envs:
            env.close()
        return _success_metrics(episodes)

    # -- metrics and logging -------------------------------------------------------------------

    def episode_metrics(self, episodes: Sequence[Episode]) -> dict[str, float]:
        cfg = self.config
        returns = [cfg.reward_scale * e.won - cfg.invalid_penalty * e.n_invalid_format for e in episodes]
        act_turns = [t for e in episodes for t in e.turns if t.phase == "act"]
        out = {
            "reward/mean": float(np.mean(returns)),
            "reward/score": float(np.mean([e.score for e in episodes])),
            "turns/act_per_episode": len(act_turns) / max(len(episodes), 1),
            "turns/invalid_format": float(np.mean([not t.format_valid for t in act_turns])) if act_turns else 0.0,
            "turns/invalid_action": float(np.mean([not t.action_valid for t in act_turns])) if act_turns else 0.0,
            "turns/response_tokens": float(np.mean([len(t.response_ids) for e in episodes for t in e.turns] or [0])),
        }
        out.update(_success_metrics(episodes))
        return out

    def on_step_end(self, episodes: Sequence[Episode]) -> dict[str, Any]:
        """Subclass hook run after each update (e.g. a curriculum); returns extra metrics."""
        return {}

    def log(self, metrics: dict[str, Any]) -> None:
        self.history.append(metrics)
        with open(self.run_dir / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(metrics) + "\n")
        writer = self._tensorboard()
        if writer is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and key != "step":
                    writer.add_scalar(key, value, self.step)
            writer.flush()
        if self.config.wandb_project:
            _wandb_log(self.config, metrics, self.step)

    def _tensorboard(self) -> Any:
        if self._writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard not installed: JSONL only
                self._writer = False
                return None
            self._writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        return self._writer or None

    # -- checkpoints ---------------------------------------------------------------------------

    def save_checkpoint(self) -> Path:
        """Everything needed to continue exactly: policy, optimizer, scheduler, RNG, sampler, library."""
        from safetensors.torch import save_file

        root = self.run_dir / "checkpoints"
        final = root / f"step_{self.step:06d}"
        staging = root / f".staging_{self.step:06d}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        trainable = {n: p.detach().cpu().contiguous() for n, p in self.model.named_parameters() if p.requires_grad}
        save_file(trainable, staging / "trainable.safetensors")
        if self.uses_lora:
            self.model.save_pretrained(staging / "adapter")
        torch.save(self.optimizer.state_dict(), staging / "optimizer.pt")
        torch.save(self.scheduler.state_dict(), staging / "scheduler.pt")
        torch.save({"torch": torch.get_rng_state()}, staging / "rng.pt")
        state = {
            "step": self.step,
            "sampler": _jsonable(self.sampler.bit_generator.state),
            "numpy": _jsonable(np.random.get_state(legacy=False)),
            "python": _jsonable(random.getstate()),
            "extra": self.extra_state(staging),
        }
        (staging / "trainer_state.json").write_text(json.dumps(state))
        if self.library_path is not None and self.library_path.is_file():
            from skill_gym.library import SkillLibrary

            with SkillLibrary(self.library_path) as lib:
                lib.snapshot(staging, self.step)
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
        (root / "latest").write_text(final.name)
        for old in sorted(p for p in root.glob("step_*") if p.is_dir())[: -self.config.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def load_checkpoint(self, path: str | Path | None = None) -> bool:
        """Restore the latest (or given) checkpoint; ``False`` when there is none."""
        from safetensors.torch import load_file

        root = self.run_dir / "checkpoints"
        if path is None:
            if not (root / "latest").is_file():
                return False
            path = root / (root / "latest").read_text().strip()
        path = Path(path)
        self.model.load_state_dict(load_file(path / "trainable.safetensors"), strict=False)
        self.optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
        self.scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
        torch.set_rng_state(torch.load(path / "rng.pt", weights_only=True)["torch"])
        state = json.loads((path / "trainer_state.json").read_text())
        self.step = int(state["step"])
        self.sampler.bit_generator.state = state["sampler"]
        np.random.set_state(state["numpy"])
        random.setstate(_python_state(state["python"]))
        snapshot = path / f"library-step{self.step:06d}.sqlite"
        if self.library_path is not None and snapshot.is_file():
            _restore_library(snapshot, self.library_path)
        self.load_extra_state(path, state.get("extra") or {})
        self._sync_backend()
        return True

    def extra_state(self, directory: Path) -> dict[str, Any]:
        """Subclass hook: JSON state to store in a checkpoint (files may go into ``directory``)."""
        return {}

    def load_extra_state(self, directory: Path, state: dict[str, Any]) -> None:
        """Subclass hook: restore what :meth:`extra_state` saved."""

    def close(self) -> None:
        for env in self.envs:
            env.close()
        getattr(self.backend, "close", lambda: None)()  # e.g. shut a vLLM engine down
        if self._writer:
            self._writer.close()


# -- helpers -----------------------------------------------------------------------------------


def _success_metrics(episodes: Sequence[Episode]) -> dict[str, float]:
    by_type: dict[str, list[bool]] = defaultdict(list)
    for e in episodes:
        by_type[e.task_type or "all"].append(e.won)
    out = {"success/all": float(np.mean([e.won for e in episodes])) if episodes else 0.0}
    out.update({f"success/{k}": float(np.mean(v)) for k, v in sorted(by_type.items()) if k != "all"})
    return out


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


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), max(size, 1))]


def _gather_old(old: list[torch.Tensor], indices: list[int], cfg: GRPOConfig) -> torch.Tensor:
    """Old log-probs of the given sample indices, re-aligned into one right-aligned tensor."""
    rows = []
    for i in indices:
        chunk, offset = divmod(i, cfg.micro_batch_size)
        rows.append(old[chunk][offset])
    width = max(r.shape[0] for r in rows)
    out = torch.zeros((len(rows), width), dtype=rows[0].dtype, device=rows[0].device)
    for j, row in enumerate(rows):
        out[j, width - row.shape[0] :] = row
    return out


def _frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    import copy

    ref = copy.deepcopy(model)
    ref.eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    return value


def _python_state(value: list) -> tuple:
    version, internal, gauss = value
    return (version, tuple(internal), gauss)


def _restore_library(snapshot: Path, target: Path) -> None:
    """Put a checkpoint's library snapshot back in place (the derived index is rebuilt on open)."""
    for suffix in ("", "-wal", "-shm", ".hnsw", ".hnsw.json"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    shutil.copyfile(snapshot, target)


def _wandb_log(config: GRPOConfig, metrics: dict[str, Any], step: int) -> None:
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is None:
        wandb.init(project=config.wandb_project, config=dataclasses.asdict(config), dir=config.run_dir)
    wandb.log({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, step=step)
