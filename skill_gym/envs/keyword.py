"""``Keyword-v0``: a tiny text task for fast tests and learning-sanity checks.

This module holds :class:`KeywordEnv`. Each task asks for one word out of a short admissible
list; the answer is implied by a rule the agent must learn (or read from a skill): for task type
``opposite`` the answer is the opposite of the shown word, for ``plural`` its plural, for
``echo`` the word itself. Reward 1.0 and ``won`` when the chosen word is right; at most
``max_steps`` tries. It runs in microseconds, so learners can be tested end to end on CPU.

Its instructions carry a :class:`~skill_gym.envs.instructions.Demonstration` (the plural of 'cat', a word
outside the tasks) in the chosen answer format: SmolLM2-135M-Instruct, shown it as a finished exchange
before the prompt, answers with a listed word about a third of the time at temperature 1.0 instead of never
(``benchmarks/perf/learning_curve.py``), which is what gives GRPO's groups a signal on CPU.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from skill_gym.envs.instructions import Demonstration, Instructions
from skill_gym.envs.text_env import TextEnv, coerce_action

__all__ = ["SPLITS", "TASKS", "KeywordEnv"]

_OPPOSITES = {"hot": "cold", "up": "down", "left": "right", "open": "closed", "big": "small", "fast": "slow"}
_PLURALS = {"apple": "apples", "box": "boxes", "knife": "knives", "mouse": "mice", "city": "cities", "leaf": "leaves"}
_ECHO = ["apple", "river", "stone", "cloud", "piano", "tiger"]


def _tasks() -> list[dict[str, Any]]:
    tasks = []
    for word, answer in _OPPOSITES.items():
        tasks.append({"task_type": "opposite", "word": word, "answer": answer})
    for word, answer in _PLURALS.items():
        tasks.append({"task_type": "plural", "word": word, "answer": answer})
    for word in _ECHO:
        tasks.append({"task_type": "echo", "word": word, "answer": word})
    for i, task in enumerate(tasks):
        task["task_id"] = f"{task['task_type']}/{task['word']}"
        pool = sorted({task["answer"], task["word"], *list(_OPPOSITES.values())[i % 3 : i % 3 + 2]})
        task["choices"] = pool
    return tasks


TASKS = _tasks()
SPLITS = ("all", "train", "test")
"""``test`` holds the last two words of each task type (6 tasks), ``train`` the other 12, ``all`` every task."""


def _in_split(task: dict[str, Any], split: str) -> bool:
    held_out = [t["task_id"] for t in TASKS if t["task_type"] == task["task_type"]][-2:]
    return split == "all" or (task["task_id"] in held_out) == (split == "test")


_INSTRUCTIONS = {
    "opposite": "Answer with the opposite of the word '{word}'.",
    "plural": "Answer with the plural of the word '{word}'.",
    "echo": "Answer with the word '{word}'.",
}


_EXAMPLE = {"task_type": "plural", "word": "cat", "answer": "cats", "choices": ["cat", "cats", "dog"]}
"""The demonstration's task: not one of :data:`TASKS`, so it gives no answer away."""
_EXAMPLE_RESPONSES = {
    "tagged": "<think>The plural of 'cat' is 'cats'.</think>\n<action>cats</action>",
    "action": "<action>cats</action>",
    "plain": "cats",
    "verl": "<think>The plural of 'cat' is 'cats'.</think>\n<action>cats</action>",
}
"""The demonstration's answer in each answer format of the env."""


def _question(task: dict[str, Any]) -> str:
    return _INSTRUCTIONS[task["task_type"]].format(word=task["word"])


def _first_observation(task: dict[str, Any]) -> dict[str, str]:
    """What ``reset`` shows for ``task``."""
    question = _question(task)
    return {"observation": f"{question} Choose one of the admissible actions.", "task": question,
            "admissible_actions": "\n".join(task["choices"])}  # fmt: skip


