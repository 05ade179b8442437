"""Each skill env switch is declared once, in SkillConfig; ``Literal`` choices are checked from the annotations."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from agents.grpo.config import GRPOConfig
from agents.skill0.config import Skill0Config
from agents.skill1.config import SKILL1_DEFAULTS, SKILL_SWITCHES, Skill1Config
from skill_gym.config_fields import config_subset
from skill_gym.skill_env import SkillConfig


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("learner", [Skill1Config, Skill0Config])
def test_learner_configs_take_the_env_switches_from_skill_config(learner):
    env, own = _fields(SkillConfig), _fields(learner)
    env_hints, own_hints = typing.get_type_hints(SkillConfig), typing.get_type_hints(learner)
    shared = env.keys() & own.keys()
    assert shared == (set(SKILL_SWITCHES) if learner is Skill1Config else {"static_dir"})
    for name in shared:
        assert own_hints[name] == env_hints[name] and own[name].metadata == env[name].metadata, name
        expected = SKILL1_DEFAULTS.get(name, env[name].default) if learner is Skill1Config else env[name].default
        assert own[name].default == expected, name
    assert [f.name for f in dataclasses.fields(learner)][: len(_fields(GRPOConfig))] == list(_fields(GRPOConfig))


def test_skill1_env_kwargs_are_the_switches_frozen_and_greedy_in_evaluation():
    config = Skill1Config(inject="top1_if_ranked", eval_inject="all", top_k=4)
    train, evaluation = config.skill_env_kwargs(training=True), config.skill_env_kwargs(training=False)
    assert list(train) == [*SKILL_SWITCHES, "read_only"] and list(evaluation) == list(train)
    assert {k for k in train if train[k] != evaluation[k]} == {"distillation", "ucb", "inject", "read_only"}
    assert (evaluation["distillation"], evaluation["ucb"], evaluation["inject"], evaluation["read_only"]) == (
        "none", False, "all", True)  # fmt: skip
    assert SkillConfig(**train).top_k == 4 and SkillConfig(**evaluation).inject == "all"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SkillConfig(inject="top2"), "inject must be one of top1, all, top1_if_ranked; got 'top2'"),
        (lambda: Skill1Config(merge_rule="same"), "merge_rule must be one of similar, same_strategy, "),
        (lambda: Skill1Config(credit="both"), "credit must be one of paper, released; got 'both'"),
        (lambda: Skill0Config(step0_budget="middle"), "step0_budget must be one of first, last; got 'middle'"),
    ],
)
def test_choices_are_checked_from_the_annotations(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_config_subset_refuses_unknown_fields():
    with pytest.raises(ValueError, match="SkillConfig has no field"):
        config_subset(SkillConfig, ["top_k", "lambda_rerank"])
    with pytest.raises(ValueError, match="outside the subset: ucb"):
        config_subset(SkillConfig, ["top_k"], {"ucb": True})
