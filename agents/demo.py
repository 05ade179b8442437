"""``skill-gym demo`` (``make demo``): an end-to-end tour on the embedded defaults, offline.

1. Build a skill library from the ALFWorld starter skills (real all-MiniLM-L6-v2 embeddings) and
   retrieve skills for a few tasks.
2. Play ``SkillAlfworld-v0`` on the real engine with alfworld's expert as the agent: select a
   skill by similarity, act, distill a skill from each success, and watch the next episode
   retrieve it.
3. Train Skill1 for one step with SmolLM2-135M-Instruct + LoRA on tiny limits (CPU), writing a
   run directory with metrics, TensorBoard events, a checkpoint and the library snapshot.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import gymnasium as gym

import skill_gym  # noqa: F401  (registers the env ids)
from skill_gym.library import SkillLibrary, load_skills
from skill_gym.skill_env import starter_skills_dir

__all__ = ["run_demo"]

_TASK_TYPES = ("pick_heat_then_place_in_recep", "pick_cool_then_place_in_recep", "pick_clean_then_place_in_recep")


def run_demo(workdir: Path, train: bool = True) -> int:
    """Run the three parts; returns 0 on success."""
    started = time.perf_counter()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    library_path = workdir / "library.sqlite"

    print("== 1. skill library on real embeddings ==")
    with SkillLibrary(library_path) as lib:
        written = lib.add(load_skills(starter_skills_dir("alfworld"), env="alfworld"))
        print(f"imported {len(written)} starter skills into {library_path}")
        for query in ("heat a mug and put it in the cabinet", "look at the book under the lamp"):
            hits = lib.retrieve(query, k=2, min_similarity=0.0)
            print(f"  {query!r} -> " + "; ".join(f"{h.skill.name or h.skill.id} ({h.similarity:.2f})" for h in hits))

    print("\n== 2. SkillAlfworld-v0 with the expert as the agent ==")
    env = gym.make("SkillAlfworld-v0", library=str(library_path), selection="similarity", expert_action=True)
    ids = env.unwrapped.task_ids
    for task_type in _TASK_TYPES:
        for attempt, task_id in enumerate([t for t in ids if task_type in t][:2]):
            obs, info = env.reset(seed=attempt, options={"task_id": task_id})
            chosen = info["skill"]["chosen_id"]
            steps = 0
            while obs["phase"] == "act":
                obs, _, terminated, truncated, info = env.step(info["expert_action"])
                steps += 1
                if terminated or truncated:
                    break
            result = "won" if info["won"] else "lost"
            line = (
                f"  {task_id.split('/')[-2][:48]:48s} {result} in {steps:2d} steps; skill in context: {chosen or '-'}"
            )
            if obs["phase"] == "distill":
                skill = {"description": f"Tasks like: {obs['task']}", "strategy": _strategy(task_type)}
                obs, _, _, _, info = env.step(json.dumps(skill))
                admission = info["skill"]["admission"]
                line += f"; distilled -> {admission['status']} {admission['skill_id']}"
            print(line)
    env.close()

    if train:
        print("\n== 3. Skill1, one step, SmolLM2-135M-Instruct + LoRA (CPU, tiny limits) ==")
        from agents.skill1 import Skill1Config, Skill1Trainer

        config = Skill1Config(
            env_id="SkillAlfworld-v0", run_dir=str(workdir / "skill1"), total_steps=1, tasks_per_step=1,
            group_size=2, max_new_tokens=32, micro_batch_size=4, env_kwargs={"max_steps": 3}, learning_rate=1e-5,
        )  # fmt: skip
        trainer = Skill1Trainer(config)
        try:
            [metrics] = trainer.train()
        finally:
            trainer.close()
        keys = ("reward/mean", "success/all", "library/size", "skill/invalid_query", "loss/total", "perf/tokens_per_s")
        print("  " + ", ".join(f"{k}={metrics[k]:.3f}" for k in keys))
        print(
            f"  run directory: {config.run_dir} ({', '.join(sorted(p.name for p in Path(config.run_dir).iterdir()))})"
        )
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s; outputs under {workdir}")
    return 0


def _strategy(task_type: str) -> str:
    verb = {"pick_heat": "heat it with microwave 1", "pick_cool": "cool it with fridge 1",
            "pick_clean": "clean it with sinkbasin 1"}[task_type[: task_type.index("_", 5)]]  # fmt: skip
    return f"Find the object and take it, {verb}, then go to the target receptacle and move it there."
