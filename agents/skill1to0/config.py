"""``Skill1To0Config``: a Skill1 stage that builds a skill library, then a SKILL0 stage on its curriculum files.

Its fields are taken from the configs they belong to, never declared again (:func:`~skill_gym.config_fields.config_subset`):

* every :class:`~agents.skill1.config.Skill1Config` field but ``total_steps`` (the GRPO settings, shared by both
  stages unless ``stage2_grpo`` sets them, the skill env's switches and Skill1's credit assignment), with Skill1's
  defaults;
* :data:`STAGE2_SWITCHES` of :class:`~agents.skill0.config.Skill0Config` (the curriculum's schedule and validation);
* the export rules of :class:`~skill_gym.library.curriculum.CurriculumRules`, with its defaults;
* and its own: ``stage1_steps``, ``stage2_steps``, ``stage2_init``, ``stage2_grpo`` (stage 2's GRPO settings that
  differ from stage 1's), ``stage2_distill`` and ``stage1_from`` (another run's finished stage 1, reused).

:meth:`Skill1To0Config.stage1_config` and :meth:`~Skill1To0Config.stage2_config` give each stage's config.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any, Literal

from agents.grpo.config import GRPOConfig
from agents.grpo.config import config_field as _field
from agents.skill0.config import Skill0Config
from agents.skill1.config import Skill1Config
from skill_gym.config_fields import check_choices, config_subset
from skill_gym.library.curriculum import CurriculumRules

__all__ = ["RULE_FIELDS", "STAGE1_FIELDS", "STAGE1_RUNTIME", "STAGE2_SWITCHES", "Skill1To0Config"]

STAGE1_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Skill1Config) if f.name != "total_steps")
"""The :class:`Skill1Config` fields of the run (``stage1_steps`` stands for ``total_steps``); its GRPO settings
apply to both stages."""

STAGE2_SWITCHES: tuple[str, ...] = ("budget_schedule", "test_freq", "validation_tasks", "step0_budget",
                                    "test_after_train")  # fmt: skip
"""The :class:`Skill0Config` fields of stage 2 beyond the shared GRPO settings. Its ``mode`` is always
``curriculum`` and its ``static_dir`` the run's curriculum folder."""

STAGE_OWN = frozenset({"total_steps", "run_dir", "model"})
"""GRPO settings each stage has of its own: its steps, folder and initial policy (the run sets them)."""
SAME_IN_BOTH = frozenset({"env_id", "resume"})
"""GRPO settings ``stage2_grpo`` cannot change either: both stages play the same env and resume together."""

STAGE1_RUNTIME = frozenset({
    "run_dir", "resume", "progress", "save_every", "keep_checkpoints", "wandb_project", "dist_timeout_minutes",
    "device", "backend", "num_engines", "engine_options", "vllm_gpu_memory_utilization", "vllm_sleep_level",
    "micro_batch_size", "micro_batch_tokens", "gradient_checkpointing", "fsdp_offload", "library_service",
    "library_host", "eval_every", "eval_tasks", "eval_envs", "eval_env_kwargs", "recipe",
})  # fmt: skip
"""Stage-1 settings that say where and how a run executes, not what it learns: a run reusing another's stage 1
(``stage1_from``) may set them differently; every other stage-1 setting must match."""

RULE_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(CurriculumRules))
"""The export rules from the stage-1 library to the stage-2 curriculum files."""


