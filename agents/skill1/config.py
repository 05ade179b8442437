"""``Skill1Config``: GRPO settings plus Skill1's selection, distillation and credit-assignment switches.

Where the Skill1 paper and its scripts disagree, the paper's value is the default and the script's
value is named in the help text (Skill1, arXiv 2605.06130).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from agents.grpo.config import GRPOConfig
from agents.grpo.config import config_field as _field

__all__ = ["Skill1Config"]


@dataclasses.dataclass
class Skill1Config(GRPOConfig):
    """One policy co-evolving skill selection, utilization and distillation (Skill1)."""

    run_dir: str = _field("runs/skill1", "Run directory.")
    group_size: int = _field(16, "Rollouts per task (paper: 16; scripts: 8).")
    selection: Literal["policy", "similarity", "none"] = _field(
        "policy", "policy: query + rerank turns; similarity: no selection (ablation); none: no library (ablation)."
    )
    distillation: Literal["policy", "none"] = _field(
        "policy", "policy: distill turn after each rollout; none: ablation."
    )
    top_k: int = _field(5, "Candidates retrieved per query (paper: 5; scripts: 3).")
    min_similarity: float = _field(0.4, "Candidates below this cosine are dropped.")
    relevance_weight: float = _field(0.6, "w in w·rel + (1−w)·(U + UCB) (paper: 0.6; scripts: 1.0).")
    ucb: bool = _field(True, "UCB exploration bonus in training retrieval (evaluation is greedy).")
    ucb_c: float = _field(1.0, "UCB scale c.")
    alpha: float = _field(0.05, "EMA rate of utilities of every retrieved skill.")
    capacity: int = _field(5000, "Library capacity (eviction of the lowest U·log(n+1)).")
    merge_threshold: float = _field(0.85, "Description similarity above which a new skill is merged.")
    lambda_rerank: float = _field(0.3, "λ1: weight of the rerank REINFORCE term (0 = ablation).")
    lambda_distill: float = _field(0.3, "λ2: weight of the distillation GRPO term (0 = ablation).")
    rerank_baseline: Literal["none", "group_mean"] = _field(
        "none", "REINFORCE baseline for the rerank reward (paper: none)."
    )
    phase_invalid_penalty: float = _field(0.1, "Penalty on a query, rank or distill turn the env could not parse.")
    contrast: bool = _field(True, "Show the latest opposite-outcome attempt at the same task when distilling.")

    def skill_env_kwargs(self, training: bool) -> dict[str, Any]:
        """Keyword arguments for the Skill* env in training or (frozen, greedy) evaluation."""
        kwargs = {
            "selection": self.selection, "distillation": self.distillation if training else "none",
            "top_k": self.top_k, "min_similarity": self.min_similarity, "relevance_weight": self.relevance_weight,
            "ucb": self.ucb and training, "ucb_c": self.ucb_c, "alpha": self.alpha, "capacity": self.capacity,
            "merge_threshold": self.merge_threshold, "contrast": self.contrast, "read_only": not training,
        }  # fmt: skip
        return kwargs
