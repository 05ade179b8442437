"""``Keyword-v0``: its tasks, answers, truncation, seeding and task-type filter."""

from __future__ import annotations

from collections import Counter

import gymnasium as gym
import pytest

import skill_gym  # noqa: F401  (registers the ids)
from skill_gym.envs.keyword import TASKS, KeywordEnv

TASK_TYPES = ("opposite", "plural", "echo")


def _answer(task_id: str) -> str:
    return next(t["answer"] for t in TASKS if t["task_id"] == task_id)


def _wrong(task_id: str) -> str:
    task = next(t for t in TASKS if t["task_id"] == task_id)
    return next(c for c in task["choices"] if c != task["answer"])


def test_tasks_and_task_types() -> None:
    assert Counter(t["task_type"] for t in TASKS) == {"opposite": 6, "plural": 6, "echo": 6}
    ids = [t["task_id"] for t in TASKS]
    assert len(set(ids)) == len(ids) == 18
    for task in TASKS:
        assert task["task_id"] == f"{task['task_type']}/{task['word']}"
        assert task["answer"] in task["choices"] and task["choices"] == sorted(set(task["choices"]))
        assert len(task["choices"]) >= 2, task  # a wrong admissible word exists
    assert {t["task_id"]: t["answer"] for t in TASKS if t["task_type"] == "opposite"}["opposite/hot"] == "cold"
    assert _answer("plural/mouse") == "mice" and _answer("plural/knife") == "knives"
    assert all(t["answer"] == t["word"] for t in TASKS if t["task_type"] == "echo")
    assert KeywordEnv().task_ids == ids


@pytest.mark.parametrize(
    ("task_id", "text"),
    [
        ("opposite/up", "Answer with the opposite of the word 'up'."),
        ("plural/city", "Answer with the plural of the word 'city'."),
        ("echo/piano", "Answer with the word 'piano'."),
    ],
)
def test_reset_observation_and_info_per_task_type(task_id: str, text: str) -> None:
    env = KeywordEnv()
    obs, info = env.reset(seed=0, options={"task_id": task_id})
    task = next(t for t in TASKS if t["task_id"] == task_id)
    assert set(obs) == {"observation", "task", "admissible_actions"}
    assert obs["task"] == text and obs["observation"].startswith(text)
    assert obs["admissible_actions"].split("\n") == task["choices"]
    assert info == {"won": False, "score": 0.0, "task_id": task_id, "task_type": task["task_type"],
                    "action_valid": True, "step": 0}  # fmt: skip
    assert obs in env.observation_space


def test_pinned_task_id_wins_over_the_seed() -> None:
    env = KeywordEnv()
    for seed in (None, 0, 1, 2, 99):
        _, info = env.reset(seed=seed, options={"task_id": "plural/leaf"})
        assert info["task_id"] == "plural/leaf"
    env.pending_options = {"task_id": "echo/stone"}  # a vector env's per-worker pin
    assert env.reset(seed=5)[1]["task_id"] == "echo/stone"
    assert env.pending_options is None


def test_unknown_task_id_is_an_error() -> None:
    env = KeywordEnv()
    with pytest.raises(ValueError, match=r"unknown task_id 'opposite/warm'.*task_ids"):
        env.reset(options={"task_id": "opposite/warm"})
    with pytest.raises(ValueError, match="unknown task_id"):
        KeywordEnv(task_types=["echo"]).reset(options={"task_id": "opposite/hot"})  # filtered out


def test_right_answer_wins() -> None:
    env = KeywordEnv(render_mode="ansi")
    env.reset(seed=0, options={"task_id": "opposite/open"})
    obs, reward, terminated, truncated, info = env.step("  closed \n")  # surrounding whitespace is stripped
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert obs["observation"] == "Correct."
    assert info == {**info, "won": True, "score": 1.0, "action_valid": True, "step": 1}
    assert "> closed\nCorrect." in env.render()


def test_wrong_answer_is_valid_but_does_not_win() -> None:
    env = KeywordEnv(max_steps=3)
    obs0, _ = env.reset(seed=0, options={"task_id": "plural/box"})
    wrong = _wrong("plural/box")
    obs, reward, terminated, truncated, info = env.step(wrong)
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert obs["observation"] == "Wrong word." and obs["task"] == obs0["task"]
    assert info["action_valid"] is True and info["won"] is False and info["score"] == 0.0
    obs, reward, terminated, *_ = env.step("boxes")  # still time to get it right
    assert reward == 1.0 and terminated


@pytest.mark.parametrize(
    ("action", "why"),
    [
        ("lukewarm", "not one of the admissible actions"),
        ("COLD", "not one of the admissible actions"),  # case matters
        ("", "the action is empty"),
        ("   ", "the action is empty"),
        ("x" * 5000, "characters long"),
        (7, "must be a string, got int"),
        (None, "must be a string, got NoneType"),
        (["cold"], "must be a string, got list"),
        (b"\xff", "not valid UTF-8"),
    ],
)
def test_invalid_answers_never_raise(action: object, why: str) -> None:
    env = KeywordEnv()
    obs0, _ = env.reset(seed=0, options={"task_id": "opposite/hot"})
    obs, reward, terminated, truncated, info = env.step(action)
    assert obs["observation"].startswith("Nothing happens. (Invalid action") and why in obs["observation"]
    assert info["action_valid"] is False and info["won"] is False and info["step"] == 1
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert obs["admissible_actions"] == obs0["admissible_actions"] and obs in env.observation_space
    assert env.step("cold")[1] == 1.0  # the episode goes on


