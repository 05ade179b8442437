"""Skill files: import and export in the formats the field uses.

This module holds readers and writers for:

* ``native`` — ``{"format": "skill-gym", "version": 1, "skills": [record, ...]}``;
* ``skill1`` — Skill1's ``skill_library.json``: a list of ``{skill_id, scenario_desc,
  description_head, strategy, trajectory, utility_score, count, attempt_type, created_at_step,
  created_at_progress}``;
* ``skillrl`` — SkillRL's skill JSON: ``general_skills``, ``task_specific_skills`` (or
  ``query_type_skills``), ``common_mistakes`` and ``metadata``;
* ``skill0`` — SKILL0's markdown: ``### GENERAL SKILLS ###`` / ``### TASK: name ###`` sections,
  an intro line, then numbered ``N. Title: principle. Apply this when ...`` items; one file
  or a folder of files.

Every writer embeds the full skill-gym record (a ``skill_gym`` key in JSON, a
``<!-- skill-gym: {...} -->`` comment in markdown), so export → import loses nothing; files
written by the upstream projects import with their own fields mapped onto :class:`Skill`.
Malformed files raise :class:`SkillValidationError` naming the file (and line, for markdown).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from skill_gym.files import atomic_write
from skill_gym.library.record import Skill, SkillValidationError

__all__ = [
    "FORMATS",
    "MarkdownSection",
    "detect_format",
    "dump_skills",
    "load_skills",
    "parse_skill_markdown",
    "render_skill_markdown",
]

Format = Literal["native", "skill1", "skillrl", "skill0"]
FORMATS: tuple[str, ...] = ("native", "skill1", "skillrl", "skill0")
MAX_FILE_BYTES = 256 * 1024 * 1024

_HEADER = re.compile(r"^###\s+(?P<title>.+?)\s+###\s*$")
_ITEM = re.compile(r"^(?P<number>\d+)\.\s+(?P<title>[^:\n]{1,200}?):\s+(?P<body>\S.*)$")
_META = re.compile(r"^<!--\s*skill-gym:\s*(?P<json>\{.*\})\s*-->\s*$")
_COMMENT = re.compile(r"^<!--.*-->$")
_APPLY = re.compile(r"\s+(?=Apply this\b)", re.IGNORECASE)
GENERAL_SECTION = "GENERAL SKILLS"
_DEFAULT_INTRO = {
    GENERAL_SECTION: "Here are some useful general strategies for completing tasks in this environment:",
}


# -- entry points ------------------------------------------------------------------------------


def detect_format(path: str | Path) -> Format:
    """Guess the format of a file or folder from its extension and, for JSON, its shape."""
    path = Path(path)
    if path.is_dir() or path.suffix.lower() in (".md", ".markdown"):
        return "skill0"
    data = _read_json(path)
    if isinstance(data, list):
        return "skill1"
    if isinstance(data, dict) and data.get("format") == "skill-gym":
        return "native"
    if isinstance(data, dict) and ("general_skills" in data or "common_mistakes" in data):
        return "skillrl"
    raise SkillValidationError(f"{path}: cannot tell the skill format (expected a skill-gym, Skill1 or SkillRL file)")


def load_skills(path: str | Path, fmt: Format | None = None, env: str = "") -> list[Skill]:
    """Read every skill in ``path``. ``env`` fills the env of records that do not name one."""
    path = Path(path)
    if not path.exists():
        raise SkillValidationError(f"{path}: no such file or folder")
    fmt = fmt or detect_format(path)
    if fmt == "skill0":
        files = sorted(path.glob("*.md")) if path.is_dir() else [path]
        if not files:
            raise SkillValidationError(f"{path}: no .md skill files in this folder")
        skills = []
        for file in files:
            for section in parse_skill_markdown(_read_text(file), str(file)):
                skills.extend(section.to_skills(env, file.stem))
        return skills
    data = _read_json(path)
    readers = {"native": _from_native, "skill1": _from_skill1, "skillrl": _from_skillrl}
    if fmt not in readers:
        raise SkillValidationError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    try:
        return readers[fmt](data, env)
    except SkillValidationError as error:
        raise SkillValidationError(f"{path}: {error}") from None


def dump_skills(skills: Iterable[Skill], path: str | Path, fmt: Format = "native") -> Path:
    """Write ``skills`` to ``path`` in ``fmt`` (for ``skill0``, a folder writes one file per section)."""
    path = Path(path)
    skills = list(skills)
    if fmt == "skill0":
        sections = _group_sections(skills)
        if path.suffix.lower() in (".md", ".markdown"):
            _write_text(path, "\n\n".join(render_skill_markdown(title, items) for title, items in sections.items()))
        else:
            path.mkdir(parents=True, exist_ok=True)
            for title, items in sections.items():
                name = "general_skills" if title == GENERAL_SECTION else title.removeprefix("TASK:").strip()
                _write_text(path / f"{_safe_filename(name)}.md", render_skill_markdown(title, items))
        return path
    writers = {"native": _to_native, "skill1": _to_skill1, "skillrl": _to_skillrl}
    if fmt not in writers:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    _write_text(path, json.dumps(writers[fmt](skills), indent=2, ensure_ascii=False) + "\n")
    return path


# -- native ------------------------------------------------------------------------------------


def _to_native(skills: list[Skill]) -> dict[str, Any]:
    return {"format": "skill-gym", "version": 1, "skills": [s.to_dict() for s in skills]}


def _from_native(data: Any, env: str) -> list[Skill]:
    items = data.get("skills")
    if not isinstance(items, list):
        raise SkillValidationError("'skills' must be a list")
    return [_record(item, f"skills[{i}]") for i, item in enumerate(items)]


# -- Skill1 ------------------------------------------------------------------------------------


def _to_skill1(skills: list[Skill]) -> list[dict[str, Any]]:
    return [
        {
            "skill_id": s.id,
            "scenario_desc": str(s.provenance.get("task", s.description)),
            "description_head": s.description,
            "strategy": s.strategy,
            "trajectory": str(s.provenance.get("trajectory", "")),
            "utility_score": s.utility,
            "count": s.n_retrieved + 1,
            "attempt_type": str(s.provenance.get("attempt_type", "success")),
            "created_at_step": s.provenance.get("policy_step"),
            "created_at_progress": s.provenance.get("progress"),
            "skill_gym": s.to_dict(),
        }
        for s in skills
    ]


def _from_skill1(data: Any, env: str) -> list[Skill]:
    skills = []
    for i, item in enumerate(data):
        where = f"entry {i}"
        if not isinstance(item, dict):
            raise SkillValidationError(f"{where}: expected an object, got {type(item).__name__}")
        if "skill_gym" in item:
            skills.append(_record(item["skill_gym"], where))
            continue
        description = item.get("description_head") or item.get("scenario_desc")
        count = item.get("count", 1)
        provenance = {
            key: item[src]
            for key, src in (
                ("task", "scenario_desc"), ("trajectory", "trajectory"), ("attempt_type", "attempt_type"),
                ("policy_step", "created_at_step"), ("progress", "created_at_progress"),
            )
            if item.get(src) is not None
        }  # fmt: skip
        fields = {
            "description": description,
            "strategy": item.get("strategy"),
            "env": env,
            "source": "imported",
            "utility": item.get("utility_score", 0.5),
            "n_retrieved": max(0, count - 1) if isinstance(count, int) and not isinstance(count, bool) else count,
            "provenance": provenance,
        }
        if item.get("skill_id") is not None:
            fields["id"] = item["skill_id"]
        skills.append(_record(fields, where))
    return skills


# -- SkillRL -----------------------------------------------------------------------------------


def _to_skillrl(skills: list[Skill]) -> dict[str, Any]:
    out: dict[str, Any] = {"general_skills": [], "task_specific_skills": {}, "common_mistakes": []}
    for s in skills:
        if s.provenance.get("kind") == "mistake":
            out["common_mistakes"].append(
                {
                    "mistake_id": s.id,
                    "description": s.description,
                    "why_it_happens": str(s.provenance.get("why_it_happens", "")),
                    "how_to_avoid": s.strategy,
                    "skill_gym": s.to_dict(),
                }
            )
            continue
        entry = {
            "skill_id": s.id,
            "title": s.name or s.description[:60],
            "principle": s.strategy,
            "when_to_apply": s.description,
            "skill_gym": s.to_dict(),
        }
        if s.task_type:
            out["task_specific_skills"].setdefault(s.task_type, []).append(entry)
        else:
            out["general_skills"].append(entry)
    out["metadata"] = {"source": "skill-gym", "total_skills": len(skills)}
    return out


def _from_skillrl(data: Any, env: str) -> list[Skill]:
    skills: list[Skill] = []
    general = data.get("general_skills", [])
    by_type = data.get("task_specific_skills", data.get("query_type_skills", {}))
    mistakes = data.get("common_mistakes", [])
    if not isinstance(general, list) or not isinstance(by_type, dict) or not isinstance(mistakes, list):
        raise SkillValidationError("general_skills and common_mistakes must be lists, task_specific_skills an object")
    groups: list[tuple[str, str, Any]] = [("", "general_skills", general)]
    groups += [(str(task), f"task_specific_skills[{task!r}]", items) for task, items in by_type.items()]
    for task, where, items in groups:
        if not isinstance(items, list):
            raise SkillValidationError(f"{where} must be a list")
        for i, item in enumerate(items):
            if isinstance(item, dict) and "skill_gym" in item:
                skills.append(_record(item["skill_gym"], f"{where}[{i}]"))
                continue
            _require_object(item, f"{where}[{i}]")
            fields = {
                "name": item.get("title", ""),
                "strategy": item.get("principle"),
                "description": item.get("when_to_apply") or item.get("title"),
                "env": env,
                "task_type": task,
                "source": "imported",
                "provenance": {"kind": "task" if task else "general"},
            }
            if item.get("skill_id"):
                fields["id"] = item["skill_id"]
            skills.append(_record(fields, f"{where}[{i}]"))
    for i, item in enumerate(mistakes):
        if isinstance(item, dict) and "skill_gym" in item:
            skills.append(_record(item["skill_gym"], f"common_mistakes[{i}]"))
            continue
        _require_object(item, f"common_mistakes[{i}]")
        fields = {
            "name": "mistake",
            "description": item.get("description"),
            "strategy": item.get("how_to_avoid"),
            "env": env,
            "source": "imported",
            "provenance": {"kind": "mistake", "why_it_happens": item.get("why_it_happens", "")},
        }
        if item.get("mistake_id"):
            fields["id"] = item["mistake_id"]
        skills.append(_record(fields, f"common_mistakes[{i}]"))
    return skills


# -- SKILL0 markdown ---------------------------------------------------------------------------


class MarkdownSection:
    """One ``### TITLE ###`` section of a SKILL0 skill file: its intro line and numbered items."""

    def __init__(self, title: str, intro: str = "", items: list[tuple[str, str, dict[str, Any] | None]] | None = None):
        self.title = title
        self.intro = intro
        self.items = items or []  # (title, body, embedded record or None)

    @property
    def task(self) -> str:
        """``""`` for the general section, else the task name after ``TASK:``."""
        if self.title.upper() == GENERAL_SECTION:
            return ""
        return self.title.split(":", 1)[1].strip() if ":" in self.title else self.title

    def to_skills(self, env: str, file_stem: str) -> list[Skill]:
        skills = []
        for number, (name, body, record) in enumerate(self.items, start=1):
            if record is not None:
                skills.append(_record(record, f"{file_stem} item {number}"))
                continue
            parts = _APPLY.split(body, maxsplit=1)
            principle, when = (parts[0].strip(), parts[1].strip()) if len(parts) == 2 else (body.strip(), "")
            fields = {
                "name": name,
                "strategy": principle,
                "description": when or f"{name} ({self.task or 'general'})",
                "env": env,
                "task_type": self.task,
                "source": "imported",
                "provenance": {"kind": "task" if self.task else "general", "file": file_stem, "intro": self.intro},
            }
            skills.append(_record(fields, f"{file_stem} item {number}"))
        return skills


