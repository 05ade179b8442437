"""SKILL0's released-code switches: the step-0 budget, SkillZero's own skill-file layout, the closing test."""

from __future__ import annotations

import json

import pytest

from agents.recipes import resolve_config
from agents.skill0 import Curriculum, Skill0Config, Skill0Trainer, budget_at
from skill_gym.library import SkillValidationError
from skill_gym.skill_env import StaticSkillSet
from tests.scripted_policy import ScriptedKeywordAgent
from tests.tiny_policy import tiny_policy

# A folder laid out exactly as ZJU-REAL/SkillZero's skills/alfworld (our own words in its format).
GENERAL = """### GENERAL SKILLS ###

Here are some useful general strategies for completing tasks in this environment:

1. Look Before Walking: Read the room description once and list the receptacles worth opening. Apply this at the start of every episode.

2. Hold Then Place: Keep the target object in hand until the destination is reached. Apply this whenever the goal names a destination.
"""
HEAT = """### TASK: heat ###

For this heat-and-place task, apply these specific strategies:

1. Microwave After Pickup: Heat only once the named object is in hand. Apply this when you reach the microwave.
"""
PICK = """### TASK: pick_and_place ###

For this pick-and-place task, apply these specific strategies:

1. Count The Objects: Track how many objects the goal still needs. Apply this on goals that name two objects.
"""
MAPPING = {
    "skill_files": {"general_skills": "general_skills.md", "heat": "heat.md", "pick_and_place": "pick_and_place.md"},
    "task_to_skill": {
        "pick_and_place": "pick_and_place",
        "pick_two_obj_and_place": "pick_and_place",
        "pick_heat_then_place_in_recep": "heat",
    },
}


def _skillzero_folder(path, mapping=MAPPING):
    path.mkdir(parents=True, exist_ok=True)
    for name, text in (("general_skills.md", GENERAL), ("heat.md", HEAT), ("pick_and_place.md", PICK)):
        (path / name).write_text(text)
    (path / "alfworld_skills_nl.md").write_text(GENERAL + "\n" + HEAT + "\n" + PICK)  # the all-in-one file
    (path / "skill_mapping.json").write_text(json.dumps(mapping, indent=2))
    return path


def test_skillzero_folder_is_read_as_it_is(tmp_path):
    skills = StaticSkillSet(_skillzero_folder(tmp_path / "alfworld"))
    assert sorted(skills.files) == ["general_skills", "heat", "pick_and_place"]  # only the files skill_files lists
    assert skills.file_for("pick_and_place_simple") == "pick_and_place"  # SkillZero matches names inside game paths
    assert skills.file_for("pick_two_obj_and_place") == "pick_and_place"
    assert skills.file_for("pick_heat_then_place_in_recep") == "heat" and skills.file_for("look_at_obj") is None
    text = skills.render("pick_heat_then_place_in_recep")
    assert "### GENERAL SKILLS ###" in text and "### TASK: heat ###" in text and "TASK: pick_and_place" not in text
    assert "Microwave After Pickup: Heat only once the named object is in hand. Apply this when you reach" in text
    assert skills.keys_for("pick_and_place_simple") == ["general_skills", "pick_and_place"]


def test_skillzero_search_folder_maps_our_task_types(tmp_path):
    folder = tmp_path / "search"
    folder.mkdir()
    (folder / "general_skills.md").write_text(GENERAL)
    (folder / "compare.md").write_text(HEAT.replace("TASK: heat", "TASK: compare"))
    mapping = {"skill_files": {"general_skills": "general_skills.md", "compare": "compare.md"},
               "task_to_skill": {"compare": "compare"}}  # fmt: skip
    (folder / "skill_mapping.json").write_text(json.dumps(mapping))
    skills = StaticSkillSet(folder)
    assert skills.file_for("comparison") == "compare"  # our Search-QA type; SkillZero's skill_type is "compare"
    assert "### TASK: compare ###" in skills.render("comparison") and skills.file_for("direct_retrieval") is None


def test_skillzero_mapping_errors_name_the_problem(tmp_path):
    broken = {**MAPPING, "skill_files": {**MAPPING["skill_files"], "cool": "cool.md"}}
    with pytest.raises(SkillValidationError, match=r"lists cool\.md, which is missing"):
        StaticSkillSet(_skillzero_folder(tmp_path / "missing", broken))
    outside = {**MAPPING, "skill_files": {**MAPPING["skill_files"], "heat": "../heat.md"}}
    with pytest.raises(SkillValidationError, match="not paths"):
        StaticSkillSet(_skillzero_folder(tmp_path / "outside", outside))
    with pytest.raises(SkillValidationError, match="skill_files"):
        StaticSkillSet(_skillzero_folder(tmp_path / "typed", {**MAPPING, "skill_files": ["general_skills.md"]}))


