"""What the skill phases show the agent, and worked examples of answering them.

This module holds the observation texts of the ``select`` and ``distill`` phases (:data:`SELECT_OBSERVATION`,
:func:`distill_observation`), which :class:`~skill_gym.skill_env.env.SkillEnv` emits, and
:func:`phase_demonstrations`: one :class:`~skill_gym.envs.instructions.Demonstration` per skill phase, on a task of
no env (sorting three numbers), so it gives no answer away. With ``demonstrations=True`` the skill env's
instructions carry them and each skill-phase prompt opens with its example as a finished exchange: SmolLM2-135M
writes a parseable skill about two times in three with the example and almost never without it (Skill1's own
prompts have none).
"""

from __future__ import annotations

import json

from skill_gym.envs.instructions import Demonstration
from skill_gym.library.record import Skill

__all__ = ["SELECT_OBSERVATION", "distill_observation", "phase_demonstrations"]

SELECT_OBSERVATION = "Before acting, ask the skill library for advice."


def distill_observation(task: str, success: bool, trajectory: str, earlier: str | None = None) -> str:
    """The ``distill`` phase's observation: the outcome, the trajectory, and (``contrast``) an earlier attempt at
    the same task with the opposite outcome."""
    parts = [
        f"The episode is over: you {'succeeded' if success else 'failed'} at the task '{task}'.",
        f"Your trajectory:\n{trajectory}",
    ]
    if earlier:
        parts.append(f"An earlier attempt at the same task that {'failed' if success else 'succeeded'}:\n{earlier}")
    parts.append("Write one reusable skill for similar tasks.")
    return "\n\n".join(parts)


_TASK = "Sort the numbers 3, 1, 2 in increasing order."
_CANDIDATES = (
    Skill("Asked to spell a word backwards.", "Write its letters from the last to the first."),
    Skill("Asked to order a few numbers.", "Compare them pairwise and write them from smallest to largest."),
)
_SKILL = {
    "description": "Asked to sort a short list of numbers.",
    "strategy": "Compare the numbers and write them from smallest to largest, separated by spaces.",
}
_LESSONS = {
    "subtasks": [{"name": "order the three numbers", "status": "completed"}],
    "task_success": True,
    "action_lesson": "Compare the numbers pairwise before writing the answer.",
    "navigation_lesson": "All the numbers are in the task text; nothing needs to be looked up.",
    "description_head": "Sorting a short list of numbers",
}


def phase_demonstrations(distill_format: str = "skill") -> dict[str, Demonstration]:
    """A worked example of ``select``, ``rerank`` and ``distill`` (its answer in ``distill_format``).

    >>> examples = phase_demonstrations()
    >>> sorted(examples), examples["rerank"].response
    (['distill', 'rerank', 'select'], '<rank>2,1</rank>')
    """
    if distill_format not in ("skill", "lessons"):
        raise ValueError(f"distill_format must be 'skill' or 'lessons', got {distill_format!r}")
    candidates = "\n".join(f"[{n}] {skill.render()}" for n, skill in enumerate(_CANDIDATES, start=1))
    rerank = {"task": _TASK, "observation": "The library returned 2 candidate skills (in obs['candidates']).",
              "candidates": candidates}  # fmt: skip
    distill = {"task": _TASK, "observation": distill_observation(_TASK, True, "1. > 1 2 3\nCorrect.")}
    return {
        "select": Demonstration(
            {"task": _TASK, "observation": SELECT_OBSERVATION}, "<query>order a few numbers</query>"
        ),
        "rerank": Demonstration(rerank, "<rank>2,1</rank>"),
        "distill": Demonstration(distill, json.dumps(_SKILL if distill_format == "skill" else _LESSONS)),
    }
