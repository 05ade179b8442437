"""The one evaluator and the vector-env rollout: any policy kind, waves of tasks, transcripts, finished envs held."""

from __future__ import annotations

import gymnasium as gym
import pytest

import skill_gym
from agents.backends.base import SamplingConfig
from agents.evaluation import evaluate, make_rollout_envs
from agents.prompts import PromptBuilder
from agents.rollout import HoldFinalStep, rollout
from skill_gym.envs.keyword import TASKS
from skill_gym.library import Skill, SkillLibrary

ANSWERS = {t["task_id"]: t["answer"] for t in TASKS}


class Oracle:
    """An agent (skill_gym.agent.Agent): reads the task from the info and answers it."""

    def act(self, observation, info):
        return ANSWERS[info["task_id"]]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_env_agent_over_every_task_in_waves(mode):
    result = evaluate(Oracle(), "Keyword-v0", num_envs=4, vectorization_mode=mode)  # 18 tasks: 5 waves, one padded
    assert [e.task_id for e in result.episodes] == [t["task_id"] for t in TASKS]
    assert result.success == {"all": 1.0, "echo": 1.0, "opposite": 1.0, "plural": 1.0}
    assert result.mean_steps == 1.0 and result.mean_return == 1.0 and result.score == 1.0
    assert result.metrics("val/")["val/success/all"] == 1.0


def test_a_plain_function_of_prompts_with_the_env_format_and_transcripts():
    seen = []

    def always_cold(prompts):
        seen.extend(prompts)
        return ["<think>the opposite of hot</think><action>cold</action>"] * len(prompts)

    result = evaluate(always_cold, "Keyword-v0", task_ids=["opposite/hot", "plural/box"], num_envs=2)
    assert [e.won for e in result.episodes] == [True, False]
    assert "inside <action> </action>" in seen[0][0]["content"]  # the env's own answer format
    [first, second] = result.transcripts()
    assert first["turns"][0]["action"] == "cold" and first["turns"][0]["format_valid"]
    assert second["won"] is False and second["truncated"] and len(second["turns"]) == 2  # max_steps 2
    assert first["turns"][0]["observation"].startswith("Answer with the opposite")


def test_bad_policies_get_clear_errors():
    with pytest.raises(TypeError, match="Backend, an Agent, a BatchAgent or a callable"):
        evaluate(42, "Keyword-v0")


def test_finished_envs_hold_still_so_no_library_update_comes_from_unchosen_actions(tmp_path, encoder):
    """Env 0 wins at once; env 1 keeps failing. The finished env must not start a second episode."""
    path = tmp_path / "lib.sqlite"
    with SkillLibrary(path, encoder=encoder) as lib:
        lib.admit(Skill(description="Answer word tasks.", strategy="Pick the right word.", env="keyword"))
    vec = make_rollout_envs(
        "SkillKeyword-v0",
        2,
        {
            "library": str(path),
            "selection": "similarity",
            "distillation": "none",
            "min_similarity": -1.0,
            "max_steps": 6,
        },
    )
    builder = PromptBuilder(vec.get_attr("instructions")[0])

    class FirstRightSecondWrong:
        def act(self, observation, info):
            return "cold" if info["task_id"] == "opposite/hot" else "nope"

    episodes, _ = rollout(vec, FirstRightSecondWrong(), builder, ["opposite/hot", "plural/box"], [0, 1],
                          SamplingConfig(), max_turns=10)  # fmt: skip
    episodes_begun = list(vec.get_attr("_episode"))
    vec.close()
    assert episodes_begun == [1, 1]  # the vector env did not reset the finished env into a second episode
    assert [e.won for e in episodes] == [True, False] and [len(e.turns) for e in episodes] == [1, 6]
    with SkillLibrary(path) as lib:
        [skill] = lib.skills()
    assert skill.n_retrieved == 2  # one retrieval per episode
    assert skill.utility == pytest.approx((0.5 * 0.95 + 0.05) * 0.95)  # one EMA update per episode, no more


def test_hold_final_step_reports_the_end_once_and_then_repeats_it():
    env = HoldFinalStep(gym.make("Keyword-v0", answer_format="plain"))
    env.reset(options={"task_id": "echo/apple"})
    obs, reward, terminated, truncated, info = env.step("apple")
    assert (reward, terminated, truncated, info["episode_end"]) == (1.0, False, False, "terminated")
    again = env.step("anything")
    assert again[0] == obs and again[1] == 0.0 and again[4]["episode_end"] == "terminated"
    env.reset(options={"task_id": "echo/apple"})
    assert env.step("river")[4].get("episode_end") is None  # a new episode runs again


def test_is_skill_env():
    assert skill_gym.is_skill_env("SkillAlfworld-v0") and not skill_gym.is_skill_env("Alfworld-v0")
