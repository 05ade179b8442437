"""Static skill sets for SKILL0: skill files chosen per task type, with an active subset.

This module holds :class:`StaticSkillSet`: a folder of SKILL0-style markdown files
(``general_skills.md`` plus one file per task family), a mapping from task types to file keys,
and the set of files currently *active* — the curriculum shrinks it between validations with
:meth:`StaticSkillSet.set_active`. :func:`starter_skills_dir` gives the starter set this project
ships per environment.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from skill_gym.library.formats import GENERAL_SECTION, parse_skill_markdown
from skill_gym.library.record import SkillValidationError

__all__ = ["GENERAL_KEY", "StaticSkillSet", "starter_skills_dir"]

GENERAL_KEY = "general_skills"
_STARTER_ROOT = Path(__file__).resolve().parent.parent / "skills"


def starter_skills_dir(env: str) -> Path:
    """The starter skill folder shipped for ``env`` (e.g. ``"alfworld"``)."""
    path = _STARTER_ROOT / env
    if not path.is_dir():
        available = sorted(p.name for p in _STARTER_ROOT.iterdir() if p.is_dir())
        raise FileNotFoundError(f"no starter skills for {env!r}; available: {available}")
    return path


class StaticSkillSet:
    """Skill files rendered into context by task type.

    ``mapping`` sends a task type to a file key (the file's stem); it is read from
    ``skill_mapping.json`` in the folder when not given (``{"task_to_skill": {...}}``).

    Example:
        >>> skills = StaticSkillSet(starter_skills_dir("alfworld"))
        >>> sorted(skills.files)[:2]
        ['clean', 'cool']
        >>> "GENERAL" in skills.render("pick_heat_then_place_in_recep") or skills.render("x") != ""
        True
    """

    def __init__(self, folder: str | Path, mapping: Mapping[str, str] | None = None) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"skill folder {self.folder} does not exist")
        self.files: dict[str, str] = {}
        for path in sorted(self.folder.glob("*.md")):
            sections = parse_skill_markdown(path.read_text(encoding="utf-8"), str(path))
            self.files[path.stem] = "\n\n".join(_section_text(s.title, s.intro, s.items) for s in sections)
        if GENERAL_KEY not in self.files:
            raise SkillValidationError(f"{self.folder}: no {GENERAL_KEY}.md file")
        self.mapping = dict(mapping) if mapping is not None else self._read_mapping()
        unknown = sorted(set(self.mapping.values()) - set(self.files))
        if unknown:
            raise SkillValidationError(f"{self.folder}: the mapping names missing skill files {unknown}")
        self.active: tuple[str, ...] = tuple(self.files)

    def _read_mapping(self) -> dict[str, str]:
        path = self.folder / "skill_mapping.json"
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            mapping = data["task_to_skill"]
            if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
                raise TypeError
        except (json.JSONDecodeError, KeyError, TypeError):
            raise SkillValidationError(f'{path}: expected {{"task_to_skill": {{task_type: file_key}}}}') from None
        return mapping

    def file_for(self, task_type: str) -> str | None:
        """The file key of a task type (``None`` when the task type has no file)."""
        return self.mapping.get(task_type, task_type if task_type in self.files else None)

    def set_active(self, keys: Iterable[str]) -> None:
        """Choose which files may be shown (the curriculum's active set)."""
        keys = tuple(dict.fromkeys(keys))
        unknown = sorted(set(keys) - set(self.files))
        if unknown:
            raise ValueError(f"unknown skill files {unknown}; known: {sorted(self.files)}")
        self.active = keys

    def render(self, task_type: str) -> str:
        """The skill text for a task: the general file and the task's file, when active."""
        keys = [GENERAL_KEY, self.file_for(task_type)]
        return "\n\n".join(self.files[k] for k in keys if k is not None and k in self.active)

    def keys_for(self, task_type: str) -> list[str]:
        """The active file keys that :meth:`render` would show for ``task_type``."""
        return [k for k in (GENERAL_KEY, self.file_for(task_type)) if k is not None and k in self.active]


def _section_text(title: str, intro: str, items: list[tuple[str, str, object]]) -> str:
    """One section as plain prompt text (metadata comments dropped)."""
    header = f"### {title} ###" if title != GENERAL_SECTION else f"### {GENERAL_SECTION} ###"
    lines = [header, intro] if intro else [header]
    lines += [f"{number}. {name}: {body}" for number, (name, body, _) in enumerate(items, start=1)]
    return "\n".join(lines)