@dataclasses.dataclass
class Skill1To0Config(
    config_subset(CurriculumRules, RULE_FIELDS),
    config_subset(Skill0Config, STAGE2_SWITCHES),
    config_subset(Skill1Config, STAGE1_FIELDS, {"run_dir": "runs/skill1to0"}),
):
    """Skill1 builds a library (stage 1), SKILL0's curriculum withdraws its exported files to zero (stage 2).

    The run directory holds ``stage1/`` (a Skill1 run), ``curriculum/`` (the exported files), ``stage2/`` (a SKILL0
    run), ``stages.json`` (what is done) and ``summary.json`` (both stages' last metrics and the final evaluation).
    """

    stage1_steps: int = _field(Skill1Config.total_steps, "Policy updates of stage 1 (Skill1, building the library).")
    stage2_steps: int = _field(
        Skill0Config.total_steps, "Policy updates of stage 2 (SKILL0's curriculum on the exported skill files)."
    )
    stage2_init: Literal["stage1", "base"] = _field(
        "stage1", "Stage 2's initial policy: stage 1's final one (LoRA merged), or the base model (the model setting)."
    )
    stage2_grpo: dict[str, Any] = dataclasses.field(
        default_factory=dict,
        metadata={
            "help": "GRPO settings of stage 2 that differ from stage 1's, e.g. SKILL0's own {\"kl_coef\": 0.0, "
            '"group_size": 8}; the rest are shared. JSON.'
        },
    )
    stage2_distill: bool = _field(
        False,
        "The one-stage option: in stage 2 the distill turn keeps writing skills into (a copy of) stage 1's library, "
        "the skills shown from the files count as selected, and each curriculum decision exports the files again "
        "first, so the in-context set can improve while it shrinks (turns credited as in Skill1).",
    )

    stage1_from: str = _field(
        "",
        "The run directory of another two-stage run whose finished stage 1 this run reuses instead of training its "
        "own (its library and policy are copied into this run's stage1/): stage-2 ablations from one stage 1. Its "
        "stage-1 settings must match this run's.",
    )

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("stage1_steps", "stage2_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        self.rules()
        self.stage1_config()  # each stage's own checks
        self.stage2_config("", None)

    @property
    def total_steps(self) -> int:
        """Policy updates of the whole run, both stages."""
        return self.stage1_steps + self.stage2_steps

    def rules(self) -> CurriculumRules:
        """The export rules (:class:`CurriculumRules`)."""
        return CurriculumRules(**{name: getattr(self, name) for name in RULE_FIELDS})

    def stage1_config(self) -> Skill1Config:
        """Stage 1's config: a Skill1 run of ``stage1_steps`` in ``<run_dir>/stage1``."""
        values = copy.deepcopy({name: getattr(self, name) for name in STAGE1_FIELDS})
        return Skill1Config(
            **{**values, "total_steps": self.stage1_steps, "run_dir": str(Path(self.run_dir) / "stage1")}
        )

    def stage2_config(self, static_dir: str, model: str | None) -> Skill0Config:
        """Stage 2's config: a SKILL0 curriculum run of ``stage2_steps`` in ``<run_dir>/stage2`` on the skill files in
        ``static_dir``, starting from ``model``; the GRPO settings are stage 1's but for ``stage2_grpo``."""
        shared = {f.name for f in dataclasses.fields(GRPOConfig)} - STAGE_OWN
        unknown = sorted(set(self.stage2_grpo) - (shared - SAME_IN_BOTH))
        if unknown:
            raise ValueError(f"stage2_grpo sets {unknown}: it takes GRPO settings but {sorted(STAGE_OWN | SAME_IN_BOTH)}, "
                             f"one of {sorted(shared - SAME_IN_BOTH)}")  # fmt: skip
        values: dict[str, Any] = copy.deepcopy({name: getattr(self, name) for name in (*shared, *STAGE2_SWITCHES)})
        values.update(copy.deepcopy(self.stage2_grpo))
        return Skill0Config(**values, total_steps=self.stage2_steps, run_dir=str(Path(self.run_dir) / "stage2"),
                            model=model, mode="curriculum", static_dir=static_dir)  # fmt: skip

    @classmethod
    def cpu_defaults(cls, **overrides: Any) -> Skill1To0Config:
        """Skill1's CPU settings for both stages (:meth:`GRPOConfig.cpu_defaults`), its ``total_steps`` for each
        stage 1, and a stage 2 that still withdraws its skills to zero in a few steps: a curriculum decision every
        step on a few validation tasks, and every skill the policy wrote is a candidate (``min_selected`` 0)."""
        small, default = Skill1Config.cpu_defaults(), Skill1Config()
        values: dict[str, Any] = {
            name: getattr(small, name) for name in STAGE1_FIELDS if getattr(small, name) != getattr(default, name)
        }
        values.update(stage1_steps=small.total_steps, stage2_steps=3, test_freq=1, validation_tasks=4,
                      budget_schedule=[2, 1, 0], min_selected=0)  # fmt: skip
        values.update(overrides)
        return cls(**values)
