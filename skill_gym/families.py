"""Env families: a base text env, its skill env and how the leaderboard plays it, registered by one call.

This module holds :class:`EnvFamily`, :func:`register_family` (the base and skill ids in ``gymnasium``'s
registry, and the family here) and the lookups :func:`family`, :func:`families` and :func:`family_of`.
The family's name is the one name the rest of the project uses for the env: the skill env's ``env_name`` (which
library skills and starter skills belong to it), a recipe's ``"env:<name>"`` part and the leaderboard suite.
The shipped families are registered in :mod:`skill_gym.envs`; ``docs/new_env.md`` walks through adding one.

Example:
    >>> import skill_gym
    >>> family_of("SkillKeyword-v0").name, family("keyword").base_id
    ('keyword', 'Keyword-v0')
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import parse_env_id

from skill_gym.agent import Agent

__all__ = ["METRICS", "SKILL_ENTRY_POINT", "EnvFamily", "families", "family", "family_of", "register_family"]

SKILL_ENTRY_POINT = "skill_gym.skill_env.env:make_skill_env"
"""The entry point of every skill id: :class:`~skill_gym.skill_env.SkillEnv` around the family's base env."""

METRICS = ("success", "score", "em")
"""How the leaderboard scores a family: won rate per task type, WebShop's mean score and success, exact match."""

_NAME = re.compile(r"[a-z][a-z0-9_]*")
_FAMILIES: dict[str, EnvFamily] = {}


