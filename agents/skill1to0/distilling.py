"""Skill1 → SKILL0's one-stage option: SKILL0's curriculum while the distill turn keeps writing skills.

This module holds :class:`DistillingSkill0Trainer`, the stage-2 learner of ``skill1to0`` with ``stage2_distill``.
Its rollouts show the active curriculum files *and* end with Skill1's distill turn, which admits into the run's
library (a copy of stage 1's, ``<stage2>/library.sqlite``); the skills shown from the files count each episode as
a selection with its outcome (``static_distill`` in :class:`~skill_gym.skill_env.SkillConfig`). At each curriculum
decision the library is exported again (:func:`~skill_gym.library.curriculum.build_curriculum`, the run's rules) to
``<stage2>/curriculum/step_<N>``; the envs and the validation read that folder from then on, the active files it
still holds stay active and its new files become candidates, and the decision withdraws files by their Δ as
SKILL0 does. So the in-context set can improve while it shrinks to zero. The turns are credited as Skill1 credits
them (:class:`~agents.skill1.trainer.Skill1Credit`). Validation and evaluation neither distill nor write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agents.skill0.config import Skill0Config
from agents.skill0.curriculum import budget_at
from agents.skill0.trainer import Skill0Trainer
from agents.skill1.trainer import RunLibraryReader, Skill1Credit, distill_metrics, library_options
from skill_gym.files import staged_dir
from skill_gym.library import SkillLibrary, SkillValidationError
from skill_gym.library.curriculum import CurriculumRules, build_curriculum, write_curriculum

__all__ = ["DISTILL_SWITCHES", "DistillingSkill0Trainer"]

DISTILL_SWITCHES: tuple[str, ...] = ("alpha", "capacity", "merge_threshold", "merge_rule", "eviction", "contrast",
                                     "contrast_scope", "distill_format", "demonstrations")  # fmt: skip
"""The skill env switches of Skill1's that the distill turn and the library keep in stage 2."""


class DistillingSkill0Trainer(Skill1Credit, RunLibraryReader, Skill0Trainer):
    """SKILL0's curriculum on files re-exported from a library the policy keeps writing.

    ``credit_config`` holds Skill1's credit settings and :data:`DISTILL_SWITCHES` (a ``Skill1Config`` or a
    ``Skill1To0Config``); ``rules`` are the export's. ``config.static_dir`` is the first curriculum folder and
    ``config.env_kwargs["library"]`` the library to write (it must already hold the skills of that folder).
    """

    def __init__(self, config: Skill0Config, credit_config: Any, rules: CurriculumRules, **kwargs: Any) -> None:
        if config.mode != "curriculum":
            raise ValueError(f"re-exporting the curriculum needs mode='curriculum', got {config.mode!r}")
        self.credit_config = credit_config
        self.rules = rules
        self.skill_folder = str(config.static_dir)
        switches = {name: getattr(credit_config, name) for name in DISTILL_SWITCHES}
        config.env_kwargs = {**switches, "distillation": "policy", "static_distill": True, **config.env_kwargs}
        config.eval_env_kwargs = {"distillation": "none", "static_distill": False, **config.eval_env_kwargs}
        super().__init__(config, **kwargs)

    # -- the re-export -------------------------------------------------------------------------

    def library_options(self) -> dict[str, Any]:
        return library_options(self.credit_config)

    def curriculum_step(self) -> dict[str, Any]:
        """Export the library again (rank 0), show the new folder on every rank, then validate and decide. The
        step-0 decision keeps the folder stage 1's library gave, and a decision whose budget is 0 exports nothing."""
        exported: dict[str, Any] = {}
        c = self.curriculum
        if self.step > 0 and c is not None and budget_at(self.step, c.schedule, c.total_steps, c.test_freq, c.step0):
            export = self.world.on_main(self._export)
            if export["folder"] != self.skill_folder:
                self._load(export["folder"])
            exported = {f"reexport/{k}": v for k, v in export.items() if k not in ("folder", "files")}
            exported["reexport/folder"] = Path(self.skill_folder).name
        return {**super().curriculum_step(), **exported}

    def _export(self) -> dict[str, Any]:
        """The library as curriculum files in ``curriculum/step_<N>``; on a library that yields none, the current
        folder stays and the reason is reported."""
        path = self.library_path
        assert path is not None, "rank 0 holds the library file"
        with SkillLibrary(path) as library:
            try:
                curriculum = build_curriculum(library.skills(), library.embed, self.rules)
            except SkillValidationError as problem:
                return {"folder": self.skill_folder, "error": str(problem)}
            size = len(library)
        folder = self.run_dir / "curriculum" / f"step_{self.step:06d}"
        source = {"library": str(Path(path).resolve()), "stage2_step": self.step, "env": self.config.env_id}
        with staged_dir(folder) as staging:
            write_curriculum(curriculum, staging, source, self.rules)
        files = {key: [s.id for s in skills] for key, skills in curriculum.files.items()}
        return {"folder": str(folder), "files": files, "library_size": float(size),
                "skills": float(sum(len(ids) for ids in files.values()))}  # fmt: skip

    def _show(self, folder: str) -> None:
        """Every env shows ``folder``'s files from its next episode on."""
        self.envs.call("load_skill_files", folder)
        self.skill_folder = folder

    def _load(self, folder: str) -> None:
        """:meth:`_show` ``folder``; the curriculum keeps the active files it still holds and adds its new files
        (:meth:`~skill_gym.skill_env.sources.StaticSource.load`)."""
        self._show(folder)
        self.skill_files = self.envs.get_attr("static_skills")[0]
        self.files = sorted(self.skill_files.files)
        if self.curriculum is not None:
            self.curriculum.active = list(self.skill_files.active)

    def eval_env_kwargs(self) -> dict[str, Any]:
        """The validation envs read the current folder."""
        return {**super().eval_env_kwargs(), "static_dir": self.skill_folder}

    # -- hooks ---------------------------------------------------------------------------------

    def episode_metrics(self, episodes) -> dict[str, float]:
        return {**super().episode_metrics(episodes), **distill_metrics(episodes, self.library)}

    def extra_state(self, directory: Path) -> dict[str, Any]:
        return {**super().extra_state(directory), "skill_folder": self.skill_folder}

    def load_extra_state(self, directory: Path, state: dict[str, Any]) -> None:
        folder = state.get("skill_folder")
        if folder and folder != self.skill_folder:  # before the curriculum's files are applied to the envs
            self._show(folder)
        super().load_extra_state(directory, state)