def test_utf8_bytes_are_decoded() -> None:
    env = KeywordEnv()
    env.reset(options={"task_id": "echo/tiger"})
    assert env.step(b"tiger")[1:3] == (1.0, True)


@pytest.mark.parametrize("max_steps", [1, 2, 4])
def test_max_steps_truncation(max_steps: int) -> None:
    env = KeywordEnv(max_steps=max_steps)
    env.reset(seed=0, options={"task_id": "echo/river"})
    flags = [env.step("not a word")[2:4] for _ in range(max_steps)]
    assert flags == [(False, False)] * (max_steps - 1) + [(False, True)]


def test_win_on_the_last_step_terminates_without_truncation() -> None:
    env = KeywordEnv(max_steps=2)
    env.reset(options={"task_id": "echo/cloud"})
    env.step("nope")
    assert env.step("cloud")[1:4] == (1.0, True, False)


def test_default_max_steps_via_registry() -> None:
    env = gym.make("Keyword-v0")
    env.reset(seed=0)
    assert [env.step("nope")[3] for _ in range(2)] == [False, True]
    env.close()
    env = gym.make("Keyword-v0", max_steps=5, task_types=["plural"])
    assert env.unwrapped.max_steps == 5 and {t["task_type"] for t in env.unwrapped.tasks} == {"plural"}
    env.close()


def test_seeding_determinism() -> None:
    def episode_tasks(seed: int) -> list[str]:
        env = KeywordEnv()
        tasks = [env.reset(seed=seed)[1]["task_id"]]
        tasks += [env.reset()[1]["task_id"] for _ in range(5)]  # the seeded RNG goes on
        return tasks

    assert episode_tasks(3) == episode_tasks(3)
    assert len({episode_tasks(s)[0] for s in range(20)}) > 5
    first, second = KeywordEnv(render_mode="ansi"), KeywordEnv(render_mode="ansi")
    for env in (first, second):
        obs, _ = env.reset(seed=8)
        env.step(obs["admissible_actions"].split("\n")[0])
    assert first.render() == second.render()


def test_task_types_filter() -> None:
    env = KeywordEnv(task_types=["plural", "echo"])
    assert {t["task_type"] for t in env.tasks} == {"plural", "echo"} and len(env.task_ids) == 12
    assert all(env.reset(seed=s)[1]["task_type"] in ("plural", "echo") for s in range(30))
    assert [t["task_type"] for t in KeywordEnv(task_types=["echo"]).tasks] == ["echo"] * 6
    with pytest.raises(ValueError, match="no tasks of types"):
        KeywordEnv(task_types=["synonym"])
    with pytest.raises(ValueError, match="no tasks"):
        KeywordEnv(task_types=[])


@pytest.mark.parametrize("answer_format", ["tagged", "action", "plain"])
def test_demonstration_is_a_right_answer_in_the_format_outside_the_tasks(answer_format: str) -> None:
    from agents.prompts import PromptBuilder

    env = KeywordEnv(answer_format=answer_format)
    example = env.instructions.demonstration
    assert example is not None and example.observation["task"] not in {t["task"] for t in _tasks_seen(env)}
    action, valid = env.instructions.parse(example.response)
    assert valid and action == "cats" and action in example.observation["admissible_actions"].split("\n")
    obs, _ = env.reset(options={"task_id": "plural/box"})
    prompt = PromptBuilder(env.instructions).build(obs, [], 0)
    assert [m["role"] for m in prompt] == ["user", "assistant", "user"] and prompt[1]["content"] == example.response
    assert "'cat'" in prompt[0]["content"] and "'box'" in prompt[2]["content"]
    assert PromptBuilder(env.instructions, demonstration=False).build(obs, [], 0) == prompt[2:]
    assert KeywordEnv(answer_format=answer_format, demonstration=False).instructions.demonstration is None


def _tasks_seen(env: KeywordEnv) -> list[dict[str, str]]:
    return [env.reset(options={"task_id": t})[0] for t in env.task_ids]


def test_train_and_test_splits_hold_out_two_words_of_each_type() -> None:
    train, test = KeywordEnv(split="train").task_ids, KeywordEnv(split="test").task_ids
    assert len(train) == 12 and len(test) == 6 and not set(train) & set(test)
    assert sorted(train + test) == sorted(KeywordEnv().task_ids)
    assert Counter(t.split("/")[0] for t in test) == {"opposite": 2, "plural": 2, "echo": 2}
    assert KeywordEnv(split="test", task_types=["echo"]).task_ids == ["echo/piano", "echo/tiger"]
    with pytest.raises(ValueError, match="split must be one of"):
        KeywordEnv(split="val")