@dataclasses.dataclass(frozen=True)
class EnvFamily:
    """One env family: its base env, the skill env around it, its splits, leaderboard columns and expert.

    Every field is checked when the family is made; :func:`register_family` takes the same arguments.
    """

    name: str
    """Lower-case letters, digits and ``_`` (``"keyword"``): the skill env's ``env_name``, the ``env`` of its
    library skills, a recipe's ``"env:<name>"`` part and the leaderboard suite's name."""
    entry_point: str
    """The base env, ``"module:Class"``: imported when an env is made, so registering imports nothing. The
    class's keyword arguments are the base env's ``gym.make`` arguments."""
    base_id: str
    """The base env's Gymnasium id (``"Keyword-v0"``)."""
    skill_id: str = ""
    """The skill env's id (default ``"Skill" + base_id``)."""
    splits: tuple[str, ...] = ()
    """The values of the base env's ``split`` argument; the leaderboard accepts ``name:split`` for these."""
    split: str = ""
    """The split the leaderboard plays by default, one of :attr:`splits` (``""``: no ``split`` argument)."""
    columns: tuple[tuple[str, str], ...] = ()
    """``(task_type, column label)`` of the leaderboard table in the papers' order; the mean over all episodes
    is added as the last column."""
    metric: str = "success"
    """One of :data:`METRICS`: ``success`` (won rate per type), ``score`` (WebShop: mean score and success) or
    ``em`` (Search-QA: exact match, the mean score)."""
    all_label: str = "All"
    """The label of the column over all episodes."""
    expert_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Env arguments the expert needs (ALFWorld: ``expert_action=True``)."""
    expert: Callable[[], Agent] | None = None
    """Makes the family's expert or oracle (a :class:`~skill_gym.agent.Agent`), one per env; it imports what it
    needs when called."""
    random: Callable[[int], Agent] | None = None
    """Makes the random baseline for a seed (default: a random admissible action)."""
    starter_skills: Path | None = None
    """A folder of SKILL0-style skill files (``general_skills.md``, one file per task type, optionally
    ``skill_mapping.json``): the static skills of ``skills="static"`` and the leaderboard library agent's starter
    library. ``None``: the family ships none."""

    def __post_init__(self) -> None:
        set_field = object.__setattr__  # frozen: the fields are normalized once, here
        set_field(self, "skill_id", self.skill_id or f"Skill{self.base_id}")
        set_field(self, "splits", tuple(self.splits))
        set_field(self, "columns", tuple(tuple(column) for column in self.columns))
        set_field(self, "expert_kwargs", dict(self.expert_kwargs))
        if self.starter_skills is not None:
            set_field(self, "starter_skills", Path(self.starter_skills))
        problem = self._problem()
        if problem:
            raise ValueError(f"env family {self.name!r}: {problem}")

    def _problem(self) -> str:
        """What is wrong with the fields ('' when nothing is)."""
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            return "the name must be lower-case letters, digits and '_', starting with a letter"
        if not (isinstance(self.entry_point, str) and re.fullmatch(r"[\w.]+:[\w.]+", self.entry_point)):
            return f"entry_point must be 'module:Class', got {self.entry_point!r}"
        for env_id in (self.base_id, self.skill_id):
            try:
                parse_env_id(env_id)
            except (gym.error.Error, TypeError):
                return f"{env_id!r} is not a Gymnasium env id (like 'Name-v0')"
        if self.base_id == self.skill_id:
            return f"the base and skill ids are both {self.base_id!r}"
        if not all(isinstance(s, str) and s for s in self.splits) or len(set(self.splits)) != len(self.splits):
            return f"splits must be distinct non-empty strings, got {self.splits!r}"
        if self.split and self.split not in self.splits:
            return f"the default split {self.split!r} is not one of its splits {self.splits!r}"
        if not all(len(c) == 2 and all(isinstance(s, str) and s for s in c) for c in self.columns):
            return f"columns must be (task_type, label) pairs of strings, got {self.columns!r}"
        if self.metric not in METRICS:
            return f"metric must be one of {METRICS}, got {self.metric!r}"
        if any(f is not None and not callable(f) for f in (self.expert, self.random)):
            return "expert and random must be callables that make an agent"
        if self.starter_skills is not None and not self.starter_skills.is_dir():
            return f"the starter skills folder {self.starter_skills} does not exist"
        return ""

    def _registration(self, env_id: str) -> tuple[str, dict[str, Any]]:
        """``(entry point, kwargs)`` this family registers ``env_id`` (its base or skill id) with."""
        if env_id == self.skill_id:
            return SKILL_ENTRY_POINT, {"base_id": self.base_id, "env_name": self.name}
        return self.entry_point, {}


def register_family(name: str, entry_point: str, base_id: str, **fields: Any) -> EnvFamily:
    """Register an env family: its base and skill ids in ``gymnasium``'s registry, its suite on the leaderboard
    and its starter skills. ``fields`` are the other fields of :class:`EnvFamily`.

    Registering the same name, entry point and ids again replaces the family's other fields (a module imported
    twice registers twice). A name, base id or skill id that another registration holds is a ``ValueError``,
    and nothing is registered.

    >>> register_family("keyword", "skill_gym.envs.other:Env", "Keyword-v0")
    Traceback (most recent call last):
    ...
    ValueError: env family 'keyword' is already registered with entry point 'skill_gym.envs.keyword:KeywordEnv' and ids Keyword-v0, SkillKeyword-v0
    """
    new = EnvFamily(name, entry_point, base_id, **fields)
    old = _FAMILIES.get(name)
    if old is not None and (old.entry_point, old.base_id, old.skill_id) != (new.entry_point, new.base_id, new.skill_id):
        raise ValueError(f"env family {name!r} is already registered with entry point {old.entry_point!r} "
                         f"and ids {old.base_id}, {old.skill_id}")  # fmt: skip
    for env_id in (new.base_id, new.skill_id):
        owner = family_of(env_id)
        if owner is not None and owner.name != name:
            raise ValueError(f"{env_id!r} belongs to the env family {owner.name!r}")
        spec = gym.registry.get(env_id)
        if spec is not None and (spec.entry_point, spec.kwargs) != new._registration(env_id):
            raise ValueError(f"{env_id!r} is already registered in gymnasium, with entry point {spec.entry_point!r}")
    for env_id in (new.base_id, new.skill_id):
        if env_id not in gym.registry:
            entry, kwargs = new._registration(env_id)
            gym.register(env_id, entry_point=entry, kwargs=kwargs, disable_env_checker=False)
    _FAMILIES[name] = new
    return new


def family(name: str) -> EnvFamily:
    """The registered family called ``name`` (``KeyError`` naming the known ones when there is none)."""
    if name not in _FAMILIES:
        raise KeyError(f"no env family {name!r}; registered: {', '.join(_FAMILIES) or '(none)'}")
    return _FAMILIES[name]


def families() -> dict[str, EnvFamily]:
    """Every registered family by name, in registration order."""
    return dict(_FAMILIES)


def family_of(env_id: str) -> EnvFamily | None:
    """The family whose base or skill id ``env_id`` is (``None`` for an id no family registered)."""
    return next((f for f in _FAMILIES.values() if env_id in (f.base_id, f.skill_id)), None)
