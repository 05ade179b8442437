"""The token-level GRPO loss: clipped surrogate, low-variance KL and entropy bonus.

This module holds :func:`token_logprobs` (log-probs and entropies of response tokens from a
forward pass) and :func:`grpo_token_loss` (per-token loss terms, to be summed over the tokens of a
mini-batch and divided by its token count: token-level aggregation).
"""

from __future__ import annotations

import dataclasses

import torch

__all__ = ["LossTerms", "grpo_token_loss", "low_var_kl", "token_logprobs"]


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
) -> LossTerms:
    """``−min(ρA, clip(ρ, 1−ε_low, 1+ε_high)A) + β·KL − c·H`` per token, with ``ρ = exp(logp − old)``.

    Example (hand-computable): ratio 1.5 with A = 1 is clipped at 1.2.
        >>> import math
        >>> t = grpo_token_loss(torch.tensor([math.log(1.5)]), torch.tensor([0.0]), torch.tensor([1.0]))
        >>> round(t.policy.item(), 4), bool(t.clipped.item())
        (-1.2, True)
    """
    ratio = torch.exp((logp - old_logp).clamp(-20.0, 20.0))
    unclipped = ratio * advantages
    clipped_ratio = ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    surrogate = torch.minimum(unclipped, clipped_ratio * advantages)
    policy = -surrogate
    kl = low_var_kl(logp, ref_logp) if ref_logp is not None else torch.zeros_like(logp)
    ent = entropy if entropy is not None else torch.zeros_like(logp)
    loss = policy + kl_coef * kl - entropy_coef * ent
    return LossTerms(loss=loss, policy=policy, kl=kl, entropy=ent, clipped=(surrogate != unclipped), ratio=ratio)
