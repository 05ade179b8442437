"""The skill record and its validation.

This module holds:

* :class:`Skill` — one reusable strategy: when it applies (``description``, the retrieval key),
  what to do (``strategy``), where it came from, and its running statistics;
* :class:`SkillValidationError` — raised with a message naming the field and the problem;
* the limits on text fields (:data:`MAX_DESCRIPTION_CHARS`, :data:`MAX_STRATEGY_CHARS`).
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
import uuid
from typing import Any, Literal

__all__ = [
    "MAX_DESCRIPTION_CHARS",
    "MAX_STRATEGY_CHARS",
    "SOURCES",
    "Skill",
    "SkillValidationError",
    "new_skill_id",
]

MAX_DESCRIPTION_CHARS = 2_000
MAX_STRATEGY_CHARS = 8_000
MAX_NAME_CHARS = 128
SOURCES = ("distilled", "imported", "manual")
Source = Literal["distilled", "imported", "manual"]

_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")
_PROVENANCE_KEYS = {"episode": (int, str), "task_id": (str,), "policy_step": (int,), "time": (int, float)}


class SkillValidationError(ValueError):
    """A skill (or a file of skills) is malformed; the message says which field and why."""


def new_skill_id() -> str:
    """A fresh, globally unique skill id (``sk-`` + 16 hex digits)."""
    return f"sk-{uuid.uuid4().hex[:16]}"


@dataclasses.dataclass
class Skill:
    """One skill of the library.

    Example:
        >>> s = Skill(description="Heating an object: use the microwave.",
        ...           strategy="Take the object, go to microwave 1, heat it, then place it.",
        ...           env="alfworld", task_type="pick_heat_then_place_in_recep")
        >>> s.utility, s.n_selected, s.source
        (0.5, 0, 'manual')
        >>> Skill.from_dict(s.to_dict()) == s
        True
    """

    description: str
    strategy: str
    env: str = ""
    task_type: str = ""
    id: str = dataclasses.field(default_factory=new_skill_id)
    source: Source = "manual"
    name: str = ""
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    utility: float = 0.5
    n_selected: int = 0
    n_retrieved: int = 0
    n_success: int = 0
    created: float = dataclasses.field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field; raise :class:`SkillValidationError` naming the first problem."""
        _check_text("id", self.id, 64)
        if not _ID_PATTERN.match(self.id):
            raise SkillValidationError(f"id {self.id!r} must match {_ID_PATTERN.pattern}")
        _check_text("description", self.description, MAX_DESCRIPTION_CHARS, required=True)
        _check_text("strategy", self.strategy, MAX_STRATEGY_CHARS, required=True)
        for name in ("env", "task_type", "name"):
            _check_text(name, getattr(self, name), MAX_NAME_CHARS)
        if self.source not in SOURCES:
            raise SkillValidationError(f"source must be one of {SOURCES}, got {self.source!r}")
        if not isinstance(self.provenance, dict):
            raise SkillValidationError(f"provenance must be a dict, got {type(self.provenance).__name__}")
        for key, types in _PROVENANCE_KEYS.items():
            value = self.provenance.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, types)):
                raise SkillValidationError(f"provenance[{key!r}] has the wrong type {type(value).__name__}")
        if isinstance(self.utility, bool) or not isinstance(self.utility, (int, float)):
            raise SkillValidationError(f"utility must be a number, got {type(self.utility).__name__}")
        if not math.isfinite(self.utility) or not 0.0 <= self.utility <= 1.0:
            raise SkillValidationError(f"utility must be in [0, 1], got {self.utility}")
        self.utility = float(self.utility)
        for name in ("n_selected", "n_retrieved", "n_success"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise SkillValidationError(f"{name} must be a non-negative integer, got {value!r}")
        if isinstance(self.created, bool) or not isinstance(self.created, (int, float)):
            raise SkillValidationError(f"created must be a timestamp, got {self.created!r}")

    def to_dict(self) -> dict[str, Any]:
        """All fields as a JSON-serializable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> Skill:
        """Build a skill from a dict, with clear errors for missing, unknown or mistyped fields."""
        if not isinstance(data, dict):
            raise SkillValidationError(f"a skill must be a JSON object, got {type(data).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise SkillValidationError(f"unknown skill field(s) {unknown}; expected some of {sorted(fields)}")
        for required in ("description", "strategy"):
            if required not in data:
                raise SkillValidationError(f"missing required field {required!r}")
        return cls(**data)

    def render(self) -> str:
        """The text shown to an agent: when it applies, then the strategy."""
        return f"When: {self.description}\nStrategy: {self.strategy}"


def _check_text(field: str, value: object, limit: int, required: bool = False) -> None:
    if not isinstance(value, str):
        raise SkillValidationError(f"{field} must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise SkillValidationError(f"{field} must not be empty")
    if len(value) > limit:
        raise SkillValidationError(f"{field} is {len(value)} characters long; the limit is {limit}")
    if "\x00" in value:
        raise SkillValidationError(f"{field} contains a NUL character")
    if not is_unicode_text(value):
        raise SkillValidationError(f"{field} is not valid Unicode text (it holds a lone surrogate)")


def is_unicode_text(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (Python strings may hold lone surrogates, which neither SQLite nor
    the encoder's tokenizer accept).

    >>> is_unicode_text("caf\\u00e9"), is_unicode_text("x\\ud800")
    (True, False)
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
