"""The shipped env families, each registered by one :func:`~skill_gym.families.register_family` call.

This module holds :func:`register_envs` (run by ``import skill_gym``) and the families' scripted experts and
random baselines. Entry points are strings and the agents are made by functions that import their env's code
when called, so registering loads no env engine.

* ``alfworld`` — ``Alfworld-v0`` / ``SkillAlfworld-v0``;
* ``webshop`` — ``WebShop-v0`` / ``SkillWebShop-v0``;
* ``searchqa`` — ``SearchQA-v0`` / ``SkillSearchQA-v0``;
* ``keyword`` — ``Keyword-v0`` / ``SkillKeyword-v0``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any

from skill_gym.agent import Agent, FunctionAgent, InfoActionAgent, PerEpisode
from skill_gym.families import register_family

__all__ = ["register_envs"]

_SKILLS = Path(__file__).resolve().parent.parent / "skills"
"""The shipped starter skills, one folder per family."""


def register_envs() -> None:
    """Register the shipped env families (idempotent)."""
    register_family(
        "alfworld", "skill_gym.envs.alfworld.env:AlfworldEnv", "Alfworld-v0",
        splits=("train", "eval_in_distribution", "eval_out_of_distribution"), split="eval_out_of_distribution",
        columns=(("pick_and_place_simple", "Pick"), ("look_at_obj_in_light", "Look"),
                 ("pick_clean_then_place_in_recep", "Clean"), ("pick_heat_then_place_in_recep", "Heat"),
                 ("pick_cool_then_place_in_recep", "Cool"), ("pick_two_obj_and_place", "Pick2")),
        expert_kwargs={"expert_action": True}, expert=lambda: InfoActionAgent("expert_action"),
        starter_skills=_SKILLS / "alfworld",
    )  # fmt: skip
    register_family(
        "webshop", "skill_gym.envs.webshop.env:WebShopEnv", "WebShop-v0", splits=("train", "test"), split="test",
        metric="score", expert=_expert("skill_gym.envs.webshop.oracle:OracleShopper"),
        random=_random("skill_gym.envs.webshop.oracle:RandomShopper"), starter_skills=_SKILLS / "webshop",
    )  # fmt: skip
    register_family(
        "searchqa", "skill_gym.envs.searchqa.env:SearchQAEnv", "SearchQA-v0", splits=("train", "test"), split="test",
        columns=(("direct_retrieval", "Direct"), ("entity_attribute_lookup", "Attribute"),
                 ("multi_hop_reasoning", "Multi-hop"), ("comparison", "Comparison")),
        metric="em", all_label="Avg", expert=_expert("skill_gym.envs.searchqa.oracle:OracleSearcher"),
        random=_random("skill_gym.envs.searchqa.oracle:RandomSearcher"), starter_skills=_SKILLS / "searchqa",
    )  # fmt: skip
    register_family(
        "keyword", "skill_gym.envs.keyword:KeywordEnv", "Keyword-v0", splits=("all", "train", "test"),
        columns=(("opposite", "Opposite"), ("plural", "Plural"), ("echo", "Echo")), expert=_keyword_oracle,
        starter_skills=_SKILLS / "keyword",
    )  # fmt: skip


def _keyword_oracle() -> Agent:
    from skill_gym.envs.keyword import TASKS

    answers = {t["task_id"]: t["answer"] for t in TASKS}
    return FunctionAgent(lambda observation, info: answers.get(str(info.get("task_id")), ""))


def _load(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)


def _expert(target: str) -> Callable[[], Agent]:
    """Makes the scripted expert ``"module:Class"`` (imported when called): one per env, reset at each episode."""

    def make() -> Agent:
        agent = _load(target)()  # once per env: Search-QA's oracle loads its questions here
        return PerEpisode(lambda _: agent)

    return make


def _random(target: str) -> Callable[[int], Agent]:
    """Makes the random baseline ``"module:Class"`` (``Class(seed)``) afresh for each episode, seeded from the run's
    seed and the task, so a resumed run replays it."""

    def make(seed: int) -> Agent:
        return PerEpisode(_load(target), seed)

    return make
