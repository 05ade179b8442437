"""The multi-agent env (``skill_gym.multiagent``): PettingZoo's own API and seed tests on every registered id,
a skill written by one agent retrieved by another, hostile actions, rendering and closing.

Every env gets a library under ``tmp_path`` (never the user's cache) and a small ``max_steps`` where its env
takes one, as in ``test_api_conformance.py``.
"""

from __future__ import annotations

import itertools
import json
import math
import warnings
from pathlib import Path
from typing import Any

import gymnasium
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test

import skill_gym
from skill_gym.multiagent import SharedLibraryEnv, TextObservation, aec_env, parallel_env
from tests.test_api_conformance import ENV_IDS, HOSTILE, SKILL_JSON, _kwargs, _policy

_counter = itertools.count()
_TEXT_SPACE_ADVICE = (
    "Observation is not a NumPy array",
    "Observation space for each agent probably should be",
    "Action space for each agent probably should be",
)
"""api_test's advice for array envs; text envs get it by design (every other warning fails the test)."""


def _env_kwargs(env_id: str, folder: Path) -> dict[str, Any]:
    """A fresh library file per call (two envs of a seed test must not see each other's skills)."""
    kwargs = _kwargs(env_id, folder / f"run{next(_counter)}")
    return kwargs


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_pettingzoo_parallel_api_and_seed_tests(env_id: str, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # parallel_api_test reports agent-bookkeeping mistakes as warnings
        parallel_api_test(parallel_env(env_id, num_agents=3, **_env_kwargs(env_id, tmp_path)), num_cycles=60)
    parallel_seed_test(lambda: parallel_env(env_id, num_agents=2, **_env_kwargs(env_id, tmp_path)), num_cycles=20)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_pettingzoo_aec_api_and_seed_tests(env_id: str, tmp_path: Path) -> None:
    env = aec_env(env_id, num_agents=3, **_env_kwargs(env_id, tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        api_test(env, num_cycles=60)
    env.close()
    unexpected = [str(w.message) for w in caught if not str(w.message).startswith(_TEXT_SPACE_ADVICE)]
    assert not unexpected, unexpected
    seed_test(lambda: aec_env(env_id, num_agents=2, **_env_kwargs(env_id, tmp_path)), num_cycles=20)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_agents_play_whole_episodes_with_the_single_agent_spaces(env_id: str, tmp_path: Path) -> None:
    env = parallel_env(env_id, num_agents=2, **_env_kwargs(env_id, tmp_path))
    single = gymnasium.make(env_id, **_env_kwargs(env_id, tmp_path))
    try:
        assert env.observation_space("agent_1") == single.observation_space
        assert env.action_space("agent_0") == single.action_space
        obs, infos = env.reset(seed=3)
        for i in range(200):
            assert all(env.observation_space(a).contains(o) for a, o in obs.items())
            obs, rewards, terminations, truncations, infos = env.step({a: _policy(obs[a], i) for a in env.agents})
            assert all(math.isfinite(r) for r in rewards.values())
            assert all({"won", "score", "task_id", "task_type", "action_valid"} <= set(info) for info in infos.values())
            if not env.agents:
                break
        assert not env.agents, "the episode did not end in 200 steps"
    finally:
        env.close()
        single.close()


def test_a_skill_one_agent_writes_is_retrieved_by_another_later(tmp_path: Path) -> None:
    library = str(tmp_path / "shared.sqlite")
    env = SharedLibraryEnv("SkillKeyword-v0", num_agents=2, library=library, selection="similarity")
    try:
        obs, infos = env.reset(seed=0, options={"task_ids": {"agent_0": "opposite/hot", "agent_1": "plural/box"}})
        assert infos["agent_1"]["skill"]["retrieved_ids"] == []  # an empty library
        obs, rewards, *_ = env.step({"agent_0": "cold", "agent_1": "box"})  # agent_0 wins, agent_1 does not
        assert rewards == {"agent_0": 1.0, "agent_1": 0.0}
        assert obs["agent_0"]["phase"] == "distill"
        skill = {"description": "Answering with the opposite of a word.", "strategy": "Say the antonym: hot-cold."}
        obs, _, terminations, _, infos = env.step({"agent_0": json.dumps(skill), "agent_1": "box"})
        admission = infos["agent_0"]["skill"]["admission"]
        assert admission["status"] == "added" and terminations["agent_0"]
        assert env.agents == ["agent_1"] and obs["agent_1"]["phase"] == "distill"
        obs, _, _, _, infos = env.step({"agent_1": SKILL_JSON})
        assert infos["agent_1"]["skill"]["admission"]["status"] == "rejected"  # a failed episode writes nothing
        assert env.agents == []

        obs, infos = env.reset(options={"task_ids": {"agent_1": "opposite/up"}})
        assert admission["skill_id"] in infos["agent_1"]["skill"]["retrieved_ids"]
        assert infos["agent_1"]["skill"]["chosen_id"] == admission["skill_id"]
        assert "Say the antonym" in obs["agent_1"]["skills"]
    finally:
        env.close()
    # and through the file, by an env made later (another process would open it the same way)
    single = gymnasium.make("SkillKeyword-v0", library=library, selection="similarity")
    try:
        _, info = single.reset(options={"task_id": "opposite/left"})
        assert info["skill"]["chosen_id"] == admission["skill_id"]
    finally:
        single.close()


def test_hostile_actions_never_raise(tmp_path: Path) -> None:
    env = parallel_env("SkillKeyword-v0", num_agents=2, **_env_kwargs("SkillKeyword-v0", tmp_path))
    try:
        env.reset(seed=1)
        for label, action, clearly_invalid in HOSTILE:
            if not env.agents:
                env.reset()
            obs, rewards, terminations, truncations, infos = env.step({"agent_0": action, "stranger": "look"})
            assert "stranger" not in obs, label
            if "agent_0" in infos and clearly_invalid:
                assert infos["agent_0"]["action_valid"] is False, label
            for agent, agent_obs in obs.items():
                assert env.observation_space(agent).contains(agent_obs), label
            if "agent_1" in infos:  # no action given: answered as invalid, never skipped silently
                assert infos["agent_1"]["action_valid"] is False, label
        for actions in (None, "look", ["look"], 3):
            if not env.agents:
                env.reset()
            _, _, _, _, infos = env.step(actions)
            assert all(info["action_valid"] is False for info in infos.values())
    finally:
        env.close()


def test_same_seed_same_tasks_and_pinned_tasks(tmp_path: Path) -> None:
    env = parallel_env("Keyword-v0", num_agents=4)
    first, _ = env.reset(seed=5)
    again, _ = env.reset(seed=5)
    assert first == again
    assert len({o["task"] for o in first.values()}) > 1  # agents draw their own tasks
    pinned, infos = env.reset(options={"task_id": "echo/piano"})
    assert {info["task_id"] for info in infos.values()} == {"echo/piano"}
    assert all(type(value) is TextObservation for o in pinned.values() for value in o.values())
    assert env.task_ids == gymnasium.make("Keyword-v0").unwrapped.task_ids
    assert env.instructions.intro.startswith("You are an agent that answers word tasks")
    with pytest.raises(ValueError, match="unknown task_id"):
        env.reset(options={"task_id": "no/such-task"})


def test_render_and_close_twice(tmp_path: Path) -> None:
    env = parallel_env("SkillKeyword-v0", num_agents=2, render_mode="ansi", **_env_kwargs("SkillKeyword-v0", tmp_path))
    obs, _ = env.reset(seed=0)
    first = env.render()
    env.step({a: _policy(obs[a], 0) for a in env.agents})
    second = env.render()
    assert "=== agent_0 ===" in first and "=== agent_1 ===" in first and len(second) > len(first)
    assert parallel_env("Keyword-v0").render() is None
    env.close()
    env.close()


def test_bad_arguments_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="unknown env id 'Nope-v0'"):
        SharedLibraryEnv("Nope-v0")
    with pytest.raises(ValueError, match="num_agents must be a positive int"):
        SharedLibraryEnv("Keyword-v0", num_agents=0)
    with pytest.raises(ValueError, match="has no skill library"):
        SharedLibraryEnv("Keyword-v0", library="/tmp/x.sqlite")
    assert skill_gym.is_skill_env("SkillKeyword-v0")
