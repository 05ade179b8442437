"""Static skill sets for SKILL0: skill files chosen per task type, with an active subset.

This module holds :class:`StaticSkillSet`: a folder of SKILL0-style markdown files
(``general_skills.md`` plus one file per task family), a mapping from task types to file keys,
and the set of files currently *active* — the curriculum shrinks it between validations with
:meth:`StaticSkillSet.set_active`. :func:`starter_skills_dir` gives the starter set an env family
registers (:attr:`~skill_gym.families.EnvFamily.starter_skills`). A folder of SkillZero's own files
(ZJU-REAL/SkillZero ``skills/<env>``) is read as it is: its ``skill_mapping.json`` names the files
(``skill_files``) and maps task types to them by substring, as SkillZero matches task names inside ALFWorld
game-file paths.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from skill_gym.families import families
from skill_gym.library.formats import GENERAL_SECTION, parse_skill_markdown
from skill_gym.library.record import SkillValidationError

__all__ = ["GENERAL_KEY", "StaticSkillSet", "starter_skills_dir"]

GENERAL_KEY = "general_skills"
SKILLZERO_TASK_TYPES = {"comparison": "compare"}
"""Task types named differently in SkillZero's mappings (its Search-QA ``skill_type`` says ``compare``)."""


def starter_skills_dir(env: str) -> Path:
    """The starter skill folder of the env family ``env`` (e.g. ``"alfworld"``; its ``starter_skills``)."""
    known = families()
    folder = known[env].starter_skills if env in known else None
    if folder is None:
        having = sorted(name for name, f in known.items() if f.starter_skills is not None)
        raise FileNotFoundError(f"no starter skills for {env!r} (env families with starter skills: {having}); "
                                "static skills then need their folder as static_dir=")  # fmt: skip
    return folder


class StaticSkillSet:
    """Skill files rendered into context by task type.

    ``mapping`` sends a task type to a file key (the file's stem); it is read from
    ``skill_mapping.json`` in the folder when not given (``{"task_to_skill": {...}}``). When that
    file also has ``"skill_files": {key: file name}`` (SkillZero's layout), exactly those files are
    loaded; otherwise every ``*.md`` file is, keyed by its stem.

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
        listed, task_to_skill = self._read_mapping_file()
        paths = {key: self.folder / name for key, name in listed.items()} or {
            path.stem: path for path in sorted(self.folder.glob("*.md"))
        }
        self.files: dict[str, str] = {}
        for key, path in paths.items():
            if not path.is_file():
                raise SkillValidationError(f"{self.folder}: skill_mapping.json lists {path.name}, which is missing")
            sections = parse_skill_markdown(path.read_text(encoding="utf-8"), str(path))
            self.files[key] = "\n\n".join(_section_text(s.title, s.intro, s.items) for s in sections)
        if GENERAL_KEY not in self.files:
            raise SkillValidationError(f"{self.folder}: no {GENERAL_KEY}.md file")
        self.mapping = dict(mapping) if mapping is not None else task_to_skill
        unknown = sorted(set(self.mapping.values()) - set(self.files))
        if unknown:
            raise SkillValidationError(f"{self.folder}: the mapping names missing skill files {unknown}")
        self.active: tuple[str, ...] = tuple(self.files)

    def _read_mapping_file(self) -> tuple[dict[str, str], dict[str, str]]:
        """``(skill_files, task_to_skill)`` of ``skill_mapping.json`` (empty when there is no such file); the
        library skill ids of each file, when its provenance lists them, go to :attr:`skill_ids`."""
        self.skill_ids: dict[str, list[str]] = {}
        """File key → the ids of the library skills it holds (a folder exported from a library; else empty)."""
        path = self.folder / "skill_mapping.json"
        if not path.is_file():
            return {}, {}
        expected = '{"task_to_skill": {task_type: file_key}, "skill_files": {file_key: file_name} (optional)}'
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            mapping, listed = data["task_to_skill"], data.get("skill_files", {})
            for table in (mapping, listed):
                if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
                    raise TypeError
            ids = data.get("provenance", {}).get("files", {})
            if not isinstance(ids, dict) or not all(
                isinstance(v, list) and all(isinstance(i, str) for i in v) for v in ids.values()
            ):
                raise TypeError
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise SkillValidationError(f"{path}: expected {expected}") from None
        if any(Path(name).name != name for name in listed.values()):
            raise SkillValidationError(f"{path}: skill_files must name files in {self.folder}, not paths")
        self.skill_ids = {key: list(value) for key, value in ids.items()}
        return listed, mapping

    def file_for(self, task_type: str) -> str | None:
        """The file key of a task type (``None`` when the task type has no file).

        An exact mapping entry wins (also under SkillZero's name, :data:`SKILLZERO_TASK_TYPES`);
        otherwise the longest mapped name contained in ``task_type`` (SkillZero's ``pick_and_place``
        covers ALFWorld's ``pick_and_place_simple``), then a file named like the task type.
        """
        for name in (task_type, SKILLZERO_TASK_TYPES.get(task_type)):
            if name in self.mapping:
                return self.mapping[name]
        contained = [name for name in self.mapping if name and name in task_type]
        if contained:
            return self.mapping[max(contained, key=len)]
        return task_type if task_type in self.files else None

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
