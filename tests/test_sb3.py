"""``ClassicRLWrapper``: the Stable-Baselines3 env checker, action masks, the observation layout, skill phases
answered by rule, bad actions, and MaskablePPO learning a real task through it.

The encoder is the real all-MiniLM-L6-v2 (the session's ``encoder`` fixture); libraries live under ``tmp_path``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_checker import check_env

import skill_gym  # noqa: F401  (registers the ids)
from skill_gym.library import Skill, SkillLibrary
from skill_gym.wrappers import ClassicRLWrapper, observation_layout


def _keyword(encoder, **kwargs) -> ClassicRLWrapper:
    return ClassicRLWrapper(gym.make("Keyword-v0"), max_actions=kwargs.pop("max_actions", 6), encoder=encoder, **kwargs)


@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [
        ("Keyword-v0", {}),
        ("SkillKeyword-v0", {}),  # selection and distillation by the policy: the wrapper answers those turns
        ("SkillKeyword-v0", {"skills": "static"}),
        ("Alfworld-v0", {"max_steps": 3}),
        ("SkillAlfworld-v0", {"max_steps": 3, "selection": "similarity", "distillation": "none"}),
    ],
)
def test_sb3_check_env_passes_without_warnings(env_id: str, kwargs: dict, tmp_path: Path, encoder) -> None:
    if env_id.startswith("Skill") and kwargs.get("skills") != "static":
        kwargs = {**kwargs, "library": str(tmp_path / "lib.sqlite")}
    env = ClassicRLWrapper(gym.make(env_id, **kwargs), max_actions=16, encoder=encoder)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, warn=True)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert info.get("skill", {}).get("phase", "act") == "act"  # the agent only ever acts
    env.close()


def test_masks_follow_the_admissible_actions(encoder) -> None:
    env = _keyword(encoder, max_actions=6)
    obs, _ = env.reset(options={"task_id": "opposite/hot"})
    choices = env.unwrapped._task["choices"]
    mask = env.action_masks()
    assert mask.dtype == bool and mask.shape == (6,)
    assert mask.tolist() == [i < len(choices) for i in range(6)]
    _, reward, terminated, _, info = env.step(np.int64(choices.index("cold")))
    assert (reward, terminated, info["action_text"], info["action_valid"]) == (1.0, True, "cold", True)

    small = _keyword(encoder, max_actions=2)  # more admissible actions than indices: the rest are unreachable
    small.reset(options={"task_id": "opposite/hot"})
    assert small.action_masks().tolist() == [True, True]


@pytest.mark.parametrize(
    "action", [5, 99, -1, 2**70, 1.0, "0", None, True, np.array([0, 1]), np.array(0.5), [0], np.int8(5)]
)
def test_masked_or_malformed_actions_are_invalid_steps_not_errors(action, encoder) -> None:
    env = _keyword(encoder, max_actions=6)
    env.reset(options={"task_id": "opposite/hot"})  # 3 admissible words: indices 3 to 5 are masked
    obs, reward, terminated, truncated, info = env.step(action)
    assert env.observation_space.contains(obs)
    assert info["action_valid"] is False and info["action_masked"] is True and reward == 0.0
    assert info["step"] == 1  # the text env answered it, and counted it
    assert "Invalid action" in env.unwrapped._transcript[-1]


def test_observation_layout_holds_the_encoder_embeddings(encoder) -> None:
    env = _keyword(encoder, max_actions=6)
    vector, _ = env.reset(options={"task_id": "plural/box"})
    layout = observation_layout(encoder.dim, 6)
    task = "Answer with the plural of the word 'box'."
    choices = env.unwrapped._task["choices"]
    np.testing.assert_allclose(vector[layout["task"]], encoder.encode([task])[0], atol=1e-6)
    assert np.all(vector[layout["skills"]] == 0)  # a base env has no skills
    actions = vector[layout["actions"]].reshape(6, encoder.dim)
    np.testing.assert_allclose(actions[: len(choices)], encoder.encode(choices), atol=1e-6)
    assert np.all(actions[len(choices) :] == 0)
    similarity = vector[layout["action_similarity"]]
    np.testing.assert_allclose(
        similarity[: len(choices)], encoder.encode(choices) @ encoder.encode([task])[0], atol=1e-5
    )
    assert vector.shape == env.observation_space.shape
    lean = _keyword(encoder, max_actions=6, action_embeddings=False)
    assert lean.observation_space.shape == (3 * encoder.dim + 6,)


def test_skill_env_turns_are_answered_by_rule_and_the_skill_is_observed(tmp_path: Path, encoder) -> None:
    path = str(tmp_path / "lib.sqlite")
    with SkillLibrary(path, encoder=encoder) as library:
        library.admit(Skill(description="Answering with the plural of a noun.", strategy="Add -es after x: boxes.",
                            env="keyword"))  # fmt: skip
    env = ClassicRLWrapper(gym.make("SkillKeyword-v0", library=path), max_actions=6, encoder=encoder)
    vector, info = env.reset(options={"task_id": "plural/box"})
    assert info["skill"]["query"] == "Answer with the plural of the word 'box'."  # the task text as the query
    assert info["skill"]["chosen_id"] and info["skill"]["phase"] == "act"
    skills_text = env.unwrapped._skill_text
    layout = observation_layout(encoder.dim, 6)
    np.testing.assert_allclose(vector[layout["skills"]], encoder.encode([skills_text])[0], atol=1e-6)
    words = env.unwrapped.base._task["choices"]
    _, reward, terminated, truncated, info = env.step(words.index("boxes"))
    # the win ends the act phase; the wrapper answers distill (no skill written) and the episode ends
    assert (reward, terminated, info["action_valid"]) == (1.0, True, True)
    assert info["skill"]["admission"]["status"] == "rejected"


def test_task_ids_and_seeds_fix_the_episodes(encoder) -> None:
    ids = ["echo/piano", "plural/mouse"]
    env = _keyword(encoder, task_ids=ids)
    drawn = {env.reset(seed=s)[1]["task_id"] for s in range(12)}
    assert drawn == set(ids)
    first, second = env.reset(seed=4)[0], env.reset(seed=4)[0]
    np.testing.assert_array_equal(first, second)
    assert env.reset(options={"task_id": "opposite/up"})[1]["task_id"] == "opposite/up"
    with pytest.raises(ValueError, match="max_actions must be a positive int"):
        _keyword(encoder, max_actions=0)
    with pytest.raises(ValueError, match="task_ids must name at least one task"):
        _keyword(encoder, task_ids=[])


def test_maskable_ppo_learns_keyword_through_the_wrapper(encoder) -> None:
    from sb3_contrib import MaskablePPO

    def success_rate(act, episodes: int = 54) -> float:
        env = _keyword(encoder)
        wins = 0
        for e in range(episodes):
            obs, _ = env.reset(seed=1000 + e)
            _, _, _, _, info = env.step(act(obs, env.action_masks()))  # the first answer decides
            wins += bool(info["won"])
        return wins / episodes

    rng = np.random.default_rng(0)
    random_rate = success_rate(lambda obs, mask: int(rng.choice(np.flatnonzero(mask))))
    model = MaskablePPO("MlpPolicy", _keyword(encoder), n_steps=256, batch_size=64, seed=0, learning_rate=1e-3)
    model.learn(3072)
    trained_rate = success_rate(lambda obs, mask: int(model.predict(obs, action_masks=mask, deterministic=True)[0]))
    assert random_rate < 0.5
    assert trained_rate >= 0.9, (trained_rate, random_rate)  # 1.0 for seeds 0-2; the random agent ~0.25
