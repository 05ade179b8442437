"""``Skill0Config``: GRPO settings plus SKILL0's skill files, curriculum and baselines (SKILL0, arXiv 2604.02268)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from agents.grpo.config import GRPOConfig
from agents.grpo.config import config_field as _field
from skill_gym.config_fields import config_subset
from skill_gym.skill_env import SkillConfig

__all__ = ["Skill0Config"]


@dataclasses.dataclass
class Skill0Config(config_subset(SkillConfig, ["static_dir"]), GRPOConfig):
    """In-context skills withdrawn by a helpfulness-driven curriculum (SKILL0); ``static_dir`` is the skill env's
    (:class:`~skill_gym.skill_env.SkillConfig`)."""

    run_dir: str = _field("runs/skill0", "Run directory.")
    total_steps: int = _field(180, "Policy updates (SKILL0: 180).")
    kl_coef: float = _field(0.0, "SKILL0 trains without a KL term.")
    mode: Literal["curriculum", "full", "none"] = _field(
        "curriculum", "curriculum: SKILL0; full: every skill file always (the text-skill baseline); none: plain GRPO."
    )
    budget_schedule: list[int] = dataclasses.field(
        default_factory=lambda: [6, 3, 0],
        metadata={"help": "Skill-file budget per phase of the run (ALFWorld [6,3,0]; Search [5,3,0]). JSON."},
    )
    test_freq: int = _field(10, "Validate with and without skills, and update the curriculum, every N steps.")
    validation_tasks: int = _field(
        0,
        "Tasks per validation condition: a sample of the eval split drawn once from the run's seed, the same for both "
        "conditions and every validation (0: all of the split; SkillZero's ALFWorld script: 128).",
    )
    step0_budget: Literal["first", "last"] = _field(
        "first",
        "Budget of the validation before training: the schedule's first (fixed) or its last, as SkillZero's released "
        "trainer does by mistake (with [6,3,0] the first test_freq steps then train without skills).",
    )
    test_after_train: bool = _field(
        False,
        "After the last step, test with every skill file and with none (SkillZero's test_after_train: "
        "test/full_skill/*, test/no_skill/*); otherwise the run ends at its last step.",
    )
