"""One GRPO policy update: batching, log-probs of the response tokens, the clipped surrogate, the optimizer step.

This module holds :class:`Sample` (one trainable turn) and :class:`PolicyUpdate`, which owns the
model's optimizer and learning-rate schedule. ``PolicyUpdate(samples)`` runs ``ppo_epochs`` passes of
mini-batches of ``mini_batch_size`` turns, accumulating gradients over micro-batches of
``micro_batch_size``, with the token-level loss of :func:`agents.grpo.loss.grpo_token_loss`
normalized by the mini-batch's response tokens.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from agents.grpo.config import GRPOConfig
from agents.grpo.loss import grpo_token_loss, token_logprobs

__all__ = ["PolicyUpdate", "Sample"]


@dataclasses.dataclass
class Sample:
    """One trainable turn: token ids, which of them are the response, and its advantage."""

    prompt_ids: list[int]
    response_ids: list[int]
    advantage: float
    phase: str = "act"


class PolicyUpdate:
    """The optimizer side of GRPO for one policy ``model`` (a peft LoRA model or a full model)."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any, config: GRPOConfig) -> None:
        self.model = model
        self.config = config
        self.pad_id = tokenizer.pad_token_id or 0
        self.uses_lora = hasattr(model, "disable_adapter")
        self.reference = _frozen_copy(model) if config.kl_coef > 0 and not self.uses_lora else None
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        warmup = max(config.warmup_steps, 0)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0
        )

    def __call__(self, samples: list[Sample]) -> dict[str, float]:
        """``ppo_epochs`` passes of mini-batches over ``samples``; token-level loss aggregation."""
        cfg = self.config
        if not samples:
            return {"loss/total": 0.0, "loss/policy": 0.0, "loss/kl": 0.0, "loss/entropy": 0.0,
                    "loss/clip_frac": 0.0, "loss/grad_norm": 0.0, "loss/lr": self.scheduler.get_last_lr()[0]}  # fmt: skip
        self.model.train()
        n_mini = math.ceil(len(samples) / cfg.mini_batch_size)
        needs_old = cfg.ppo_epochs > 1 or n_mini > 1
        old = (
            [self.logprobs(batch)[0].detach() for batch in _chunks(samples, cfg.micro_batch_size)]
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
                    logp, entropy, mask = self.logprobs(micro, with_entropy=cfg.entropy_coef > 0)
                    old_logp = logp.detach() if old is None else _gather_old(old, [mini[i] for i in micro_idx], cfg)
                    ref = self.reference_logprobs(micro) if cfg.kl_coef > 0 else None
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
        out = {f"loss/{k}": v / max(total_tokens, 1) for k, v in sums.items()}
        out["loss/grad_norm"] = float(np.mean(grad_norms))
        out["loss/lr"] = self.scheduler.get_last_lr()[0]
        return out

    def batch_tensors(self, batch: Sequence[Sample]):
        """Left-padded ``prompt+response`` ids, attention mask, position ids, targets and response mask."""
        device = next(self.model.parameters()).device
        lengths = [len(s.prompt_ids) + len(s.response_ids) for s in batch]
        width = max(lengths)
        keep = max(len(s.response_ids) for s in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        targets = torch.full((len(batch), keep), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), keep), dtype=torch.float32)
        for i, s in enumerate(batch):
            seq = s.prompt_ids + s.response_ids
            ids[i, width - len(seq) :] = torch.tensor(seq)
            attention[i, width - len(seq) :] = 1
            targets[i, keep - len(s.response_ids) :] = torch.tensor(s.response_ids)
            mask[i, keep - len(s.response_ids) :] = 1.0
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        return ids.to(device), attention.to(device), positions.to(device), targets.to(device), mask.to(device), keep

    def logprobs(self, batch: Sequence[Sample], with_entropy: bool = False, model: Any = None):
        """Per-token log-probs (and entropies) of the response tokens, right-aligned, with their mask."""
        ids, attention, positions, targets, mask, keep = self.batch_tensors(batch)
        net = model or self.model
        logits = net(input_ids=ids, attention_mask=attention, position_ids=positions, logits_to_keep=keep + 1).logits
        logits = logits[:, -(keep + 1) : -1, :]
        logp, entropy = token_logprobs(logits, targets, with_entropy)
        return logp * mask, (entropy * mask if entropy is not None else None), mask

    @torch.no_grad()
    def reference_logprobs(self, batch: Sequence[Sample]) -> torch.Tensor:
        """Log-probs under the reference: the base model with the LoRA adapter off, or a frozen copy."""
        if self.uses_lora:
            with self.model.disable_adapter():
                return self.logprobs(batch)[0]
        return self.logprobs(batch, model=self.reference)[0]


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
