"""The suites of the leaderboard: an env family on one split, with its columns, task order and expert.

This module holds :class:`Suite`, :data:`SUITES` (a live view of the env families of
:mod:`skill_gym.families`, each on its default split: ``alfworld``, ``webshop``, ``searchqa``, the tiny
``keyword`` and any family registered later), :func:`parse_suite` (``"alfworld:eval_out_of_distribution"``) and
:func:`task_types`. What a suite plays and how it is scored (ids, splits, columns, metric, expert) is its
family's: nothing here names an env.
Episode ``i`` of a suite always plays the same task (:meth:`Suite.tasks` interleaves the task types, so the
first N episodes cover every type), whatever the agent and the seed: seeds vary the agents' randomness.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from skill_gym.families import EnvFamily, families

__all__ = ["SUITES", "Suite", "parse_suite", "task_types"]


@dataclasses.dataclass(frozen=True)
class Suite:
    """One suite: an env family (its env and skill env, the columns its paper tables use) on one split.

    The family's fields read through: ``name``, ``base_id``, ``skill_id``, ``columns``, ``metric``, ``all_label``,
    ``expert_kwargs``, ``expert`` and ``random`` (see :class:`~skill_gym.families.EnvFamily`).
    """

    family: EnvFamily
    split: str = ""
    """One of the family's splits (``""``: the env's own default)."""

    name = property(lambda self: self.family.name)
    base_id = property(lambda self: self.family.base_id)
    skill_id = property(lambda self: self.family.skill_id)
    columns = property(lambda self: self.family.columns)
    metric = property(lambda self: self.family.metric)
    all_label = property(lambda self: self.family.all_label)
    expert_kwargs = property(lambda self: self.family.expert_kwargs)
    expert = property(lambda self: self.family.expert)
    random = property(lambda self: self.family.random)

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

    def tasks(self, task_ids: list[str], episodes: int = 0, types: Mapping[str, str] | None = None) -> list[str]:
        """The first ``episodes`` tasks (all with 0), one type after the other, round robin.

        ``types`` maps task ids to task types (see :func:`task_types`); ids missing there are typed by name.

        >>> SUITES["keyword"].tasks(["opposite/a", "opposite/b", "plural/c", "echo/d"], 3)
        ['opposite/a', 'plural/c', 'echo/d']
        """
        queues: dict[str, list[str]] = {}
        for task_id in task_ids:
            kind = (types or {}).get(task_id) or self.task_type_of(task_id)
            queues.setdefault(kind, []).append(task_id)
        ordered: list[str] = []
        while any(queues.values()):
            for queue in queues.values():
                if queue:
                    ordered.append(queue.pop(0))
        return ordered[:episodes] if episodes > 0 else ordered


def task_types(env: Any) -> dict[str, str]:
    """Task id → task type, from an env's task list (``tasks`` or ``games`` items) where it has one."""
    out = {}
    for item in getattr(env, "tasks", None) or getattr(env, "games", None) or []:
        get = item.get if isinstance(item, dict) else lambda key, item=item: getattr(item, key, None)
        task_id, task_type = get("task_id"), get("task_type")
        if isinstance(task_id, str) and isinstance(task_type, str):
            out[task_id] = task_type
    return out


class _Suites(Mapping[str, Suite]):
    """Family name → its suite on its default split, read from the family registry at each access."""

    def __getitem__(self, name: str) -> Suite:
        known = families()
        if name not in known:
            raise KeyError(name)
        return Suite(known[name], known[name].split)

    def __iter__(self) -> Iterator[str]:
        return iter(families())

    def __len__(self) -> int:
        return len(families())


SUITES: Mapping[str, Suite] = _Suites()
"""Suite name → the suite on its family's default split (a family registered later is in it too)."""


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
    known = suite.family.splits
    if split not in known:
        raise ValueError(f"suite {name!r} has no split {split!r}; splits: {', '.join(known or ('(none)',))}")
    return dataclasses.replace(suite, split=split)
