"""``Skill1Config``: GRPO settings, the skill env's switches Skill1 sets (:data:`SKILL_SWITCHES`, declared in
:class:`~skill_gym.skill_env.SkillConfig`) and Skill1's credit-assignment switches.

Where the Skill1 paper and its scripts disagree, the paper's value is the default and the script's
value is named in the help text (Skill1, arXiv 2605.06130). Where its released code (AlphaLab-USTC/Skill1,
``agent_system/``) differs from the paper, a switch names both; ``--recipe released`` sets them all
(:mod:`agents.skill1.recipes`, docs/recipes.md).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from agents.grpo.config import GRPOConfig
from agents.grpo.config import config_field as _field
from skill_gym.config_fields import config_subset
from skill_gym.skill_env import SkillConfig

__all__ = ["SKILL1_DEFAULTS", "SKILL_SWITCHES", "Skill1Config"]

SKILL_SWITCHES: tuple[str, ...] = (
    "selection", "distillation", "top_k", "min_similarity", "relevance_weight", "ucb", "ucb_c", "ucb_log_plus_one",
    "query_fallback", "rerank_always", "inject", "alpha", "capacity", "merge_threshold", "merge_rule", "eviction",
    "contrast", "contrast_scope", "distill_format", "demonstrations",
)  # fmt: skip
"""The :class:`~skill_gym.skill_env.SkillConfig` switches a Skill1 run sets on its envs: fields (and flags) of
:class:`Skill1Config` with SkillConfig's types, help texts and defaults, but :data:`SKILL1_DEFAULTS`."""

SKILL1_DEFAULTS: dict[str, Any] = {"top_k": 5, "relevance_weight": 0.6, "ucb": True}
"""Where Skill1's defaults differ from SkillConfig's: the paper's K = 5, w = 0.6 and UCB bonus in training
(SkillConfig keeps the launch scripts' K = 3, w = 1.0, and greedy retrieval)."""


@dataclasses.dataclass
class Skill1Config(config_subset(SkillConfig, SKILL_SWITCHES, SKILL1_DEFAULTS), GRPOConfig):
    """One policy co-evolving skill selection, utilization and distillation (Skill1).

    Its fields: :class:`GRPOConfig`'s, the env switches :data:`SKILL_SWITCHES`, then Skill1's own below.
    """

    run_dir: str = _field("runs/skill1", "Run directory.")
    group_size: int = _field(16, "Rollouts per task (paper: 16; scripts: 8).")
    eval_inject: Literal["top1", "all"] = _field(
        "top1", "Skills in context in evaluation: the top one (paper) or all K in the policy's order (released)."
    )
    lambda_rerank: float = _field(0.3, "λ1: weight of the rerank REINFORCE term (0 = ablation).")
    lambda_distill: float = _field(0.3, "λ2: weight of the distillation GRPO term (0 = ablation).")
    rerank_baseline: Literal["none", "group_mean"] = _field(
        "none", "REINFORCE baseline for the rerank reward (paper: none)."
    )
    phase_invalid_penalty: float = _field(0.1, "Penalty on a query, rank or distill turn the env could not parse.")
    credit: Literal["paper", "released"] = _field(
        "paper",
        "paper: rerank by REINFORCE on λ1·NDCG, distill by group-normalized λ2·(r − Û), query and act turns by the "
        "outcome's group advantage. released: every query/rerank/act turn gets the group-normalized (over turns) "
        "10·won + λ1·query contrast + λ1·NDCG; the distill turn is not trained.",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.advantage != "grpo":
            raise ValueError(
                f"advantage={self.advantage!r} is not available with Skill1: its credit assignment (credit="
                f"{self.credit!r}) gives each phase its own advantage; use advantage='grpo'"
            )

    @classmethod
    def cpu_defaults(cls, **overrides: Any) -> Skill1Config:
        """GRPO's CPU settings (:meth:`GRPOConfig.cpu_defaults`) plus a worked example in each skill phase's prompt
        (``demonstrations``): without one SmolLM2-135M writes no valid skill and the library stays empty."""
        return super().cpu_defaults(**{"demonstrations": True, **overrides})  # type: ignore[return-value]

    def skill_env_kwargs(self, training: bool) -> dict[str, Any]:
        """Keyword arguments for the Skill* env: the :data:`SKILL_SWITCHES`; in evaluation the library is frozen
        (read-only, no distillation), retrieval greedy (no UCB bonus) and the skills in context ``eval_inject``'s."""
        kwargs = {name: getattr(self, name) for name in SKILL_SWITCHES}
        if not training:
            kwargs.update(distillation="none", ucb=False, inject=self.eval_inject)
        return {**kwargs, "read_only": not training}
