"""SKILL0's part of the recipes (:mod:`agents.recipes`): ``SKILL0_RECIPES[recipe]`` holds the
``Skill0Config`` overrides that ``--recipe released`` (ZJU-REAL/SkillZero's code and launch scripts)
and ``--recipe paper`` (the SKILL0 paper's text) apply on top of the GRPO part; an optional
``"env:<family>"`` sub-dict (e.g. ``"env:searchqa"``) applies only to that env family.

Sources of the released values: ``scripts/train_alfworld_skillzero_3b.sh`` and
``scripts/train_search_skillzero_3b.sh`` (sizes, mini-batches, history, penalties, schedules, ``val_data_size``),
``agent_system/environments/env_manager.py`` (``make_envs``: ``val_data_size`` validation envs on ALFWorld's
``eval_dataset``, each playing one game per validation; Search's validation file run in full),
``verl/trainer/config/ppo_trainer.yaml`` (entropy 0.001, ``test_after_train`` off by default),
``agent_system/environments/env_package/search/projection.py`` (``search_projection``: Search-QA's
``answer_format="verl"``),
``agent_system/environments/curriculum_skill_manager.py`` (``get_current_max_set``: the step-0
budget) and ``verl/trainer/ppo/ray_trainer.py`` (``_validate``, the closing test). Prompt limits
(3,072 ALFWorld, 4,096 Search) have no counterpart: prompts are not truncated here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SKILL0_RECIPES"]

SKILL0_RECIPES: dict[str, dict[str, Any]] = {
    "released": {
        # as the papers' sizes: G 8, 16 tasks, 180 steps, 512 response tokens, actor.ppo_mini_batch_size=256 (turns:
        # verl-agent keeps rollout.n=1); as the GRPO part: lr 1e-6, entropy 0.001, penalty 0.1, validation 0.4
        "history_length": 50,  # env.history_length=50 (ALFWorld, as many as env.max_steps)
        "kl_coef": 0.0,  # use_kl_loss=False, use_kl_in_reward=False
        "mode": "curriculum",
        "budget_schedule": [6, 3, 0],
        "test_freq": 10,
        "validation_tasks": 128,  # val_data_size=128 validation envs, one game each
        "step0_budget": "last",  # get_current_max_set(0) indexes the schedule with -1
        "test_after_train": False,
        "env:alfworld": {"eval_env_kwargs": {"split": "eval_in_distribution"}},  # env.alfworld.eval_dataset default
        "env:searchqa": {
            "tasks_per_step": 128,
            "mini_batch_size": 512,  # actor.ppo_mini_batch_size=512
            # val_data_size=512 is the number of validation envs: every row of val_1000.parquet (<= 1000 questions
            # per question type of Search-R1's test set) is run, 512 at a time; here the whole test split
            "validation_tasks": 0,
            "eval_env_kwargs": {"split": "test"},
            "history_length": 4,
            "invalid_penalty": 0.01,
            "budget_schedule": [5, 3, 0],
            "test_after_train": True,
        },
    },
    # The SKILL0 paper (arXiv 2604.02268), where it departs from Skill0Config's defaults (which are the paper's:
    # GRPO without KL, curriculum [6,3,0] validated every 10 steps, its first phase's budget from step 0).
    "paper": {
        "env:searchqa": {"tasks_per_step": 128, "invalid_penalty": 0.01, "budget_schedule": [5, 3, 0]},
    },
}
"""Recipe name → ``Skill0Config`` overrides (ALFWorld values; ``"env:searchqa"`` the Search-QA differences)."""