def parse_skill_markdown(text: str, source: str = "<string>") -> list[MarkdownSection]:
    """Parse SKILL0-style markdown into sections; errors name ``source`` and the line."""
    sections: list[MarkdownSection] = []
    current: MarkdownSection | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        where = f"{source} line {number}"
        if not line.strip():
            continue
        header = _HEADER.match(line)
        if header:
            if current is not None and not current.items:
                raise SkillValidationError(f"{where}: section '### {current.title} ###' has no numbered items")
            current = MarkdownSection(header.group("title").strip())
            sections.append(current)
            continue
        if line.lstrip().startswith("#"):
            raise SkillValidationError(
                f"{where}: malformed header {line.strip()[:80]!r}; expected '### GENERAL SKILLS ###' or '### TASK: name ###'"
            )
        if current is None and _COMMENT.match(line.strip()):
            continue  # a file-level comment (an exported curriculum's provenance)
        if current is None:
            raise SkillValidationError(f"{where}: text before the first '### ... ###' section header")
        meta = _META.match(line.strip())
        if meta:
            if not current.items:
                raise SkillValidationError(f"{where}: skill-gym metadata comment before any item")
            try:
                record = json.loads(meta.group("json"))
            except json.JSONDecodeError as error:
                raise SkillValidationError(f"{where}: the skill-gym comment is not valid JSON ({error.msg})") from None
            title, body, _ = current.items[-1]
            current.items[-1] = (title, body, record)
            continue
        item = _ITEM.match(line.strip())
        if item:
            expected = len(current.items) + 1
            if int(item.group("number")) != expected:
                raise SkillValidationError(f"{where}: item numbered {item.group('number')}, expected {expected}")
            current.items.append((item.group("title").strip(), item.group("body").strip(), None))
        elif not current.items and not current.intro:
            current.intro = line.strip()
        elif current.items and raw[:1].isspace():
            title, body, record = current.items[-1]
            current.items[-1] = (title, f"{body} {line.strip()}", record)
        else:
            raise SkillValidationError(
                f"{where}: expected a numbered item 'N. Title: text' (continuation lines must be indented), "
                f"got {line.strip()[:80]!r}"
            )
    if current is None:
        raise SkillValidationError(f"{source}: no '### ... ###' section header found")
    if not current.items:
        raise SkillValidationError(f"{source}: section '### {current.title} ###' has no numbered items")
    return sections


