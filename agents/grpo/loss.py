"""The token-level GRPO loss: clipped surrogate (optionally dual-clipped), low-variance KL and entropy bonus.

This module holds :func:`token_logprobs` (log-probs and entropies of response tokens from a
forward pass), :func:`grpo_token_loss` (per-token loss terms) and :func:`token_weights` (how the
per-token terms of a micro-batch are weighted into the mini-batch's loss: ``LossAggregation``).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

__all__ = ["LossAggregation", "LossTerms", "grpo_token_loss", "low_var_kl", "token_logprobs", "token_weights"]

LossAggregation = Literal["token_mean", "micro_token_mean", "seq_mean_token_mean"]


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor, with_entropy: bool = False):
    """Log-probs of ``targets`` under ``logits`` (same leading shape), and optionally the entropies."""
    logits = logits.float()
    logsumexp = torch.logsumexp(logits, dim=-1)
    picked = torch.gather(logits, -1, targets.unsqueeze(-1)).squeeze(-1) - logsumexp
    if not with_entropy:
        return picked, None
    probs = torch.softmax(logits, dim=-1)
    entropy = logsumexp - (probs * logits).sum(-1)
    return picked, entropy


def low_var_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k3 estimator of KL(π‖π_ref): ``exp(ref − logp) − (ref − logp) − 1``, clamped to [−10, 10]."""
    diff = (ref_logp - logp).clamp(-20.0, 20.0)
    return (torch.exp(diff) - diff - 1.0).clamp(-10.0, 10.0)


@dataclasses.dataclass
class LossTerms:
    """Per-token tensors; ``loss`` is what is summed and backpropagated."""

    loss: torch.Tensor
    policy: torch.Tensor
    kl: torch.Tensor
    entropy: torch.Tensor
    clipped: torch.Tensor
    ratio: torch.Tensor
    dual_clipped: torch.Tensor


def grpo_token_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    ref_logp: torch.Tensor | None = None,
    entropy: torch.Tensor | None = None,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    kl_coef: float = 0.0,
    entropy_coef: float = 0.0,
    dual_clip: float = 0.0,
) -> LossTerms:
    """``−min(ρA, clip(ρ, 1−ε_low, 1+ε_high)A) + β·KL − c·H`` per token, with ``ρ = exp(logp − old)``.

    With ``dual_clip`` = c > 1 a token with A < 0 loses at most ``−c·A`` (dual-clip PPO, Ye et al. 2020;
    verl's ``compute_policy_loss`` with ``clip_ratio_c = 3``): its surrogate is ``max(min(ρA, clip(ρ)A), c·A)``.

    Example (hand-computable): ratio 1.5 with A = 1 is clipped at 1.2; ratio 5 with A = −1 at 3.
        >>> import math
        >>> t = grpo_token_loss(torch.tensor([math.log(1.5)]), torch.tensor([0.0]), torch.tensor([1.0]))
        >>> round(t.policy.item(), 4), bool(t.clipped.item())
        (-1.2, True)
        >>> t = grpo_token_loss(torch.tensor([math.log(5.0)]), torch.tensor([0.0]), torch.tensor([-1.0]), dual_clip=3.0)
        >>> round(t.policy.item(), 4), bool(t.dual_clipped.item())
        (3.0, True)
    """
    if dual_clip and dual_clip <= 1.0:
        raise ValueError(f"dual_clip must be 0 (off) or above 1, got {dual_clip}")
    ratio = torch.exp((logp - old_logp).clamp(-20.0, 20.0))
    unclipped = ratio * advantages
    clipped_ratio = ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    surrogate = torch.minimum(unclipped, clipped_ratio * advantages)
    clipped = surrogate != unclipped
    dual_clipped = torch.zeros_like(clipped)
    if dual_clip:
        floor = dual_clip * advantages
        dual_clipped = (advantages < 0) & (surrogate < floor)
        surrogate = torch.where(dual_clipped, floor, surrogate)
    policy = -surrogate
    kl = low_var_kl(logp, ref_logp) if ref_logp is not None else torch.zeros_like(logp)
    ent = entropy if entropy is not None else torch.zeros_like(logp)
    loss = policy + kl_coef * kl - entropy_coef * ent
    return LossTerms(loss=loss, policy=policy, kl=kl, entropy=ent, clipped=clipped, ratio=ratio,
                     dual_clipped=dual_clipped)  # fmt: skip


def token_weights(
    mask: torch.Tensor, mode: LossAggregation, mini_tokens: int, mini_samples: int, n_micro: int
) -> torch.Tensor:
    """Weights of a micro-batch's per-token terms in its mini-batch's loss (``(loss * weights).sum()``).

    * ``token_mean`` — every response token of the mini-batch counts the same: ``1 / mini_tokens``;
    * ``micro_token_mean`` — the token mean of each micro-batch, averaged over the ``n_micro``
      micro-batches (verl's ``agg_loss("token-mean")`` per micro-batch, divided by the gradient
      accumulation steps): ``1 / (micro_tokens · n_micro)``;
    * ``seq_mean_token_mean`` — the token mean of each response, averaged over the mini-batch's
      responses (the GRPO paper's ``1/G Σ_i 1/|o_i| Σ_t``): ``1 / (|o_i| · mini_samples)``.

    >>> m = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    >>> token_weights(m, "seq_mean_token_mean", mini_tokens=4, mini_samples=2, n_micro=1)[1, 2].item()
    0.5
    """
    if mode == "token_mean":
        return mask / max(mini_tokens, 1)
    if mode == "micro_token_mean":
        return mask / (mask.sum().clamp(min=1.0) * max(n_micro, 1))
    if mode == "seq_mean_token_mean":
        return mask / (mask.sum(-1, keepdim=True).clamp(min=1.0) * max(mini_samples, 1))
    raise ValueError(f"unknown loss aggregation {mode!r}; expected token_mean, micro_token_mean or seq_mean_token_mean")