def test_released_step0_budget_is_the_schedules_last():
    assert budget_at(0, [6, 3, 0], 180, 10, step0="last") == 0  # (0 - 1) // 10 // 6 = -1 → schedule[-1]
    assert budget_at(0, [5, 3, 0], 180, 10, step0="last") == 0 and budget_at(0, [6, 3, 0], 180, 10) == 6
    assert budget_at(10, [6, 3, 0], 180, 10, step0="last") == 6  # later validations are unchanged
    deltas = {"heat": 0.2, "pick_and_place": 0.1}
    mapping = {"heat": "heat", "pick_and_place": "pick_and_place"}
    released = Curriculum([6, 3, 0], 180, 10, active=["general_skills", "heat"], step0="last")
    paper = Curriculum([6, 3, 0], 180, 10, active=["general_skills", "heat"])
    for curriculum in (released, paper):
        curriculum.update(0, deltas, dict.fromkeys(deltas, 0.0), mapping)
    assert released.active == [] and paper.active == ["general_skills", "heat", "pick_and_place"]


def test_recipes_resolve_per_env_family():
    alf = resolve_config("skill0", Skill0Config, "paper", "released", {"env_id": "SkillAlfworld-v0"})
    search = resolve_config("skill0", Skill0Config, "paper", "released", {"env_id": "SkillSearchQA-v0"})
    paper = resolve_config("skill0", Skill0Config, "paper", "paper", {"env_id": "SkillAlfworld-v0"})
    assert (alf.history_length, alf.max_new_tokens, alf.kl_coef, alf.entropy_coef, alf.total_steps) == (
        50,
        512,
        0.0,
        0.001,
        180,
    )
    assert (alf.group_size, alf.tasks_per_step, alf.budget_schedule, alf.step0_budget) == (8, 16, [6, 3, 0], "last")
    assert (search.history_length, search.tasks_per_step, search.invalid_penalty) == (4, 128, 0.01)
    assert (search.budget_schedule, search.test_after_train, alf.test_after_train) == ([5, 3, 0], True, False)
    assert (paper.step0_budget, paper.kl_coef, paper.budget_schedule) == ("first", 0.0, [6, 3, 0])


def _trainer(tmp_path, **overrides) -> Skill0Trainer:
    model, tokenizer = tiny_policy()
    settings = dict(
        env_id="SkillKeyword-v0", run_dir=str(tmp_path / "run"), lora_rank=0, learning_rate=1e-3, total_steps=2,
        tasks_per_step=2, group_size=2, max_new_tokens=8, env_kwargs={"answer_format": "plain"}, entropy_coef=0.0,
        micro_batch_size=16, save_every=2, progress=False, max_turns=4, test_freq=2, budget_schedule=[3, 1],
    )  # fmt: skip
    settings.update(overrides)
    agent = ScriptedKeywordAgent(tokenizer, p_correct=0.6)
    return Skill0Trainer(Skill0Config(**settings), model=model, tokenizer=tokenizer, backend=agent)


def _logged(trainer) -> list[dict]:
    return [json.loads(line) for line in (trainer.run_dir / "metrics.jsonl").read_text().splitlines()]


def test_released_run_starts_with_the_last_budget_and_ends_with_both_tests(tmp_path):
    trainer = _trainer(tmp_path, step0_budget="last", test_after_train=True)
    trainer.train()
    assert [d["budget"] for d in trainer.curriculum.decisions] == [1, 3]  # step 0 took schedule[-1]
    assert trainer.curriculum.decisions[0]["active"] == ["general_skills"]
    final = _logged(trainer)[-1]
    assert final["step"] == 2 and 0.0 <= final["test/full_skill/success"] <= 1.0
    assert final["test/full_skill/prompt_tokens"] > final["test/no_skill/prompt_tokens"] > 0
    assert "test/no_skill/opposite" in final
    trainer.close()
    plain = _trainer(tmp_path / "plain")
    plain.train()
    assert not any(key.startswith("test/") for line in _logged(plain) for key in line)  # the paper run just ends
    plain.close()