def render_skill_markdown(title: str, skills: list[Skill], with_metadata: bool = True) -> str:
    """One SKILL0-style section; ``with_metadata`` appends the lossless skill-gym comment per item."""
    intro = next((str(s.provenance["intro"]) for s in skills if s.provenance.get("intro")), "")
    if not intro:
        task = title.split(":", 1)[1].strip() if ":" in title else title
        intro = _DEFAULT_INTRO.get(title, f"For this {task} task, apply these specific strategies:")
    lines = [f"### {title} ###", "", intro, ""]
    for number, skill in enumerate(skills, start=1):
        name = " ".join((skill.name or f"Skill {skill.id}").replace(":", " -").split())
        strategy = " ".join(skill.strategy.split())
        description = " ".join(skill.description.split())
        when = description if re.match(r"Apply this\b", description, re.IGNORECASE) else ""
        body = f"{strategy} {when}".strip() if when else f"{strategy} Apply this when: {description}"
        lines.append(f"{number}. {name}: {body}")
        if with_metadata:
            lines.append(f"<!-- skill-gym: {json.dumps(skill.to_dict(), ensure_ascii=False)} -->")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _group_sections(skills: list[Skill]) -> dict[str, list[Skill]]:
    sections: dict[str, list[Skill]] = {}
    for skill in skills:
        title = f"TASK: {skill.task_type}" if skill.task_type else GENERAL_SECTION
        sections.setdefault(title, []).append(skill)
    return dict(sorted(sections.items(), key=lambda kv: (kv[0] != GENERAL_SECTION, kv[0])))


# -- helpers -----------------------------------------------------------------------------------


def _record(data: Any, where: str) -> Skill:
    try:
        return Skill.from_dict(data)
    except (SkillValidationError, TypeError) as error:
        raise SkillValidationError(f"{where}: {error}") from None


def _require_object(item: Any, where: str) -> None:
    if not isinstance(item, dict):
        raise SkillValidationError(f"{where}: expected an object, got {type(item).__name__}")


def _read_text(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise SkillValidationError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise SkillValidationError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise SkillValidationError(f"{path}: cannot read ({error.strerror})") from None


def _read_json(path: Path) -> Any:
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise SkillValidationError(
            f"{path}: invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
        ) from None


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text)


def _safe_filename(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "skills"