class KeywordEnv(TextEnv):
    """Pick the right word: a microsecond task for learner tests and learning-sanity checks.

    ## Description
    Each task shows a word and asks for the word a rule implies: its opposite (``opposite``), its
    plural (``plural``) or the word itself (``echo``), to be chosen from a short admissible list.
    18 tasks, 6 of each type; ``task_id`` is ``"<task_type>/<word>"``. ``split="train"`` keeps 4 words of each
    type and ``split="test"`` the other 2 (held-out words of the same rules).

    ## Action Space
    A string: one of ``obs["admissible_actions"]`` (by default the env asks for it inside
    ``<action> </action>`` after ``<think> </think>``; ``answer_format="plain"`` asks for the bare word).
    Anything else is invalid: ``info["action_valid"] = False``, and it still counts as a try.

    ## Observation Space
    ``Dict`` of ``Text``: ``observation`` (feedback), ``task`` (the question) and ``admissible_actions``
    (newline-joined words).

    ## Rewards
    1.0 for the right word, else 0.0.

    ## Starting State
    A task drawn with ``self.np_random`` (or pinned with ``options={"task_id": ...}``).

    ## Episode End
    ``terminated`` on the right word; ``truncated`` after ``max_steps`` tries without it.

    ## Arguments
    ``max_steps`` (2), ``task_types`` (a subset of ``opposite``, ``plural``, ``echo``), ``render_mode``
    (``"ansi"``), ``answer_format`` (``"tagged"``, ``"action"``, ``"plain"`` or ``"verl"``: the tagged format by verl-agent's
    parsing rules), ``demonstration`` (True: the
    instructions carry a worked example, the plural of 'cat', in the answer format; False: none), ``split``
    (``"all"``, ``"train"`` or ``"test"``).

    ## Version History
    * v0: initial version; ``demonstration`` (on by default) and ``split`` (``"all"`` by default) added.

    >>> env = KeywordEnv()
    >>> obs, info = env.reset(options={"task_id": "opposite/hot"})
    >>> obs["task"]
    "Answer with the opposite of the word 'hot'."
    >>> env.step("cold")[1:3]
    (1.0, True)
    """

    intro = "You are an agent that answers word tasks with one word from a list."

    def __init__(
        self,
        max_steps: int = 2,
        task_types: list[str] | None = None,
        render_mode: str | None = None,
        answer_format: str | None = None,
        demonstration: bool = True,
        split: str = "all",
    ) -> None:
        super().__init__(render_mode=render_mode, answer_format=answer_format)
        self.max_steps = max_steps
        self.demonstration = demonstration
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.tasks = [t for t in TASKS if (task_types is None or t["task_type"] in task_types) and _in_split(t, split)]
        if not self.tasks:
            raise ValueError(f"no tasks of types {task_types}; known: {sorted({t['task_type'] for t in TASKS})}")
        self.task_ids = [t["task_id"] for t in self.tasks]
        self._task = self.tasks[0]
        self._steps = 0

    @property
    def instructions(self) -> Instructions:
        """The intro, the answer format and (with ``demonstration``) the worked example in that format."""
        plain = super().instructions
        if not self.demonstration:
            return plain
        example = Demonstration(_first_observation(_EXAMPLE), _EXAMPLE_RESPONSES[self.answer_format])
        return dataclasses.replace(plain, demonstration=example)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        task_id = self.take_pending_options(options).get("task_id")
        if task_id is None:
            self._task = self.tasks[int(self.np_random.integers(len(self.tasks)))]
        else:
            matches = [t for t in self.tasks if t["task_id"] == task_id]
            if not matches:
                raise ValueError(f"unknown task_id {task_id!r}; see env.unwrapped.task_ids")
            self._task = matches[0]
        self._steps = 0
        obs = self._observe(None, **_first_observation(self._task))
        return obs, self._info(won=False, valid=True)

    def step(self, action: str):
        self._steps += 1
        clean, problem = coerce_action(action)
        valid = clean is not None and clean in self._task["choices"]
        won = valid and clean == self._task["answer"]
        if won:
            text = "Correct."
        elif valid:
            text = "Wrong word."
        else:
            text = f"Nothing happens. (Invalid action: {problem or 'not one of the admissible actions'}.)"
        obs = self._observe(clean or repr(action)[:80], observation=text, task=_question(self._task),
                            admissible_actions="\n".join(self._task["choices"]))  # fmt: skip
        truncated = not won and self._steps >= self.max_steps
        return obs, float(won), bool(won), truncated, self._info(won=won, valid=valid)

    def _info(self, won: bool, valid: bool) -> dict[str, Any]:
        return {
            "won": won,
            "score": float(won),
            "task_id": self._task["task_id"],
            "task_type": self._task["task_type"],
            "action_valid": valid,
            "step": self._steps,
        }
