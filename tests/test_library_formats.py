"""Import/export of skill files (native, Skill1, SkillRL, SKILL0 markdown) and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from skill_gym.library import Skill, SkillValidationError, dump_skills, load_skills, parse_skill_markdown


def _records() -> list[Skill]:
    return [
        Skill(name="Systematic Exploration", description="Anytime the goal object has not been found yet.",
              strategy="Search every surface once before revisiting.", env="alfworld", source="imported",
              provenance={"kind": "general", "policy_step": 3}),
        Skill(name="Heat First", description="Apply this before placing a heated object.",
              strategy="Heat the object in the microwave, then place it.", env="alfworld",
              task_type="heat", utility=0.73, n_retrieved=4, n_selected=2, n_success=1, source="distilled",
              provenance={"task": "put a hot mug in cabinet.", "episode": 12, "policy_step": 40, "time": 1.5e9}),
        Skill(name="mistake", description="Revisiting already-searched places.", strategy="Keep a list of visited places.",
              env="alfworld", provenance={"kind": "mistake", "why_it_happens": "no memory"}),
        Skill(description="Ünïcödé — 中文 description", strategy="Multi\nline\nstrategy: with colons", env="alfworld"),
    ]  # fmt: skip


@pytest.mark.parametrize("fmt", ["native", "skill1", "skillrl"])
def test_json_round_trips_lose_nothing(tmp_path, fmt):
    skills = _records()
    path = dump_skills(skills, tmp_path / f"lib.{fmt}.json", fmt)
    back = load_skills(path)  # format detected from the file itself
    assert sorted(back, key=lambda s: s.id) == sorted(skills, key=lambda s: s.id)


@pytest.mark.parametrize("target", ["skills.md", "skills_dir"])
def test_markdown_round_trips_lose_nothing(tmp_path, target):
    skills = _records()
    dump_skills(skills, tmp_path / target, "skill0")
    back = load_skills(tmp_path / target)
    assert sorted(back, key=lambda s: s.id) == sorted(skills, key=lambda s: s.id)


UPSTREAM_SKILL0 = """### TASK: heat ###

For this heat-and-place task, apply these specific strategies:

1. Secure Exact Target First: Always pick up the exact object type named in the goal. Apply this after spotting any candidate object.

2. Use The Microwave: Heat the object with the microwave, then carry it to the destination.
   Keep holding it while you walk. Apply this when the object is in hand.
