"""SkillAlfworld-v0: the skill phases over the real ALFWorld engine with a real library."""

from __future__ import annotations

import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import skill_gym
from skill_gym.library import Skill, SkillLibrary

SKILL_JSON = (
    '{"description": "Heating an object with the microwave and then putting it in a receptacle.",'
    ' "strategy": "Find the object, take it, go to microwave 1, heat it, then go to the target and move it there."}'
)


@pytest.fixture
def lib_path(tmp_path, encoder):
    path = tmp_path / "alf.sqlite"
    SkillLibrary(path, encoder=encoder).close()
    return str(path)


def _heat_tasks(env) -> list[str]:
    return [t for t in env.unwrapped.task_ids if "pick_heat_then_place_in_recep" in t]


def _play_expert(env, obs, info, limit: int = 60):
    """Follow alfworld's expert until the base episode ends; returns the last step's results."""
    result = (obs, 0.0, False, False, info)
    for _ in range(limit):
        action = result[4]["expert_action"]
        result = env.step(action)
        if result[0]["phase"] != "act" or result[2] or result[3]:
            return result
    raise AssertionError("the expert did not finish within the limit")


def test_check_env_passes_without_warnings(lib_path):
    env = gym.make("SkillAlfworld-v0", library=lib_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []
    env.close()


def test_phase_walk_through_admits_a_skill_that_the_next_episode_retrieves(lib_path, encoder):
    env = gym.make("SkillAlfworld-v0", library=lib_path, expert_action=True, render_mode="ansi")
    first, second = _heat_tasks(env)[:2]
    obs, info = env.reset(seed=0, options={"task_id": first})
    assert obs["phase"] == "select" and "Your task is to" not in obs["task"] and obs["task"]
    obs, _, _, _, info = env.step("<query>how to heat something and put it away</query>")
    assert obs["phase"] == "act" and info["skill"]["retrieved_ids"] == []
    assert "-= Welcome to TextWorld, ALFRED! =-" in obs["observation"]
    obs, reward, term, trunc, info = _play_expert(env, obs, info)
    assert obs["phase"] == "distill" and reward == 1.0 and info["won"]
    assert "you succeeded" in obs["observation"]
    obs, _, term, _, info = env.step(SKILL_JSON)
    admission = info["skill"]["admission"]
    assert term and admission["status"] == "added"
    with SkillLibrary(lib_path, encoder=encoder) as lib:
        stored = lib.get(admission["skill_id"])
        assert stored.task_type == "pick_heat_then_place_in_recep" and stored.env == "alfworld"
        assert stored.provenance["task_id"] == first and stored.source == "distilled"
        lib.admit(Skill(description="Cleaning an object in the sink before placing it somewhere.",
                        strategy="Take it to sinkbasin 1, clean it, then place it.", env="alfworld"))  # fmt: skip

    obs, info = env.reset(seed=1, options={"task_id": second})
    obs, _, _, _, info = env.step("<query>heat an object with the microwave then place it</query>")
    assert admission["skill_id"] in info["skill"]["retrieved_ids"]
    if obs["phase"] == "rerank":
        position = info["skill"]["retrieved_ids"].index(admission["skill_id"]) + 1
        obs, _, _, _, info = env.step(f"<rank>{position}</rank>")
    assert obs["phase"] == "act" and info["skill"]["chosen_id"] == admission["skill_id"]
    assert "go to microwave 1, heat it" in obs["skills"]
    assert "microwave" in env.render()
    env.close()


@pytest.mark.parametrize("bad", ["", "x" * 1_000_000, 7, "<think>héhé ünicode", "<rank>", "<query></query>{not json"])
def test_malformed_outputs_at_each_phase(lib_path, encoder, bad):
    with SkillLibrary(lib_path, encoder=encoder) as lib:
        lib.admit(
            Skill(description="Heating an object with the microwave.", strategy="Use microwave 1.", env="alfworld")
        )
        lib.admit(Skill(description="Putting a heated item into a cabinet or on a table.", strategy="Heat, then place.",
                        env="alfworld"))  # fmt: skip
    env = gym.make("SkillAlfworld-v0", library=lib_path, max_steps=3, min_similarity=0.0)
    obs, info = env.reset(seed=0, options={"task_id": _heat_tasks(env)[0]})
    for expected in ("select", "rerank", "act", "act", "act"):
        assert obs["phase"] == expected
        obs, _, term, trunc, info = env.step(bad)
        assert info["action_valid"] is False
    assert obs["phase"] == "distill" and "you failed" in obs["observation"]
    obs, _, term, _, info = env.step(bad)
    assert term and info["skill"]["admission"]["status"] == "rejected"
    env.close()


def test_async_workers_share_one_library(tmp_path, encoder):
    path = str(tmp_path / "shared.sqlite")
    SkillLibrary(path, encoder=encoder).close()
    envs = skill_gym.make_vec("SkillAlfworld-v0", num_envs=2, vectorization_mode="async", library=path,
                              selection="similarity", expert_action=True)  # fmt: skip
    tasks = [t for t in gym.make("Alfworld-v0").unwrapped.task_ids if "pick_and_place_simple" in t][:2]
    envs.set_attr("pending_options", [{"task_id": t} for t in tasks])
    obs, infos = envs.reset(seed=[0, 1])
    assert list(infos["task_id"]) == tasks and all(o.startswith("-= Welcome") for o in obs["observation"])
    done = [False, False]
    for _ in range(60):
        actions = [SKILL_JSON.replace("Heating", f"Placing {i}") if obs["phase"][i] == "distill" else infos["expert_action"][i]
                   for i in range(2)]  # fmt: skip
        obs, _, term, trunc, infos = envs.step(actions)
        done = [d or bool(t) for d, t in zip(done, term, strict=True)]
        if all(done):
            break
    envs.close()
    assert all(done)
    with SkillLibrary(path) as lib:
        assert len(lib) >= 1 and {s.task_type for s in lib.skills()} == {"pick_and_place_simple"}
