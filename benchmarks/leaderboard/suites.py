"""The suites of the leaderboard: which env and split, the papers' columns, the task order and the expert.

This module holds :class:`Suite`, the registry :data:`SUITES` (``alfworld``, ``keyword``; ``webshop`` and
``searchqa`` once their env ids are registered) and :func:`parse_suite` (``"alfworld:eval_out_of_distribution"``).
Episode ``i`` of a suite always plays the same task (:meth:`Suite.tasks` interleaves the task types, so the
first N episodes cover every type), whatever the agent and the seed: seeds vary the agents' randomness.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from benchmarks.leaderboard.protocol import Agent, FunctionAgent, InfoActionAgent

__all__ = ["SUITES", "Suite", "parse_suite"]


def _keyword_oracle() -> Agent:
    from skill_gym.envs.keyword import TASKS

    answers = {t["task_id"]: t["answer"] for t in TASKS}
    return FunctionAgent(lambda observation, info: answers.get(str(info.get("task_id")), ""))


@dataclasses.dataclass(frozen=True)
class Suite:
    """One suite: an env (and its skill env) on one split, with the columns its paper tables use."""

    name: str
    base_id: str
    skill_id: str
    env_name: str
    """The skill env's ``env_name`` (which starter skills and library entries belong to it)."""
    split: str = ""
    columns: tuple[tuple[str, str], ...] = ()
    """``(task_type, column label)`` in the papers' order; the mean over all episodes is added as the last."""
    metric: str = "success"
    """``success`` (won rate per type), ``score`` (WebShop: mean score and success) or ``em`` (exact match)."""
    all_label: str = "All"
    expert_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Env arguments the expert needs (ALFWorld: ``expert_action=True``)."""
    expert: Callable[[], Agent] | None = None

    @property
    def key(self) -> str:
        """``name`` or ``name:split`` — how runs and tables name the suite."""
        return f"{self.name}:{self.split}" if self.split else self.name

    def env_id(self, library: bool = False) -> str:
        return self.skill_id if library else self.base_id

    def env_kwargs(self) -> dict[str, Any]:
        return {"split": self.split} if self.split else {}

    def task_type_of(self, task_id: str) -> str:
        """The task type named in ``task_id`` ('' when none of the columns' types is)."""
        return next((t for t, _ in self.columns if t in task_id), "")

    def tasks(self, task_ids: list[str], episodes: int = 0) -> list[str]:
        """The first ``episodes`` tasks (all with 0), one type after the other, round robin.

        >>> SUITES["keyword"].tasks(["opposite/a", "opposite/b", "plural/c", "echo/d"], 3)
        ['opposite/a', 'plural/c', 'echo/d']
        """
        queues: dict[str, list[str]] = {}
        for task_id in task_ids:
            queues.setdefault(self.task_type_of(task_id), []).append(task_id)
        ordered: list[str] = []
        while any(queues.values()):
            for queue in queues.values():
                if queue:
                    ordered.append(queue.pop(0))
        return ordered[:episodes] if episodes > 0 else ordered


SUITES: dict[str, Suite] = {
    "alfworld": Suite(
        name="alfworld", base_id="Alfworld-v0", skill_id="SkillAlfworld-v0", env_name="alfworld",
        split="eval_out_of_distribution",
        columns=(("pick_and_place_simple", "Pick"), ("look_at_obj_in_light", "Look"),
                 ("pick_clean_then_place_in_recep", "Clean"), ("pick_heat_then_place_in_recep", "Heat"),
                 ("pick_cool_then_place_in_recep", "Cool"), ("pick_two_obj_and_place", "Pick2")),
        expert_kwargs={"expert_action": True}, expert=lambda: InfoActionAgent("expert_action"),
    ),
    "keyword": Suite(
        name="keyword", base_id="Keyword-v0", skill_id="SkillKeyword-v0", env_name="keyword",
        columns=(("opposite", "Opposite"), ("plural", "Plural"), ("echo", "Echo")), expert=_keyword_oracle,
    ),
}  # fmt: skip
"""Suite name → its default split and columns."""

_SPLITS = {"alfworld": ("train", "eval_in_distribution", "eval_out_of_distribution")}


def parse_suite(text: str) -> Suite:
    """A suite from ``name`` or ``name:split``.

    >>> parse_suite("alfworld:eval_in_distribution").key
    'alfworld:eval_in_distribution'
    >>> parse_suite("keyword").base_id
    'Keyword-v0'
    """
    name, _, split = str(text).strip().partition(":")
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; known: {', '.join(sorted(SUITES))}")
    suite = SUITES[name]
    if not split:
        return suite
    known = _SPLITS.get(name)
    if known is None or split not in known:
        raise ValueError(f"suite {name!r} has no split {split!r}; splits: {', '.join(known or ('(none)',))}")
    return dataclasses.replace(suite, split=split)