"""


def test_upstream_skill0_markdown_imports(tmp_path):
    (tmp_path / "heat.md").write_text(UPSTREAM_SKILL0)
    (tmp_path / "general_skills.md").write_text(
        "### GENERAL SKILLS ###\n\nHere are some useful general strategies:\n\n1. Explore: Visit each place once.\n"
    )
    skills = load_skills(tmp_path, env="alfworld")
    heat = [s for s in skills if s.task_type == "heat"]
    assert [s.name for s in heat] == ["Secure Exact Target First", "Use The Microwave"]
    assert heat[0].strategy == "Always pick up the exact object type named in the goal."
    assert heat[0].description == "Apply this after spotting any candidate object."
    assert heat[1].strategy.endswith("Keep holding it while you walk.")
    general = [s for s in skills if not s.task_type]
    assert general[0].name == "Explore" and general[0].env == "alfworld"
    dump_skills(skills, tmp_path / "out", "skill0")
    rendered = (tmp_path / "out" / "heat.md").read_text()
    assert rendered.startswith("### TASK: heat ###\n\nFor this heat-and-place task, apply these specific strategies:")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("1. Title: text\n", 1, "before the first"),
        ("## TASK heat\n1. A: b\n", 1, "malformed header"),
        ("### TASK: heat ###\nintro\n1. A: b\n3. C: d\n", 4, "expected 2"),
        ("### TASK: heat ###\nintro\n1. A: b\nnot indented continuation\n", 4, "numbered item"),
        ("### TASK: heat ###\nintro only\n### TASK: cool ###\n1. A: b\n", 3, "no numbered items"),
    ],
)
def test_malformed_markdown_names_file_and_line(text, line, message):
    with pytest.raises(SkillValidationError, match=rf"heat\.md line {line}: .*{message}"):
        parse_skill_markdown(text, "heat.md")


def test_upstream_skill1_and_skillrl_files_import(tmp_path):
    skill1 = [{
        "skill_id": "3f2c0c8e-1111-4222-8333-944455556666", "scenario_desc": "put a hot mug in cabinet.",
        "description_head": "Useful when the agent needs to heat an object using a microwave.",
        "strategy": "Action Insight: heat first | Navigation Insight: microwave is near the stove",
        "trajectory": "[Observation 1: 'x', Action 1: 'y']", "utility_score": 0.62, "count": 5,
        "attempt_type": "success", "created_at_progress": 0.12, "created_at_step": 18,
    }]  # fmt: skip
    (tmp_path / "skill_library.json").write_text(json.dumps(skill1))
    [s] = load_skills(tmp_path / "skill_library.json", env="alfworld")
    assert (s.id, s.utility, s.n_retrieved, s.provenance["policy_step"]) == (skill1[0]["skill_id"], 0.62, 4, 18)
    assert s.description.startswith("Useful when")
    skillrl = {
        "general_skills": [{"skill_id": "gen_001", "title": "Systematic Exploration", "principle": "Search once.",
                            "when_to_apply": "Anytime the goal is not met."}],
        "task_specific_skills": {"heat": [{"skill_id": "hea_001", "title": "Heat", "principle": "Microwave.",
                                           "when_to_apply": "Heating tasks."}]},
        "common_mistakes": [{"mistake_id": "err_001", "description": "Revisits.", "why_it_happens": "No map.",
                             "how_to_avoid": "Keep a map."}],
        "metadata": {"source": "x"},
    }  # fmt: skip
    (tmp_path / "claude_style_skills.json").write_text(json.dumps(skillrl))
    skills = load_skills(tmp_path / "claude_style_skills.json")
    assert [(s.id, s.task_type) for s in skills] == [("gen_001", ""), ("hea_001", "heat"), ("err_001", "")]
    assert skills[2].provenance == {"kind": "mistake", "why_it_happens": "No map."}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid JSON at line 1"),
        ('{"format": "skill-gym", "skills": {}}', "'skills' must be a list"),
        ('{"format": "skill-gym", "skills": [{"description": "x"}]}', "missing required field 'strategy'"),
        (
            '{"format": "skill-gym", "skills": [{"description": "x", "strategy": "y", "colour": 1}]}',
            "unknown skill field",
        ),
        ('[{"strategy": "y", "description_head": 5}]', "description must be a string"),
        ("[3]", "expected an object"),
        ('{"hello": 1}', "cannot tell the skill format"),
    ],
)
def test_malformed_json_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SkillValidationError, match=message):
        load_skills(path)


def test_non_utf8_file(tmp_path):
    path = tmp_path / "bad.md"
    path.write_bytes(b"### GENERAL SKILLS ###\n\xff\xfe\n")
    with pytest.raises(SkillValidationError, match="not UTF-8"):
        load_skills(path)


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "skill_gym.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_library_commands(tmp_path):
    lib = ["library", "--library", str(tmp_path / "cli.sqlite")]
    added = _cli(*lib, "add", "--description", "Heating a mug in the microwave.", "--strategy", "Use microwave 1.",
                 "--env", "alfworld", cwd=tmp_path)  # fmt: skip
    assert added.returncode == 0 and added.stdout.startswith("added: sk-"), added.stderr
    dump_skills(_records(), tmp_path / "in.json", "skill1")
    imported = _cli(*lib, "import", str(tmp_path / "in.json"), cwd=tmp_path)
    assert "imported 4 of 4" in imported.stdout, imported.stderr
    found = _cli(*lib, "search", "warm up a cup with the microwave", "-k", "2", cwd=tmp_path)
    assert "1. [" in found.stdout and "microwave" in found.stdout.splitlines()[1].lower() + found.stdout
    stats = json.loads(_cli(*lib, "stats", cwd=tmp_path).stdout)
    assert stats["size"] == 5
    exported = _cli(*lib, "export", str(tmp_path / "out"), "--format", "skill0", cwd=tmp_path)
    assert "exported 5 skills" in exported.stdout
    assert (tmp_path / "out" / "general_skills.md").is_file() and (tmp_path / "out" / "heat.md").is_file()
    bad = _cli(*lib, "import", str(tmp_path / "missing.json"), cwd=tmp_path)
    assert bad.returncode == 2 and "no such file" in bad.stderr and "Traceback" not in bad.stderr
    missing = _cli("library", "--library", str(tmp_path / "none.sqlite"), "stats", cwd=tmp_path)
    assert missing.returncode == 2 and "no library at" in missing.stderr
