"""Skill1's part of the recipes (:mod:`agents.recipes`): ``SKILL1_RECIPES[recipe]`` holds the
``Skill1Config`` overrides that ``--recipe released`` (AlphaLab-USTC/Skill1's code and launch scripts)
and ``--recipe paper`` (the Skill1 paper's text) apply on top of the GRPO part; an optional
``"env:<family>"`` sub-dict (e.g. ``"env:webshop"``) applies only to that env family.

Sources of the released values: ``launch_scripts/alfworld/train_alfworld.sh`` and
``launch_scripts/webshop/train_webshop.sh`` (sizes, λ, K, w, α, penalties), Skill1's own
``agent_system/memory/memory.py`` (``SkillLibrary.retrieve``/``admit``/``_retire``; not the
re-implementation of Skill1 as a baseline in another repository, whose cutoff is 0.05),
``agent_system/environments/env_manager.py`` (``apply_generated_queries``, ``build_rerank_obs``,
``apply_rerank_results``, ``build_distill_text_obs``, ``step_distill``) and
``agent_system/multi_turn_rollout/rollout_loop.py`` (``TrajectoryCollector``: the query/rerank rewards,
``credit_assignment``; the distill turn is never added to the batch).
Each switch and its row in ``docs/recipes.md`` name the function.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SKILL1_RECIPES"]

SKILL1_RECIPES: dict[str, dict[str, Any]] = {
    "released": {
        # launch scripts (ALFWorld; WebShop below); as the GRPO part: lr 1e-6, low-var KL 0.01, penalty 0.1,
        # validation temperature 0.4; as the papers' sizes: 16 tasks, trainer.total_epochs=150 (one-batch set)
        "group_size": 8,
        "max_new_tokens": 2048,
        "lambda_rerank": 0.3,
        "lambda_distill": 0.3,  # computed into r − Û but, with credit="released", nothing is trained on it
        # skill library (env.skill_library.*, agent_system/memory SkillLibrary)
        "selection": "policy",  # enable_query_generation, enable_rerank
        "distillation": "policy",
        "top_k": 3,
        "min_similarity": 0.4,  # retrieve(): relevance < 0.4 dropped
        "relevance_weight": 1.0,
        "ucb": True,  # train_retrieve_type=ucb, eval_retrieve_type=greedy
        "ucb_c": 1.0,
        "ucb_log_plus_one": False,  # retrieve(): sqrt(log(total_system_counts) / count), ln N
        "alpha": 0.05,  # env.skill_library.alpha=0.05 (utilities and merges)
        "capacity": 5000,  # SkillLibrary(max_size=5000)
        "merge_rule": "same_strategy_and_similar",  # admit(): identical strategy and similarity > 0.85 → EMA to 0.5
        "merge_threshold": 0.85,
        "eviction": "lowest",  # admit() appends, then _retire() keeps the top max_size by U·log2(count + 1)
        # env manager
        "query_fallback": "task",  # apply_generated_queries keeps the task text's retrieval when empty
        "rerank_always": True,  # build_rerank_obs: a dummy prompt below 2 candidates, still a trained turn
        "inject": "top1_if_ranked",  # rerank_train_top1: top one when the ranking parsed, else all K
        "eval_inject": "all",  # evaluation keeps all K in the policy's order
        "contrast": True,
        "contrast_scope": "library",  # task_trajectory_history: any env, siblings included, by task text
        "distill_format": "lessons",  # {subtasks, task_success, action_lesson, navigation_lesson, description_head}
        # rollout loop
        "credit": "released",
        "phase_invalid_penalty": 0.0,  # query/rerank turns are always is_action_valid=True
        "env:webshop": {
            "invalid_penalty": 0.5,  # invalid_action_penalty_coef=0.5
            "lambda_rerank": 1.0,  # not set by the WebShop script: TrajectoryCollector's default 1.0
            "lambda_distill": 1.0,
        },
    },
    # The Skill1 paper (arXiv 2605.06130), Sections 3-4 and its hyper-parameter table, where it departs from
    # Skill1Config's defaults (which are the paper's: G 16, K 5, w 0.6, UCB, λ1 = λ2 = 0.3, ...).
    "paper": {
        "max_new_tokens": 2048,  # response 2k
        "env:webshop": {"invalid_penalty": 0.5},
    },
}
"""Recipe name → ``Skill1Config`` overrides (ALFWorld values; ``"env:webshop"`` the WebShop differences)."""
