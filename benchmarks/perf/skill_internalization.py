"""Does a library that Skill1 distils serve as SKILL0's curriculum? Four learners on ``SkillKeyword-v0``, on CPU.

The same model (SmolLM2-135M, LoRA, the CPU preset), seeds, tasks (the ``train`` split), total steps and sampled
held-out episodes (the ``test`` split: unseen words of the same rules) for each of:

0. ``base`` — the untrained policy (no training), the reference every arm starts from;
1. ``grpo`` — GRPO on the base task (no skill turns);
2. ``skill0`` — SKILL0's curriculum on the hand-written starter skill files, withdrawn to zero skills;
3. ``skill1`` — Skill1 (query, rerank, act, distill turns, its own library);
4. ``skill1to0`` — Skill1 for half the steps, its library exported as SKILL0 files
   (``skill_gym.library.curriculum``), SKILL0's curriculum on them for the other half, withdrawn to zero;
5. ``skill1to0_distill`` — the same with the one-stage option (``stage2_distill``): stage 2's distill turn keeps
   writing, and each curriculum decision exports the files again. Its stage 1 is arm 4's (same settings and
   seeds, so the same run): when arm 4's stage 1 is done under the same runs folder, it is reused
   (``stage1_from``) rather than trained again, so the two arms differ in stage 2 alone.

Every arm is evaluated **with no skills in context** (``selection="none"``: no retrieval, no skill turns), greedy
and sampled at the training temperature; Skill1 is evaluated with its frozen library too, for reference.
Reported per arm: held-out success with 95 % Wilson intervals over episodes, tokens per episode at evaluation,
wall time; for the Skill1 arms, the library's size and its top skills; for the two-stage arm, what the export
kept or why stage 2 could not start. The claim under test: arm 4 ≥ arm 2 without hand-written files, at a lower
inference cost than arm 3 with its library. The numbers are written whichever way they go.

    python -m benchmarks.perf.skill_internalization [--steps 16] [--tasks-per-step 4] [--group-size 4]
        [--eval-samples 8] [--arms grpo,skill0,skill1,skill1to0] [--model PATH_OR_ID] [--device cuda]
        [--out benchmarks/results/skill_internalization.json]

Time on the 2-core machine with 4 tasks x 4 rollouts, two arms at a time at one thread each: about 90 s a step
for GRPO, 125 s for SKILL0, 450 s for Skill1 (its distill turn writes JSON) and 370 s for the one-stage stage 2;
``--steps 8`` took about 2 hours in all, ``--steps 16`` takes twice that. Writes the JSON.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.perf import common
from benchmarks.perf.learning_curve import rate

PACKAGES = ("torch", "transformers", "peft", "skill-gym")
ENV_ID = "SkillKeyword-v0"
TASK = {"answer_format": "plain", "max_steps": 1}
"""The base task of every arm: the bare word, one try."""
NO_SKILLS = {**TASK, "selection": "none", "distillation": "none"}
"""Evaluation (and GRPO's training): no retrieval, no skill turns, no skill text in context."""
ARMS = ("base", "grpo", "skill0", "skill1", "skill1to0", "skill1to0_distill")


@dataclasses.dataclass
class Args:
    """Benchmark settings; each field is a ``--flag`` (underscores as dashes)."""

    steps: int = dataclasses.field(default=16, metadata={"help": "training steps per arm (the two-stage arm: split)"})
    tasks_per_step: int = dataclasses.field(default=4, metadata={"help": "distinct tasks per step"})
    group_size: int = dataclasses.field(default=4, metadata={"help": "rollouts per task (the GRPO group)"})
    max_new_tokens: int = dataclasses.field(default=96, metadata={"help": "token budget of one response"})
    eval_samples: int = dataclasses.field(default=8, metadata={"help": "sampled held-out episodes per task"})
    arms: str = dataclasses.field(default=",".join(ARMS), metadata={"help": "comma-separated arms to run"})
    min_selected: int = dataclasses.field(default=0, metadata={"help": "export: support a skill needs"})
    model: str = dataclasses.field(default="", metadata={"help": "policy model of every arm (default: SmolLM2-135M)"})
    device: str = dataclasses.field(default="", metadata={"help": "training device, e.g. cuda (default: the config's)"})
    seed: int = dataclasses.field(default=0, metadata={"help": "seed of every arm"})
    threads: int = dataclasses.field(default=2, metadata={"help": "torch intra-op threads"})
    runs: str = dataclasses.field(
        default="", metadata={"help": "keep each arm's run dir in this folder (default: a temporary one, removed)"}
    )
    out: str = dataclasses.field(
        default="benchmarks/results/skill_internalization.json", metadata={"help": "JSON path"}
    )


def held_out(backend: Any, args: Args, temperature: float, env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Success and tokens per episode on the ``test`` split, greedy (one episode a task) and sampled."""
    from agents.evaluation import evaluate

    out = {}
    for name, temp, per_task in (("greedy", 0.0, 1), ("sampled", temperature, args.eval_samples)):
        result = evaluate(
            backend, ENV_ID, env_kwargs={**env_kwargs, "split": "test"}, episodes_per_task=per_task, num_envs=48,
            temperature=temp, max_new_tokens=args.max_new_tokens, max_turns=8, seed=args.seed + 1,
        )  # fmt: skip
        episodes = result.episodes
        out[name] = {
            "success": rate(sum(e.won for e in episodes), len(episodes)),
            "tokens_per_episode": (result.prompt_tokens + result.response_tokens) / max(len(episodes), 1),
            "turns_per_episode": sum(len(e.turns) for e in episodes) / max(len(episodes), 1),
        }
    return out


def _common(args: Args, run_dir: Path) -> dict[str, Any]:
    settings = dict(
        env_id=ENV_ID, tasks_per_step=args.tasks_per_step, group_size=args.group_size,
        max_new_tokens=args.max_new_tokens, max_turns=8, seed=args.seed, save_every=10**6, progress=False,
        run_dir=str(run_dir),
    )  # fmt: skip
    chosen = {"model": args.model, "device": args.device}
    return {**settings, **{name: value for name, value in chosen.items() if value}}


STEP_KEYS = {"success": "success/all", "step_s": "perf/step_seconds", "library_size": "library/size",
             "skills_added": "library/added", "invalid_skill": "skill/invalid_skill",
             "budget": "curriculum/budget", "reexported_skills": "reexport/skills"}  # fmt: skip
"""What each training step's record keeps (a key the learner does not log is left out)."""


def _steps(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"step": m["step"], **{name: m[key] for name, key in STEP_KEYS.items() if key in m}}
            for m in history if "success/all" in m]  # fmt: skip


def _library(path: Path, top: int = 5) -> dict[str, Any]:
    """Size and top skills (by utility) of a run's library file."""
    from skill_gym.library import SkillLibrary

    if not path.is_file():
        return {"size": 0, "top": []}
    with SkillLibrary(path) as library:
        skills = sorted(library.skills(), key=lambda s: (s.utility, s.n_selected), reverse=True)
    return {"size": len(skills), "top": [{"description": s.description, "strategy": s.strategy,
                                          "task_type": s.task_type, "utility": round(s.utility, 3),
                                          "n_selected": s.n_selected, "n_success": s.n_success}
                                         for s in skills[:top]]}  # fmt: skip


def run_arm(arm: str, args: Args, root: Path) -> dict[str, Any]:
    """Train one arm and evaluate it without skills (Skill1 with its library too)."""
    from agents.grpo import GRPOConfig, GRPOTrainer
    from agents.skill0 import Skill0Config, Skill0Trainer
    from agents.skill1 import Skill1Config, Skill1Trainer

    started = time.perf_counter()
    run_dir = root / arm
    if arm == "base":
        return run_base(args, started)
    if arm.startswith("skill1to0"):
        return run_two_stage(args, run_dir, started, distill=arm == "skill1to0_distill")
    common_settings = {**_common(args, run_dir), "total_steps": args.steps}
    if arm == "grpo":
        trainer = GRPOTrainer(GRPOConfig.cpu_defaults(**common_settings, env_kwargs=dict(NO_SKILLS)))
    elif arm == "skill0":
        config = Skill0Config.cpu_defaults(**common_settings, env_kwargs=dict(TASK), mode="curriculum",
                                           budget_schedule=[3, 1, 0], test_freq=max(args.steps // 4, 1),
                                           validation_tasks=6)  # fmt: skip
        trainer = Skill0Trainer(config)
    else:
        trainer = Skill1Trainer(Skill1Config.cpu_defaults(**common_settings, env_kwargs=dict(TASK)))
    try:
        history = trainer.train()
        result = {"steps": _steps(history), "no_skills": held_out(trainer.backend, args, trainer.config.temperature,
                                                                  NO_SKILLS)}  # fmt: skip
        if arm == "skill1":
            frozen = {**trainer.env_kwargs, **trainer.config.eval_env_kwargs}  # its own validation's: frozen, greedy
            result["with_library"] = held_out(trainer.backend, args, trainer.config.temperature, frozen)
            result["library"] = _library(trainer.library_path)
    finally:
        trainer.close()
    return {**result, "wall_s": time.perf_counter() - started}


def _policy_backend(model: str | None, args: Args) -> Any:
    """A transformers backend on ``model`` (an id, a folder or a run's checkpoint), on ``args.device`` if set."""
    from agents.backends.hf import TransformersBackend
    from benchmarks.leaderboard.specs import load_policy_or_checkpoint

    net, tokenizer = load_policy_or_checkpoint(model)
    return TransformersBackend(net.to(args.device) if args.device else net, tokenizer)


def run_base(args: Args, started: float) -> dict[str, Any]:
    """The untrained policy, evaluated as the arms are (sampled at the training temperature)."""
    from agents.grpo import GRPOConfig

    backend = _policy_backend(args.model or None, args)
    try:
        result = {"no_skills": held_out(backend, args, GRPOConfig.cpu_defaults().temperature, NO_SKILLS)}
    finally:
        backend.close()
    return {**result, "wall_s": time.perf_counter() - started}


def run_two_stage(args: Args, run_dir: Path, started: float, distill: bool = False) -> dict[str, Any]:
    """Skill1 for half the steps, then SKILL0 on its exported library (``distill``: still distilling, exported
    again at each curriculum decision); evaluated from the run's final policy."""
    from agents.skill1to0 import Skill1To0Config, Skill1To0Trainer
    from benchmarks.leaderboard.specs import two_stage_policy
    from skill_gym.library import SkillValidationError

    stage1 = max(args.steps // 2, 1)
    settings = {**_common(args, run_dir), "save_every": 1}  # stage 2 loads stage 1's final checkpoint
    two_stage = run_dir.parent / "skill1to0"
    if distill and "stage1" in _stages(two_stage):
        settings["stage1_from"] = str(two_stage)
    config = Skill1To0Config.cpu_defaults(**settings, env_kwargs=dict(TASK), stage1_steps=stage1,
                                          stage2_steps=args.steps - stage1, min_selected=args.min_selected,
                                          stage2_distill=distill)  # fmt: skip
    trainer = Skill1To0Trainer(config)
    result: dict[str, Any] = {"stage1_from": config.stage1_from} if config.stage1_from else {}
    try:
        history = trainer.train()
        result["steps"] = [{"stage": m["stage"], **s} for m in history for s in _steps([m])]
    except SkillValidationError as problem:  # the library gave no curriculum: that is the finding
        result["stage2_not_started"] = str(problem)
    finally:
        trainer.close()
    result["library"] = _library(run_dir / "stage1" / "library.sqlite")
    if distill:
        result["stage2_library"] = _library(run_dir / "stage2" / "library.sqlite")
    if "stage2_not_started" in result:
        return {**result, "wall_s": time.perf_counter() - started}
    mapping = run_dir / "curriculum" / "skill_mapping.json"
    result["curriculum"] = json.loads(mapping.read_text())["provenance"] if mapping.is_file() else {}
    backend = _policy_backend(str(two_stage_policy(run_dir)), args)
    try:
        result["no_skills"] = held_out(backend, args, config.temperature, NO_SKILLS)
    finally:
        backend.close()
    return {**result, "wall_s": time.perf_counter() - started}


def _stages(run_dir: Path) -> dict[str, Any]:
    """What a two-stage run in ``run_dir`` has finished (its ``stages.json``; empty when none)."""
    path = run_dir / "stages.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def main(args: Args) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        raise SystemExit(f"unknown arms {unknown}; known: {', '.join(ARMS)}")
    job = common.Job("skill_internalization", args, PACKAGES)
    root = Path(args.runs) if args.runs else Path(tempfile.mkdtemp(prefix="skill-internalization-"))
    root.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    try:
        for arm in arms:
            results[arm] = run_arm(arm, args, root)
            partial = {"partial": f"{len(results)} of {len(arms)} arms", "args": common.settings_dict(args)}
            common.write_json(args.out, {**partial, "arms": results})
    finally:
        if not args.runs:
            shutil.rmtree(root, ignore_errors=True)
    rows = []
    for arm, r in results.items():
        sampled = r.get("no_skills", {}).get("sampled")
        cell = "–"
        if sampled:
            low, high = sampled["success"]["ci95"]
            cell = f"{sampled['success']['rate']:.2f} [{low:.2f}, {high:.2f}]"
        tokens = f"{sampled['tokens_per_episode']:.0f}" if sampled else "–"
        rows.append([arm, cell, tokens, str(r.get("library", {}).get("size", "–")), f"{r['wall_s'] / 60:.1f}"])
    common.print_table(["arm", "held-out success, no skills (sampled, 95% CI)", "tokens/ep", "library", "min"], rows)
    return job.finish({"env": {"id": ENV_ID, "task": TASK, "evaluation": NO_SKILLS, "held_out": "split=test"},
                       "arms": results})  # fmt: skip


if __name__ == "__main__":
    main(common.parse_settings(Args, None, __doc__))
