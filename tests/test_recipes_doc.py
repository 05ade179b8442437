"""docs/recipes.md's generated part is current, and the recipes state only what they change."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from agents.cli import LEARNERS, config_class
from agents.recipes import RECIPES, SIZE_FIELDS, resolve_config
from agents.recipes_doc import BEGIN, DOC, END, render, stale, write

ENVS = ("SkillAlfworld-v0", "SkillWebShop-v0", "SkillSearchQA-v0")


def test_generated_part_of_docs_recipes_is_current():
    assert not stale(), (
        "the generated part of docs/recipes.md is stale (a config, preset or recipe changed): "
        "run `python -m agents.recipes_doc --write` and commit docs/recipes.md"
    )


def test_write_replaces_only_the_part_between_the_markers(tmp_path):
    doc = tmp_path / "recipes.md"
    doc.write_text(f"# Prose\n\nkept\n\n{BEGIN}\nold tables\n{END}\n\nmore prose\n")
    assert stale(doc) and write(doc) and not stale(doc) and not write(doc)
    assert doc.read_text() == f"# Prose\n\nkept\n\n{BEGIN}\n{render()}{END}\n\nmore prose\n"
    doc.write_text("no markers\n")
    with pytest.raises(ValueError, match="lacks the markers"):
        stale(doc)
    assert DOC.name == "recipes.md"


def _effective(recipe: str) -> dict:
    return {
        (learner, preset, env): resolve_config(learner, config_class(learner), preset, recipe, {"env_id": env})
        for learner in LEARNERS
        for preset in ("paper", "cpu")
        for env in ENVS
    }


def test_the_paper_recipe_states_only_what_it_changes(monkeypatch):
    """Leaving out any value of the paper recipe changes some effective config: the defaults are the papers'."""
    effective, paper = _effective("paper"), RECIPES["paper"]
    for learner, part in paper.items():
        paths = [(k, sub) for k, v in part.items() if k.startswith("env:") for sub in v]
        for path in [(k,) for k in part if not k.startswith("env:")] + paths:
            trimmed = copy.deepcopy(paper)
            holder = trimmed[learner][path[0]] if len(path) == 2 else trimmed[learner]
            del holder[path[-1]]
            monkeypatch.setitem(RECIPES, "paper", trimmed)
            assert _effective("paper") != effective, f'RECIPES["paper"]["{learner}"] restates a default: {path}'


def test_a_learners_part_never_repeats_its_recipes_grpo_part():
    for recipe, parts in RECIPES.items():
        grpo = parts["grpo"]
        for learner in set(parts) - {"grpo"}:
            for key, value in parts[learner].items():
                if key.startswith("env:"):
                    same = {k for k, v in value.items() if k in grpo.get(key, {}) and grpo[key][k] == v}
                else:
                    same = {key} if key in grpo and grpo[key] == value else set()
                assert not same, f'RECIPES["{recipe}"]["{learner}"] repeats the GRPO part: {key} {same}'


def test_the_released_recipe_states_sizes_only_where_the_scripts_differ_from_the_defaults():
    for learner, part in RECIPES["released"].items():
        defaults = dataclasses.asdict(config_class(learner)())
        sizes = {k: v for k, v in part.items() if k in SIZE_FIELDS}
        assert {k for k, v in sizes.items() if defaults[k] == v} == set(), learner
