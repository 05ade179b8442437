"""SKILL0: curriculum decisions by hand, a run with one curriculum update, resume restoring the active set."""

from __future__ import annotations

import pytest

from agents.skill0 import Curriculum, Skill0Config, Skill0Trainer, budget_at, choose_active, file_deltas
from skill_gym.library import SkillValidationError
from skill_gym.skill_env import StaticSkillSet
from tests.scripted_policy import ScriptedKeywordAgent
from tests.tiny_policy import tiny_policy

MAPPING = {
    "pick_and_place_simple": "pick_and_place", "pick_two_obj_and_place": "pick_and_place",
    "pick_heat_then_place_in_recep": "heat", "pick_cool_then_place_in_recep": "cool",
    "pick_clean_then_place_in_recep": "clean", "look_at_obj_in_light": "look_at_obj_in_light",
}  # fmt: skip


def test_budget_phases_and_the_first_validation():
    schedule = [6, 3, 0]
    assert budget_at(0, schedule, 180, 10) == 6  # upstream's bug gave schedule[-1] = 0 here
    assert [budget_at(s, schedule, 180, 10) for s in range(10, 181, 10)] == [6] * 6 + [3] * 6 + [0] * 6
    assert budget_at(4, [5, 3, 0], 12, 2) == 5 and budget_at(6, [5, 3, 0], 12, 2) == 3


def test_deltas_drops_ordering_and_the_general_file():
    with_skills = {"pick_and_place_simple": 0.8, "pick_two_obj_and_place": 0.4, "pick_heat_then_place_in_recep": 0.5,
                   "pick_cool_then_place_in_recep": 0.2, "pick_clean_then_place_in_recep": 0.9,
                   "look_at_obj_in_light": 0.6}  # fmt: skip
    without = {"pick_and_place_simple": 0.6, "pick_two_obj_and_place": 0.4, "pick_heat_then_place_in_recep": 0.1,
               "pick_cool_then_place_in_recep": 0.3, "pick_clean_then_place_in_recep": 0.9,
               "look_at_obj_in_light": 0.6}  # fmt: skip
    deltas = file_deltas(with_skills, without, MAPPING)
    assert deltas == pytest.approx({"pick_and_place": 0.1, "heat": 0.4, "cool": -0.1, "clean": 0.0,
                                    "look_at_obj_in_light": 0.0})  # fmt: skip
    assert choose_active(deltas, 6) == ["general_skills", "heat", "pick_and_place", "clean", "look_at_obj_in_light"]
    assert choose_active(deltas, 3) == ["general_skills", "heat", "pick_and_place"]
    assert choose_active(deltas, 1) == ["general_skills"]
    assert choose_active(deltas, 0) == []
    curriculum = Curriculum([6, 3, 0], total_steps=180, test_freq=10, active=["general_skills", "heat"])
    for step in (0, 70, 130):
        curriculum.update(step, with_skills, without, MAPPING)
    assert [d["budget"] for d in curriculum.decisions] == [6, 3, 0]
    assert curriculum.active == []  # the run ends, and evaluates, with zero skills
    assert Curriculum.from_state(curriculum.state()) == curriculum


def test_malformed_skill_files_name_the_file_and_line(tmp_path):
    (tmp_path / "general_skills.md").write_text("### GENERAL SKILLS ###\nintro\n1. A: b\n")
    (tmp_path / "heat.md").write_text("### TASK: heat ###\nintro\n1. Heat: use it\n2 Missing dot: oops\n")
    with pytest.raises(SkillValidationError, match=r"heat\.md line 4"):
        StaticSkillSet(tmp_path)


def _trainer(tmp_path, **overrides) -> Skill0Trainer:
    model, tokenizer = tiny_policy()
    settings = dict(
        env_id="SkillKeyword-v0", run_dir=str(tmp_path / "run"), lora_rank=0, learning_rate=1e-3, total_steps=4,
        tasks_per_step=2, group_size=2, max_new_tokens=8, env_kwargs={"answer_format": "plain"}, entropy_coef=0.0,
        micro_batch_size=16, save_every=2, progress=False, max_turns=4, test_freq=2, budget_schedule=[3, 1],
    )  # fmt: skip
    settings.update(overrides)
    agent = ScriptedKeywordAgent(tokenizer, p_correct=0.6)
    return Skill0Trainer(Skill0Config(**settings), model=model, tokenizer=tokenizer, backend=agent)


def test_run_with_curriculum_updates_and_resume_restores_the_active_set(tmp_path):
    trainer = _trainer(tmp_path)
    assert sorted(trainer.curriculum.active) == ["echo", "general_skills", "opposite", "plural"]
    history = trainer.train()
    trainer.close()
    decisions = trainer.curriculum.decisions
    assert [d["step"] for d in decisions] == [0, 2, 4] and [d["budget"] for d in decisions] == [3, 3, 1]
    assert trainer.curriculum.active == ["general_skills"]
    assert all(env.unwrapped.static_skills.active == ("general_skills",) for env in trainer.envs.envs)
    assert "val/delta/opposite" in history[1] and history[1]["curriculum/budget"] == 3
    assert history[0]["tokens/prompt_per_turn"] > 0

    resumed = _trainer(tmp_path, resume=True, total_steps=6)
    assert resumed.step == 4 and resumed.curriculum.decisions == decisions
    assert all(env.unwrapped.static_skills.active == ("general_skills",) for env in resumed.envs.envs)
    resumed.close()


def test_baselines_from_the_same_code(tmp_path):
    full = _trainer(tmp_path / "full", mode="full", total_steps=2)
    full.train()
    assert len(full.curriculum.active) == 4 and full.curriculum.decisions == []
    full.close()
    none = _trainer(tmp_path / "none", mode="none", total_steps=2)
    metrics = none.train()
    assert none.curriculum.active == [] and metrics[-1]["val/prompt_tokens_with_skills"] > 0
    none.close()
