"""A new env family is its env class plus one ``register_family`` call: a throwaway family, defined and registered
here, plays on the leaderboard (expert, random and library agents, through the ``skill-gym`` command) with no
other edit; bad registrations fail clearly and register nothing.

The families registered here stay registered for the rest of the session (``Coin-v0``, ``CoinBare-v0``); they
are registered after collection, so the env-contract tests that walk the registry do not see them.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import skill_gym
from agents.recipes import env_family
from benchmarks.leaderboard.runner import starter_library
from benchmarks.leaderboard.suites import SUITES, parse_suite
from benchmarks.leaderboard.tables import build_tables
from benchmarks.leaderboard.transcripts import iter_transcripts
from skill_gym.agent import FunctionAgent
from skill_gym.cli import main
from skill_gym.envs.text_env import TextEnv, coerce_action
from skill_gym.families import families, family, family_of, register_family

ENTRY = "tests.test_register_family:CoinEnv"
LIBRARY = "library:python:tests.test_register_family:SkillReader"
WORDS = {"heads": ("sun", "moon", "star", "sky"), "tails": ("rock", "tree", "lake", "sand")}
SKILL_FILES = {
    "general_skills.md": "### GENERAL SKILLS ###\n\n1. One Word: Answer heads or tails, nothing else.\n",
    "heads.md": "### TASK: heads ###\n\n1. Sky Words: The sun, moon, stars and sky are heads.\n",
    "tails.md": "### TASK: tails ###\n\n1. Ground Words: Rocks, trees, lakes and sand are tails.\n",
}


class CoinEnv(TextEnv):
    """Say which side of the coin a word is on: ``heads`` (things of the sky) or ``tails`` (of the ground).

    8 tasks, ``task_id`` ``"<side>/<word>"``; ``split="train"`` holds the first two words of each side, ``"test"``
    the other two. Reward 1.0 for the right side; at most ``max_steps`` tries.
    """

    intro = "You are an agent that sorts words into heads and tails."
    splits = ("train", "test")

    def __init__(self, split: str = "train", max_steps: int = 2, render_mode: str | None = None,
                 answer_format: str | None = None) -> None:  # fmt: skip
        super().__init__(render_mode=render_mode, answer_format=answer_format)
        if split not in self.splits:
            raise ValueError(f"split must be one of {self.splits}, got {split!r}")
        held = slice(0, 2) if split == "train" else slice(2, 4)
        self.tasks = [
            {"task_id": f"{side}/{w}", "task_type": side, "word": w} for side in WORDS for w in WORDS[side][held]
        ]
        self.task_ids = [t["task_id"] for t in self.tasks]
        self.max_steps = max_steps

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        task_id = self.take_pending_options(options).get("task_id")
        if task_id is None:
            task_id = self.task_ids[int(self.np_random.integers(len(self.task_ids)))]
        self._task, self._steps = self.tasks[self.task_ids.index(task_id)], 0
        return self._show(None, self._question()), self._info(False, True)

    def step(self, action: str):
        self._steps += 1
        clean, problem = coerce_action(action)
        valid, won = clean in WORDS, clean == self._task["task_type"]
        text = "Right." if won else "Wrong side." if valid else f"Invalid action: {problem or 'say heads or tails'}."
        obs = self._show(clean or "?", text)
        return obs, float(won), won, not won and self._steps >= self.max_steps, self._info(won, valid)

    def _question(self) -> str:
        return f"Which side is '{self._task['word']}' on?"

    def _show(self, action: str | None, text: str) -> dict[str, str]:
        return self._observe(action, observation=text, task=self._question(), admissible_actions="heads\ntails")

    def _info(self, won: bool, valid: bool) -> dict[str, Any]:
        return {"won": won, "score": float(won), "task_id": self._task["task_id"], "task_type": self._task["task_type"],
                "action_valid": valid, "step": self._steps}  # fmt: skip


def coin_expert() -> FunctionAgent:
    return FunctionAgent(lambda observation, info: str(info["task_id"]).split("/")[0])


class SkillReader:
    """Answers right only when the env put a skill in context (the library agent's skill env)."""

    def act(self, observation, info):
        assert observation["skills"].strip(), "no skill in context"
        return str(info["task_id"]).split("/")[0]


@pytest.fixture(scope="module")
def skills_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("coin_skills")
    for name, text in SKILL_FILES.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture(scope="module")
def coin(skills_dir):
    """The one call a new env family needs."""
    return register_family("coin", ENTRY, "Coin-v0", splits=CoinEnv.splits, split="test",
                           columns=(("heads", "Heads"), ("tails", "Tails")), expert=coin_expert,
                           starter_skills=skills_dir)  # fmt: skip


def test_one_call_registers_the_ids_the_family_and_the_suite(coin):
    assert gym.spec("Coin-v0").entry_point == ENTRY
    assert gym.spec("SkillCoin-v0").kwargs == {"base_id": "Coin-v0", "env_name": "coin"}
    assert skill_gym.is_skill_env("SkillCoin-v0") and not skill_gym.is_skill_env("Coin-v0")
    assert family("coin") is coin and family_of("SkillCoin-v0") is coin and "coin" in families()
    assert env_family("SkillCoin-v0") == env_family("Coin-v0") == "coin"
    assert "coin" in SUITES and SUITES["coin"].key == "coin:test"
    assert parse_suite("coin:train").env_kwargs() == {"split": "train"}
    with pytest.raises(ValueError, match="no split 'dev'; splits: train, test"):
        parse_suite("coin:dev")
    env = gym.make("SkillCoin-v0", skills="static", split="test")
    obs, info = env.reset(options={"task_id": "tails/sand"})
    assert "Ground Words" in obs["skills"] and "Sky Words" not in obs["skills"]
    assert env.step("tails")[1:3] == (1.0, True)
    env.close()


def test_the_family_plays_on_the_leaderboard_with_no_other_edit(coin, tmp_path):
    argv = ["leaderboard", "run", "--agent", "expert", "--agent", "random", "--agent", LIBRARY, "--suite", "coin",
            "--episodes", "4", "--num-envs", "2", "--out", str(tmp_path), "--no-progress"]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert main(argv) == 0
    assert "### coin:test" in printed.getvalue()
    by_agent: dict[str, list[dict]] = {}
    for transcript, problem in iter_transcripts(tmp_path):
        assert transcript is not None, problem
        by_agent.setdefault(transcript["header"]["agent"], []).append(transcript)
    assert {agent: len(ts) for agent, ts in by_agent.items()} == {"expert": 4, "random": 4, LIBRARY: 4}
    assert {t["header"]["task_id"] for t in by_agent["expert"]} == {
        "heads/star",
        "heads/sky",
        "tails/lake",
        "tails/sand",
    }
    assert all(t["result"]["won"] for t in by_agent["expert"] + by_agent[LIBRARY]), [
        t["result"]["error"] for t in by_agent[LIBRARY]
    ]
    assert {t["header"]["env_id"] for t in by_agent[LIBRARY]} == {"SkillCoin-v0"}
    table = build_tables(tmp_path, reported=[])["suites"]["coin:test"]
    assert table["columns"][:3] == ["Heads", "Tails", "All"]
    expert = next(row for row in table["rows"] if row["agent"] == "expert")
    assert expert["cells"]["All"]["mean"] == 100.0 and expert["episodes"] == 4
    library = next(row for row in table["rows"] if row["agent"] == LIBRARY)
    assert library["cells"]["Library"]["mean"] == 3  # the starter skills: one item in each of the 3 files
    assert json.loads((tmp_path / "run.json").read_text())["suites"] == ["coin:test"]


def test_a_family_without_starter_skills(coin, skills_dir, tmp_path):
    bare = register_family("coin_bare", ENTRY, "CoinBare-v0")
    assert bare.skill_id == "SkillCoinBare-v0" and bare.splits == () and SUITES["coin_bare"].key == "coin_bare"
    with pytest.raises(FileNotFoundError, match=r"no starter skills for 'coin_bare'.*static_dir="):
        gym.make("SkillCoinBare-v0", skills="static")
    env = gym.make("SkillCoinBare-v0", skills="static", static_dir=str(skills_dir))
    assert "One Word" in env.reset(options={"task_id": "heads/sun"})[0]["skills"]
    env.close()
    assert starter_library(tmp_path, SUITES["coin_bare"])[1] == 0  # the library agent starts from an empty library


def test_registering_again_is_idempotent(coin, skills_dir):
    again = register_family("coin", ENTRY, "Coin-v0", splits=CoinEnv.splits, split="test",
                            columns=(("heads", "Heads"), ("tails", "Tails")), expert=coin_expert,
                            starter_skills=skills_dir)  # fmt: skip
    assert again == coin and family("coin") == coin


@pytest.mark.parametrize(
    ("name", "entry_point", "base_id", "fields", "message"),
    [
        ("coin", "tests.elsewhere:CoinEnv", "Coin-v0", {}, "'coin' is already registered with entry point"),
        ("coin", ENTRY, "Coin-v1", {}, "'coin' is already registered"),
        ("coin2", ENTRY, "Coin-v0", {}, "'Coin-v0' belongs to the env family 'coin'"),
        ("coin2", ENTRY, "Coin2-v0", {"skill_id": "SkillCoin-v0"}, "'SkillCoin-v0' belongs to the env family 'coin'"),
        ("cart", ENTRY, "CartPole-v1", {}, "'CartPole-v1' is already registered in gymnasium"),
        ("coin2", ENTRY, "Coin2-v0", {"splits": ("train",), "split": "test"}, "default split 'test' is not one"),
        ("coin2", ENTRY, "Coin2-v0", {"splits": ("a", "a")}, "splits must be distinct"),
        ("Coin2", ENTRY, "Coin2-v0", {}, "lower-case letters"),
        ("coin:2", ENTRY, "Coin2-v0", {}, "lower-case letters"),
        ("coin2", "CoinEnv", "Coin2-v0", {}, "entry_point must be 'module:Class'"),
        ("coin2", ENTRY, "not an id!", {}, "is not a Gymnasium env id"),
        ("coin2", ENTRY, "Coin2-v0", {"skill_id": "Coin2-v0"}, "base and skill ids are both"),
        ("coin2", ENTRY, "Coin2-v0", {"metric": "bleu"}, "metric must be one of"),
        ("coin2", ENTRY, "Coin2-v0", {"columns": (("heads",),)}, "columns must be"),
        ("coin2", ENTRY, "Coin2-v0", {"expert": "tests:expert"}, "must be callables"),
        ("coin2", ENTRY, "Coin2-v0", {"starter_skills": "/no/such/folder"}, "starter skills folder"),
    ],
)
def test_bad_registrations_fail_clearly_and_register_nothing(coin, name, entry_point, base_id, fields, message):
    before, ids = families(), set(gym.registry)
    with pytest.raises(ValueError, match=message):
        register_family(name, entry_point, base_id, **fields)
    assert families() == before and set(gym.registry) == ids


def test_an_installed_family_plays_through_the_cli_in_a_fresh_process(tmp_path):
    """A package outside this repository registers its family through the ``skill_gym.env_families`` entry points."""
    site = tmp_path / "site"
    (site / "coin_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "coin_plugin-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: coin-plugin\nVersion: 0.1\n"
    )
    (site / "coin_plugin-0.1.dist-info" / "entry_points.txt").write_text(
        "[skill_gym.env_families]\ncoin_plugin = coin_plugin:register\n"
    )
    (site / "coin_plugin.py").write_text(
        "from skill_gym import register_family\n"
        "from tests.test_register_family import coin_expert\n\n\n"
        "def register():\n"
        "    register_family('coin_plugin', 'tests.test_register_family:CoinEnv', 'CoinPlugin-v0',\n"
        "                    splits=('train', 'test'), split='test', columns=(('heads', 'Heads'), ('tails', 'Tails')),\n"
        "                    expert=coin_expert)\n"
    )
    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "skill_gym.cli", "leaderboard", "run", "--agent", "expert", "--suite", "coin_plugin",
            "--episodes", "2", "--num-envs", "1", "--out", str(out), "--no-progress"]  # fmt: skip
    done = subprocess.run(argv, cwd=root, env={**os.environ, "PYTHONPATH": f"{site}:{root}"},
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    transcripts = [t for t, _ in iter_transcripts(out)]
    assert len(transcripts) == 2 and all(t["result"]["won"] for t in transcripts)
    assert {t["header"]["env_id"] for t in transcripts} == {"CoinPlugin-v0"}
