"""A skill library distilled into SKILL0 curriculum files: which skills are kept, dedup, budgets, the loader.

The library is a real SQLite file with the real MiniLM encoder; the skills are written by hand with known
statistics, so every kept, merged and left-out skill is named in advance.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skill_gym.cli import main
from skill_gym.library import Skill, SkillLibrary, SkillValidationError, load_skills
from skill_gym.library.curriculum import (
    GENERAL_FILE,
    CurriculumRules,
    build_curriculum,
    render_curriculum_file,
    write_curriculum,
)
from skill_gym.skill_env.static_skills import StaticSkillSet


def _skill(sid: str, task_type: str, description: str, strategy: str, selected: int, won: int,
           utility: float = 0.5) -> Skill:  # fmt: skip
    return Skill(description=description, strategy=strategy, env="keyword", task_type=task_type, id=sid, name=sid,
                 n_selected=selected, n_success=won, utility=utility)  # fmt: skip


HAND_MADE = [
    _skill("antonym", "opposite", "Asked for the opposite of a word.", "Answer with its antonym.", 10, 9, 0.8),
    _skill("antonym-again", "opposite", "Asked for the opposite of a word!", "Give the antonym.", 5, 5, 0.9),
    _skill("plural-s", "plural", "Asked for the plural of a noun.", "Add s or es to the noun.", 6, 6, 0.7),
    _skill("plural-guess", "plural", "Irregular nouns such as mouse or child.", "Use the irregular form.", 4, 1),
    _skill("echo-once", "echo", "Asked to repeat a word back.", "Answer with the same word.", 1, 1),
    _skill("one-word", "", "Any word task with a list of admissible words.", "Reply with one listed word.", 3, 3),
    _skill("listed-o", "opposite", "Pick only among the words in the list.", "Reply with a word from the list.", 7, 6),
    _skill("listed-p", "plural", "Pick only among the words in the list", "Choose a word the list offers.", 3, 2),
]


@pytest.fixture()
def library(tmp_path: Path, encoder) -> Path:
    path = tmp_path / "lib.sqlite"
    with SkillLibrary(path, encoder=encoder) as lib:
        lib.add(HAND_MADE)
    return path


def _ids(files: dict[str, list[Skill]]) -> dict[str, list[str]]:
    return {key: [s.id for s in skills] for key, skills in files.items()}


def test_the_best_supported_skills_are_kept_deduplicated_and_filed_by_task_type(library: Path, encoder) -> None:
    with SkillLibrary(library, encoder=encoder) as lib:
        curriculum = build_curriculum(lib.skills(), lib.embed, CurriculumRules(min_selected=2))
    assert _ids(curriculum.files) == {
        GENERAL_FILE: ["listed-o", "one-word"],  # a cluster spanning opposite and plural; a skill with no task type
        "opposite": ["antonym"],  # 9/10 ranks above 5/5 by the Wilson lower bound; its near-twin is merged in
        "plural": ["plural-s", "plural-guess"],
    }
    assert curriculum.left_out == {"unsupported": 1, "duplicate": 2, "over_budget": 0}  # echo-once selected once
    assert curriculum.promoted == ""


def test_budgets_cap_each_file_by_items_and_tokens(library: Path, encoder) -> None:
    with SkillLibrary(library, encoder=encoder) as lib:
        skills = lib.skills()
        one_each = build_curriculum(skills, lib.embed, CurriculumRules(max_skills=1))
        short = build_curriculum(
            skills, lib.embed, CurriculumRules(max_tokens=40), count_tokens=lambda t: len(t.split())
        )
    assert _ids(one_each.files)["plural"] == ["plural-s"] and one_each.left_out["over_budget"] == 2
    assert all(len(text.split()) <= 40 for text in _rendered(short.files))  # 36 + 19 words: one general item fits
    assert _ids(short.files) == {GENERAL_FILE: ["listed-o"], "opposite": ["antonym"], "plural": ["plural-s"]}
    assert short.left_out["over_budget"] == 2


def _rendered(files: dict[str, list[Skill]]) -> list[str]:
    return [render_curriculum_file(key, skills) for key, skills in files.items()]


def test_the_files_round_trip_through_the_skill0_loader_and_keep_their_provenance(library: Path, encoder,
                                                                                tmp_path: Path) -> None:  # fmt: skip
    with SkillLibrary(library, encoder=encoder) as lib:
        curriculum = build_curriculum(lib.skills(), lib.embed)
    folder = write_curriculum(curriculum, tmp_path / "skills", {"library": str(library)}, CurriculumRules())
    assert sorted(p.name for p in folder.iterdir()) == ["general_skills.md", "opposite.md", "plural.md",
                                                          "skill_mapping.json"]  # fmt: skip
    loaded = StaticSkillSet(folder)
    assert "Answer with its antonym." in loaded.render("opposite") and "GENERAL SKILLS" in loaded.render("opposite")
    assert loaded.file_for("plural") == "plural" and loaded.file_for("echo") is None
    assert "<!--" not in loaded.render("plural")  # the provenance header never reaches the prompt
    header = json.loads((folder / "opposite.md").read_text().splitlines()[0].removeprefix("<!-- skill-gym curriculum: ")
                        .removesuffix(" -->"))  # fmt: skip
    assert header["source"]["library"] == str(library) and header["skills"][0]["id"] == "antonym"
    assert header["skills"][0]["n_selected"] == 10 and header["rules"]["min_selected"] == 2
    mapping = json.loads((folder / "skill_mapping.json").read_text())
    assert mapping["provenance"]["files"]["opposite"] == ["antonym"]
    assert {s.strategy for s in load_skills(folder, env="keyword")} >= {"Answer with its antonym."}


def test_bad_libraries_get_a_clear_message_never_an_empty_curriculum(encoder, tmp_path: Path) -> None:
    embed = encoder.encode
    with pytest.raises(SkillValidationError, match="no skills"):
        build_curriculum([], embed)
    rarely = [_skill("a", "opposite", "Opposites.", "Antonym.", 1, 1)]
    with pytest.raises(SkillValidationError, match=r"selected at least 2 times .*the most: 1"):
        build_curriculum(rarely, embed)
    huge = [_skill("h", "", "Everything.", "word " * 1500, 9, 9)]
    with pytest.raises(SkillValidationError, match="longer than the budget of 400 tokens"):
        build_curriculum(huge, embed)
    single = [_skill("o1", "opposite", "Opposites of words.", "Antonym.", 4, 4),
              _skill("o2", "opposite", "Negated adjectives like unhappy.", "Drop the prefix.", 3, 2)]  # fmt: skip
    curriculum = build_curriculum(single, embed)  # one task type: its best skill becomes the general file
    assert _ids(curriculum.files) == {GENERAL_FILE: ["o1"], "opposite": ["o2"]} and curriculum.promoted == "o1"
    with pytest.raises(SkillValidationError, match="cannot name a skill file"):
        write_curriculum(build_curriculum([*single, _skill("x", "../up", "Other.", "Go.", 2, 1)], embed), tmp_path)


def test_the_cli_writes_the_curriculum(library: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "curriculum"
    assert main(["library", "export", "--to", "skill0", str(library), str(out), "--max-skills", "1"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 3 files" in printed and "over_budget" in printed
    assert StaticSkillSet(out).files.keys() == {"general_skills", "opposite", "plural"}
