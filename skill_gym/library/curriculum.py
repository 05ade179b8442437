"""From a skill library to SKILL0 curriculum files: the best-supported skills, deduplicated, within a budget.

This module holds :class:`CurriculumRules` (what a skill needs to be kept and how much a file may hold),
:func:`build_curriculum` (skills in, one list of skills per file out) and :func:`write_curriculum` (those lists
as a SKILL0 skill folder: ``general_skills.md``, one ``<task_type>.md`` per task type and ``skill_mapping.json``,
which :class:`~skill_gym.skill_env.static_skills.StaticSkillSet` reads as it is).

The rule, in order:

1. **Support.** A skill is a candidate when the policy selected it at least ``min_selected`` times. Candidates
   rank by the 95 % Wilson lower bound of their success rate when selected (``n_success / n_selected``), then
   by utility ``U``: a skill that won 9 of 10 selections ranks above one that won its only one.
2. **Deduplication.** In rank order, a skill whose description has cosine ≥ ``dedup_similarity`` with a kept
   skill's joins that skill's cluster instead of being kept; the cluster remembers the task types it spans.
3. **Files.** A cluster goes to ``general_skills.md`` when its skill names no task type or the cluster spans two
   task types or more; otherwise to its task type's file. When no cluster is general, the best one is (a SKILL0
   folder always has a general file).
4. **Budget.** Each file takes its clusters in rank order while it holds at most ``max_skills`` items and
   ``max_tokens`` tokens; a skill longer than the budget on its own is left out and counted.

Each file starts with a comment naming its provenance (library, rule, skill ids and their statistics);
``skill_mapping.json`` holds the same for the whole folder. A library that yields no skill at all raises
:class:`~skill_gym.library.record.SkillValidationError` with the reason: an empty curriculum is never written.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from skill_gym.config_fields import config_field
from skill_gym.files import atomic_write
from skill_gym.library.formats import GENERAL_SECTION, render_skill_markdown
from skill_gym.library.record import Skill, SkillValidationError
from skill_gym.stats import wilson

__all__ = [
    "GENERAL_FILE",
    "Curriculum",
    "CurriculumRules",
    "approx_tokens",
    "build_curriculum",
    "render_curriculum_file",
    "write_curriculum",
]

GENERAL_FILE = "general_skills"


@dataclasses.dataclass(frozen=True)
class CurriculumRules:
    """What a skill needs to enter the curriculum, and how much one file may hold (each field's help text says)."""

    min_selected: int = config_field(2, "Support: times the policy must have selected a skill for the curriculum.")
    dedup_similarity: float = config_field(0.85, "Description cosine at or above which two skills count as one.")
    max_skills: int = config_field(5, "Items per curriculum file.")
    max_tokens: int = config_field(400, "Tokens per curriculum file (its rendered text, header comment excluded).")

    def __post_init__(self) -> None:
        if self.min_selected < 0 or self.max_skills < 1 or self.max_tokens < 1:
            raise ValueError(f"min_selected must be >= 0 and max_skills, max_tokens >= 1; got {self}")
        if not 0.0 < self.dedup_similarity <= 1.0:
            raise ValueError(f"dedup_similarity must be in (0, 1], got {self.dedup_similarity}")


@dataclasses.dataclass
class Curriculum:
    """The skills kept for each file (``general_skills`` and task types), and what was left out and why."""

    files: dict[str, list[Skill]]
    left_out: dict[str, int]
    """``unsupported`` (selected too rarely), ``duplicate``, ``over_budget`` (file full or skill too long)."""
    promoted: str = ""
    """The id of the skill moved to the general file because no cluster was general ('' when none was)."""


def approx_tokens(text: str) -> int:
    """A tokenizer-free estimate: one token per four characters, rounded up (BPE on English is ~4 chars/token).

    >>> approx_tokens("twelve chars")
    3
    """
    return math.ceil(len(text) / 4)


def _rank_key(skill: Skill) -> tuple[float, float, int]:
    lower = wilson(min(skill.n_success, skill.n_selected), skill.n_selected)[0] if skill.n_selected else 0.0
    return lower, skill.utility, skill.n_selected


def build_curriculum(
    skills: Sequence[Skill],
    embed: Callable[[list[str]], np.ndarray],
    rules: CurriculumRules = CurriculumRules(),
    count_tokens: Callable[[str], int] = approx_tokens,
) -> Curriculum:
    """The curriculum's files from ``skills`` (see the module docstring for the rule).

    ``embed`` maps descriptions to vectors (a library's :meth:`~skill_gym.library.SkillLibrary.embed`);
    ``count_tokens`` measures a file's text (the policy's tokenizer, or :func:`approx_tokens`).
    """
    if not skills:
        raise SkillValidationError("the library has no skills: there is nothing to make a curriculum of")
    candidates = sorted((s for s in skills if s.n_selected >= rules.min_selected), key=_rank_key, reverse=True)
    left_out = {"unsupported": len(skills) - len(candidates), "duplicate": 0, "over_budget": 0}
    if not candidates:
        most = max(s.n_selected for s in skills)
        raise SkillValidationError(
            f"no skill of the {len(skills)} was selected at least {rules.min_selected} times (the most: {most}); "
            "lower min_selected, or train longer so the policy selects skills"
        )
    vectors = np.asarray(embed([s.description for s in candidates]), dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    kept: list[int] = []
    spans: dict[int, set[str]] = {}
    for i, skill in enumerate(candidates):
        twin = next((k for k in kept if float(vectors[i] @ vectors[k]) >= rules.dedup_similarity), None)
        if twin is None:
            kept.append(i)
            spans[i] = {skill.task_type}
        else:
            spans[twin].add(skill.task_type)
            left_out["duplicate"] += 1
    home = {i: GENERAL_FILE if "" in spans[i] or len(spans[i]) > 1 else candidates[i].task_type for i in kept}
    promoted = ""
    if GENERAL_FILE not in home.values():
        home[kept[0]] = GENERAL_FILE
        promoted = candidates[kept[0]].id
    files: dict[str, list[Skill]] = {}
    for i in kept:
        key = home[i]
        chosen = files.setdefault(key, [])
        trial = [*chosen, candidates[i]]
        if len(trial) > rules.max_skills or count_tokens(render_curriculum_file(key, trial)) > rules.max_tokens:
            left_out["over_budget"] += 1
            continue
        chosen.append(candidates[i])
    files = {key: chosen for key, chosen in files.items() if chosen}
    if GENERAL_FILE not in files:
        raise SkillValidationError(
            f"every skill for the general file is longer than the budget of {rules.max_tokens} tokens "
            f"({left_out['over_budget']} left out); raise max_tokens"
        )
    ordered = {GENERAL_FILE: files.pop(GENERAL_FILE), **dict(sorted(files.items()))}
    return Curriculum(ordered, left_out, promoted)


def render_curriculum_file(key: str, skills: list[Skill]) -> str:
    """The text of one curriculum file (``general_skills`` or a task type), as the policy will read it."""
    title = GENERAL_SECTION if key == GENERAL_FILE else f"TASK: {key}"
    return render_skill_markdown(title, skills, with_metadata=False)


def _safe_key(key: str) -> str:
    if not key or Path(key).name != key or key.startswith(".") or not key.replace("_", "").replace("-", "").isalnum():
        raise SkillValidationError(f"task type {key!r} cannot name a skill file (letters, digits, '_' and '-' only)")
    return key


def write_curriculum(curriculum: Curriculum, folder: str | Path, source: dict[str, Any] | None = None,
                     rules: CurriculumRules | None = None) -> Path:  # fmt: skip
    """Write ``curriculum`` as a SKILL0 skill folder; ``source`` (e.g. the library's path) goes in the provenance."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    provenance = {"source": source or {}, "rules": dataclasses.asdict(rules) if rules else {},
                  "left_out": curriculum.left_out, "promoted_to_general": curriculum.promoted}  # fmt: skip
    listed: dict[str, str] = {}
    for key, skills in curriculum.files.items():
        name = f"{_safe_key(key)}.md"
        stats = [{"id": s.id, "task_type": s.task_type, "utility": round(s.utility, 4), "n_selected": s.n_selected,
                  "n_success": s.n_success} for s in skills]  # fmt: skip
        header = json.dumps({**provenance, "skills": stats}, ensure_ascii=False)
        atomic_write(folder / name, f"<!-- skill-gym curriculum: {header} -->\n\n{render_curriculum_file(key, skills)}")
        listed[key] = name
    mapping = {"task_to_skill": {key: key for key in listed if key != GENERAL_FILE}, "skill_files": listed,
               "provenance": {**provenance, "files": {k: [s.id for s in v] for k, v in curriculum.files.items()}}}  # fmt: skip
    atomic_write(folder / "skill_mapping.json", json.dumps(mapping, indent=2, ensure_ascii=False) + "\n")
    return folder
