"""Skill1 then SKILL0: a library built by Skill1, exported as skill files, withdrawn by SKILL0's curriculum.

This module holds :class:`Skill1To0Trainer`. :meth:`~Skill1To0Trainer.train` runs, in one run directory:

1. **stage 1** — a :class:`~agents.skill1.Skill1Trainer` run in ``<run_dir>/stage1`` that builds the library
   (``stage1/library.sqlite``); with ``stage2_init="stage1"`` its final policy is saved, LoRA merged, as a model
   folder (``stage1/policy``);
2. **export** — the library's best-supported skills as SKILL0 files in ``<run_dir>/curriculum``
   (:func:`~skill_gym.library.curriculum.build_curriculum` with the config's rules; provenance: the library and
   stage 1's step). A library no curriculum can be made of stops the run with the export's reason;
3. **stage 2** — a :class:`~agents.skill0.Skill0Trainer` curriculum run in ``<run_dir>/stage2`` on those files,
   from stage 1's policy (``stage2_init="stage1"``, its ``model`` is ``stage1/policy``) or the base model, until its
   budget reaches zero skills; then the final evaluation: SKILL0's validation without skills and without retrieval.
   With ``stage2_distill`` (the one-stage option) stage 2 is a
   :class:`~agents.skill1to0.distilling.DistillingSkill0Trainer`: the distill turn keeps writing into a copy of
   stage 1's library (``stage2/library.sqlite``) and each curriculum decision exports the files again.

With ``stage1_from`` step 1 is not trained: the finished stage 1 of another run (same stage-1 settings) is copied
into ``<run_dir>/stage1`` (its library, its saved policy, its config and metrics), and steps 2 and 3 run on it —
several stage-2 variants from one stage 1.

``<run_dir>/stages.json`` (written whole) records each finished step: stage 1's step, library and last metrics, the
curriculum's files, stage 2's last metrics, final active files and the final evaluation. With ``resume`` a
finished step is skipped and an unfinished stage resumes from its own latest checkpoint. Each stage keeps its own
``config.json``, ``metrics.jsonl``, TensorBoard events and checkpoints; the final evaluation is also stage 2's
last ``metrics.jsonl`` line (``final/*`` keys).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from agents.backends.base import Backend
from agents.backends.vllm import write_weights
from agents.distributed import init_world
from agents.grpo.checkpoint import latest_checkpoint, restore_library
from agents.skill0.curriculum import budget_at
from agents.skill0.trainer import Skill0Trainer
from agents.skill1.trainer import Skill1Trainer
from agents.skill1to0.config import STAGE1_FIELDS, STAGE1_RUNTIME, Skill1To0Config
from agents.skill1to0.distilling import DistillingSkill0Trainer
from skill_gym.files import atomic_write, staged_dir
from skill_gym.library import SkillLibrary, SkillValidationError
from skill_gym.library.curriculum import build_curriculum, write_curriculum

__all__ = ["Skill1To0Trainer", "copy_library", "reuse_stage1", "save_policy"]


def save_policy(model: torch.nn.Module, tokenizer: Any, folder: str | Path) -> Path:
    """``model`` as a folder ``transformers`` loads (a trainer's ``model`` setting): its weights with any LoRA
    adapter merged (:func:`~agents.backends.vllm.write_weights`), its config and ``tokenizer``; written whole."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    with staged_dir(folder) as staging:
        write_weights(model, staging, "full")
        base.config.save_pretrained(staging)
        if getattr(base, "generation_config", None) is not None:
            base.generation_config.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return Path(folder)


class Skill1To0Trainer:
    """Stage 1 (Skill1), the export to skill files, stage 2 (SKILL0) and the final no-skill evaluation.

    ``backend``: the rollout backend of both stages (tests: a scripted policy); by default each stage builds its
    own from its policy.

    Example:
        >>> config = Skill1To0Config.cpu_defaults(env_id="SkillKeyword-v0", run_dir="runs/two-stage")  # doctest: +SKIP
        >>> Skill1To0Trainer(config).train()[-1]["final/success/all"]  # doctest: +SKIP
    """

    def __init__(self, config: Skill1To0Config, backend: Backend | None = None) -> None:
        self.config = config
        self.run_dir = Path(config.run_dir)
        self.backend = backend
        self.world = init_world(config.device, config.dist_timeout_minutes, single_group=config.fsdp_offload)
        last = (config.stage2_steps // config.test_freq) * config.test_freq if config.test_freq > 0 else 0
        left = budget_at(last, config.budget_schedule, config.stage2_steps, config.test_freq, config.step0_budget)
        if left != 0:
            raise ValueError(f"stage 2 must withdraw every skill file, but its last curriculum decision (step {last} "
                             f"of {config.stage2_steps}, test_freq {config.test_freq}) keeps a budget of {left}: end "
                             f"budget_schedule ({config.budget_schedule}) with 0 and validate at least once per budget "
                             f"(stage2_steps >= len(budget_schedule) x test_freq)")  # fmt: skip
        self.stages: dict[str, Any] = {}
        if self.stages_path.is_file():
            if not config.resume:
                raise ValueError(f"{self.run_dir} holds a two-stage run ({', '.join(json.loads(self.stages_path.read_text()))} "
                                 "done): pass resume=True (--resume) to continue it, or another run_dir (--run-dir)")  # fmt: skip
            self.stages = json.loads(self.stages_path.read_text())
        if self.world.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(self.run_dir / "config.json", json.dumps(dataclasses.asdict(config), indent=2) + "\n")

    @property
    def stages_path(self) -> Path:
        """``<run_dir>/stages.json``: what is done, with each step's summary."""
        return self.run_dir / "stages.json"

    @property
    def curriculum_dir(self) -> Path:
        """``<run_dir>/curriculum``: the SKILL0 skill files exported from stage 1's library."""
        return self.run_dir / "curriculum"

    def train(self) -> list[dict[str, Any]]:
        """Run what is not done yet; returns this call's step metrics (each with its ``stage``), the final
        evaluation last."""
        done: list[dict[str, Any]] = []
        stage1 = self.stages.get("stage1")
        if stage1 is None and self.config.stage1_from:
            self._mark("stage1", self.world.on_main(lambda: reuse_stage1(Path(self.config.stage1_from),
                                                                         self.run_dir, self.config)))  # fmt: skip
            stage1 = self.stages["stage1"]
        longer = stage1 is not None and stage1["step"] < self.config.stage1_steps
        if longer and "curriculum" in self.stages:
            raise ValueError(f"stage 1 of {self.run_dir} ended at step {stage1['step']} and stage 2's curriculum was "
                             f"made of it: stage1_steps={self.config.stage1_steps} cannot apply (use another run_dir)")  # fmt: skip
        if stage1 is None or longer or (self.config.stage2_init == "stage1" and not stage1.get("policy")):
            done += self.run_stage1()
            _release_memory()  # stage 1's policy, optimizer and engine leave the device before stage 2 loads its own
        if "curriculum" not in self.stages:
            self.export_curriculum()
        if "stage2" not in self.stages:
            done += self.run_stage2()
        return done

    def run_stage1(self) -> list[dict[str, Any]]:
        """Skill1 in ``<run_dir>/stage1`` (resumed from its latest checkpoint); then its policy saved for stage 2."""
        trainer = Skill1Trainer(self.config.stage1_config(), backend=self.backend)
        try:
            history = trainer.train()
            library = trainer.library_path
            if library is None:
                raise ValueError(f"stage 1's library is served at {trainer.env_kwargs.get('library')}: the export to "
                                 "skill files needs the library file (leave env_kwargs' library unset)")  # fmt: skip
            policy = None
            if self.config.stage2_init == "stage1":
                policy = (trainer.run_dir / "policy").resolve()  # stage 2 and the leaderboard load it from anywhere
                trainer.world.on_main(lambda: save_policy(trainer.rollout_model, trainer.tokenizer, policy))
            record = {"step": trainer.step, "library": str(library), "policy": str(policy) if policy else None,
                      "last": _summary(history[-1]) if history else self.stages.get("stage1", {}).get("last", {})}  # fmt: skip
        finally:
            trainer.close()
        self._mark("stage1", record)
        return [{"stage": 1, **metrics} for metrics in history]

    def export_curriculum(self) -> Path:
        """Stage 1's library as SKILL0 files in :attr:`curriculum_dir` (rank 0 writes them); a clear error when it
        yields none."""
        self._mark("curriculum", self.world.on_main(self._export))
        return self.curriculum_dir

    def _export(self) -> dict[str, Any]:
        cfg, stage1 = self.config, self.stages["stage1"]
        rules = cfg.rules()
        with SkillLibrary(stage1["library"]) as library:
            try:
                curriculum = build_curriculum(library.skills(), library.embed, rules)
            except SkillValidationError as problem:
                lower = f", or a lower --min-selected (now {rules.min_selected})" if rules.min_selected > 0 else ""
                raise SkillValidationError(
                    f"stage 2 cannot start: no SKILL0 curriculum can be made of stage 1's library ({stage1['library']}, "
                    f"step {stage1['step']}): {problem}. Fix it (e.g. a longer --stage1-steps, which continues stage 1 "
                    f"from its last checkpoint{lower}) and run again with --resume: the finished stage 1 is kept"
                ) from problem
        source = {"library": str(Path(stage1["library"]).resolve()), "stage1_step": stage1["step"], "env": cfg.env_id}
        with staged_dir(self.curriculum_dir) as staging:
            write_curriculum(curriculum, staging, source, rules)
        if len(curriculum.files) == 1:
            warnings.warn(f"stage 2's curriculum ({self.curriculum_dir}) holds the general file alone: no task type "
                          "has a file of its own, so the curriculum withdraws that one file", stacklevel=1)  # fmt: skip
        files = {key: [s.id for s in skills] for key, skills in curriculum.files.items()}
        return {"folder": str(self.curriculum_dir), "files": files, "left_out": curriculum.left_out}

    def run_stage2(self) -> list[dict[str, Any]]:
        """SKILL0's curriculum in ``<run_dir>/stage2`` (resumed from its latest checkpoint) to zero skills, then the
        final evaluation without skills."""
        cfg = self.config
        model = self.stages["stage1"]["policy"] if cfg.stage2_init == "stage1" else cfg.model
        config = cfg.stage2_config(str(self.curriculum_dir), model)
        if cfg.stage2_distill:
            library = Path(config.run_dir) / "library.sqlite"
            if latest_checkpoint(config.run_dir) is None:  # a fresh stage 2 starts from stage 1's library
                self.world.on_main(lambda: copy_library(Path(self.stages["stage1"]["library"]), library))
            config.env_kwargs = {**config.env_kwargs, "library": str(library)}
            trainer = DistillingSkill0Trainer(config, cfg, cfg.rules(), backend=self.backend)
        else:
            trainer = Skill0Trainer(config, backend=self.backend)
        try:
            history = trainer.train()
            final = {f"final/{k}": v for k, v in trainer.world.on_main(trainer.evaluate).items()}
            trainer.log({"step": trainer.step, **final})
            record = {"step": trainer.step, "active": list(trainer.curriculum.active),
                      "last": _summary(history[-1]) if history else {}, "final": final}  # fmt: skip
            if isinstance(trainer, DistillingSkill0Trainer):
                record.update(library=str(trainer.library_path), files=trainer.skill_folder)
        finally:
            trainer.close()
        self._mark("stage2", record)
        return [{"stage": 2, **metrics} for metrics in history] + [{"stage": 2, "step": record["step"], **final}]

    def _mark(self, step: str, record: dict[str, Any]) -> None:
        """Record ``step`` as done in ``stages.json`` (rank 0 writes it whole; every rank keeps it)."""
        self.stages[step] = record
        if self.world.main:
            atomic_write(self.stages_path, json.dumps(self.stages, indent=2) + "\n")
        self.world.barrier()

    def close(self) -> None:
        """Each stage's trainer is closed when its stage ends; the shared backend, if one was given, here."""
        if self.backend is not None:
            self.backend.close()


def reuse_stage1(source: Path, run_dir: Path, config: Skill1To0Config) -> dict[str, Any]:
    """Copy the finished stage 1 of the two-stage run in ``source`` into ``run_dir/stage1`` (its library, its saved
    policy as hard links where the filesystem allows, its ``config.json`` and ``metrics.jsonl``); returns this run's
    ``stages.json`` record of it. Refused with the reason when ``source`` holds no finished stage 1, when it ran
    another number of steps, or when a stage-1 setting that changes what it learns differs from ``config``'s."""
    stages_path = source / "stages.json"
    stage1 = json.loads(stages_path.read_text()).get("stage1") if stages_path.is_file() else None
    if not stage1 or not stage1.get("library"):
        raise ValueError(f"stage1_from={source}: no finished stage 1 there (its stages.json records none); give the "
                         "run directory of a two-stage run whose stage 1 is done")  # fmt: skip
    if stage1["step"] != config.stage1_steps:
        raise ValueError(f"stage1_from={source}: its stage 1 ran {stage1['step']} steps, this run's stage1_steps is "
                         f"{config.stage1_steps}; set them equal")  # fmt: skip
    theirs = json.loads((source / "config.json").read_text())
    ours = json.loads(json.dumps(dataclasses.asdict(config)))
    differ = [f"{name}: {theirs.get(name)!r} there, {ours[name]!r} here"
              for name in STAGE1_FIELDS if name not in STAGE1_RUNTIME and theirs.get(name) != ours[name]]  # fmt: skip
    if differ:
        raise ValueError(f"stage1_from={source}: its stage 1 learned with other settings ({'; '.join(differ)}); "
                         "reuse a stage 1 only with the same stage-1 settings")  # fmt: skip
    if config.stage2_init == "stage1" and not (stage1.get("policy") and Path(stage1["policy"]).is_dir()):
        raise ValueError(f"stage1_from={source}: stage 2 starts from stage 1's policy, but that run saved none "
                         f"({stage1.get('policy')}); set stage2_init='base' or reuse a run that started stage 2 "
                         "from stage 1")  # fmt: skip
    target = run_dir / "stage1"
    library = copy_library(Path(stage1["library"]), target / "library.sqlite")
    for name in ("config.json", "metrics.jsonl"):
        if (source / "stage1" / name).is_file():
            shutil.copy2(source / "stage1" / name, target / name)
    policy = None
    if config.stage2_init == "stage1":
        policy = (target / "policy").resolve()
        shutil.rmtree(policy, ignore_errors=True)
        shutil.copytree(stage1["policy"], policy, copy_function=_link_or_copy)
    return {**stage1, "library": str(library.resolve()), "policy": str(policy) if policy else None,
            "from": str(source.resolve())}  # fmt: skip


def _link_or_copy(source: str, target: str) -> None:
    """A hard link to ``source`` (written once, never changed), or a copy across filesystems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def copy_library(source: Path, target: Path) -> Path:
    """A consistent copy of the library file ``source`` at ``target``, replacing whatever was there."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with SkillLibrary(source, read_only=True) as library, tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        restore_library(library.snapshot(scratch, 0), target)
    return target


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """A step's metrics without its timings."""
    return {k: v for k, v in metrics.items() if not k.startswith("perf/")}


def _release_memory() -> None:
    """Collect a finished stage's objects and hand the device memory they held back."""
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
