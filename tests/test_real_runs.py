"""Short real runs: SmolLM2-135M-Instruct + LoRA on SkillAlfworld-v0 (transformers backend, CPU).

Tiny limits (one task, two rollouts, two act steps, short responses); they check that each learner
runs end to end on the real model and engine and writes its run directory.
"""

from __future__ import annotations

import json

import pytest

from agents.grpo import GRPOConfig, GRPOTrainer
from agents.skill0 import Skill0Config, Skill0Trainer
from agents.skill1 import Skill1Config, Skill1Trainer

pytestmark = pytest.mark.slow

TINY = dict(
    total_steps=1, tasks_per_step=1, group_size=2, max_new_tokens=24, micro_batch_size=4, mini_batch_size=64,
    max_turns=8, learning_rate=1e-5, progress=False, env_kwargs={"max_steps": 2},
)  # fmt: skip


def _check_run_dir(run_dir, steps: int = 1) -> list[dict]:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines if m["step"] > 0] == list(range(1, steps + 1))
    assert (run_dir / "config.json").is_file() and list((run_dir / "tensorboard").iterdir())
    assert (run_dir / "checkpoints" / f"step_{steps:06d}" / "adapter" / "adapter_config.json").is_file()
    return lines


def test_grpo_smollm2_lora_on_skill_alfworld(tmp_path):
    trainer = GRPOTrainer(GRPOConfig(env_id="SkillAlfworld-v0", run_dir=str(tmp_path / "grpo"), **TINY))
    [metrics] = trainer.train()
    trainer.close()
    assert metrics["perf/response_tokens"] > 0 and metrics["turns/act_per_episode"] >= 1
    _check_run_dir(tmp_path / "grpo")


def test_skill1_smollm2_every_phase_trains(tmp_path):
    config = Skill1Config(env_id="SkillAlfworld-v0", run_dir=str(tmp_path / "skill1"), min_similarity=0.0,
                          top_k=3, **{**TINY, "group_size": 2})  # fmt: skip
    trainer = Skill1Trainer(config)
    from skill_gym.library import Skill, SkillLibrary

    with SkillLibrary(trainer.library_path) as lib:  # two skills, so that the rerank phase happens
        lib.admit(Skill(description="Heating an object in the microwave.", strategy="Use microwave 1.", env="alfworld"))
        lib.admit(
            Skill(description="Cleaning an object in the sink basin.", strategy="Use sinkbasin 1.", env="alfworld")
        )
    episodes, _ = trainer.collect()
    assert {t.phase for e in episodes for t in e.turns} == {"select", "rerank", "act", "distill"}
    assert all(t.response_ids and t.prompt_ids for e in episodes for t in e.turns)
    [metrics] = trainer.train()
    trainer.close()
    assert metrics["library/added"] == 0.0  # SmolLM2 does not win in two steps, so nothing is admitted
    _check_run_dir(tmp_path / "skill1")


def test_skill0_smollm2_curriculum_update_and_resume(tmp_path):
    settings = dict(TINY, total_steps=2, save_every=1, test_freq=1, budget_schedule=[3, 1], validation_tasks=1)
    trainer = Skill0Trainer(Skill0Config(env_id="SkillAlfworld-v0", run_dir=str(tmp_path / "skill0"), **settings))
    trainer.config.total_steps = 1
    trainer.train()
    trainer.close()
    decided = trainer.curriculum.active
    assert [d["step"] for d in trainer.curriculum.decisions] == [0, 1]
    resumed = Skill0Trainer(Skill0Config(env_id="SkillAlfworld-v0", run_dir=str(tmp_path / "skill0"), resume=True,
                                         **settings))  # fmt: skip
    assert resumed.step == 1 and resumed.curriculum.active == decided
    assert all(list(env.unwrapped.static_skills.active) == decided for env in resumed.envs.envs)
    resumed.train()
    resumed.close()
    _check_run_dir(tmp_path / "skill0", steps=2)
