"""Where the skills in context come from: the :class:`SkillSource` protocol and its two implementations.

* :class:`LibrarySource` — Skill1: a :class:`~skill_gym.library.SkillLibrary` file (or one served at a URL:
  :class:`~skill_gym.library.RemoteSkillLibrary`), retrieved by query,
  EMA utilities updated after each episode, distilled skills admitted;
* :class:`StaticSource` — SKILL0: skill files chosen by task type, with an active subset set by a curriculum.

The phase machine (:class:`~skill_gym.skill_env.env.SkillEnv`) only talks to this protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from skill_gym.assets import cache_dir
from skill_gym.library import Admission, Library, RemoteSkillLibrary, Retrieved, Skill, SkillLibrary, is_library_url
from skill_gym.skill_env.config import SkillConfig
from skill_gym.skill_env.static_skills import StaticSkillSet, starter_skills_dir

__all__ = ["LibrarySource", "SkillSource", "StaticSource", "make_source"]

_LIBRARY_HEADER = (
    "Skills from similar past tasks (they may be outdated: follow them only where they fit what you observe):\n"
)
_NO_SKILL = "No relevant skill in the library for this task."


class SkillSource(Protocol):
    """What the skill phases need from a store of skills."""

    def candidates(self, query: str) -> list[Retrieved]:
        """Skills that may fit ``query``, best first (empty for sources chosen by rule)."""
        ...

    def context(self, task_type: str, chosen: Sequence[Retrieved]) -> tuple[str, list[str]]:
        """The skill text put in context for a task, and the keys (skill ids or file names) it shows."""
        ...

    def record_outcome(self, retrieved: Sequence[Retrieved], chosen: Retrieved | None, success: bool) -> None:
        """Learn from an episode's outcome (utilities, selection counts)."""
        ...

    def admit(self, skill: Skill) -> Admission:
        """Offer a distilled skill."""
        ...

    def close(self) -> None: ...


class LibrarySource:
    """A skill library file (opened on first use; several processes of one host may share it), or a library
    service's URL (``http(s)://``; env workers on any machine share it)."""

    def __init__(self, config: SkillConfig) -> None:
        self.config = config
        self._library: Library | None = None

    @property
    def library(self) -> Library:
        cfg = self.config
        if self._library is None and is_library_url(cfg.library):
            self._library = RemoteSkillLibrary(str(cfg.library), token=cfg.library_token)
        if self._library is None:
            path = cfg.library or cache_dir() / "libraries" / f"{cfg.env_name or 'default'}.sqlite"
            self._library = SkillLibrary(
                Path(path), capacity=cfg.capacity, merge_threshold=cfg.merge_threshold, read_only=cfg.read_only,
                merge_rule=cfg.merge_rule, merge_alpha=cfg.alpha, eviction=cfg.eviction,
            )  # fmt: skip
        return self._library

    def candidates(self, query: str) -> list[Retrieved]:
        cfg = self.config
        return self.library.retrieve(
            query,
            k=cfg.top_k,
            min_similarity=cfg.min_similarity,
            env=cfg.env_name or None,
            relevance_weight=cfg.relevance_weight,
            ucb=cfg.ucb and not cfg.read_only,
            ucb_c=cfg.ucb_c,
            ucb_log_plus_one=cfg.ucb_log_plus_one,
        )

    def context(self, task_type: str, chosen: Sequence[Retrieved]) -> tuple[str, list[str]]:
        if not chosen:
            return _NO_SKILL, []
        lines = [f"[{n}] {c.skill.render()}" for n, c in enumerate(chosen, start=1)]
        return _LIBRARY_HEADER + "\n".join(lines), [c.skill.id for c in chosen]

    def record_outcome(self, retrieved: Sequence[Retrieved], chosen: Retrieved | None, success: bool) -> None:
        if self.config.read_only or not retrieved:
            return
        self.library.update_utilities([c.skill.id for c in retrieved], 1.0 if success else 0.0, self.config.alpha)
        if chosen is not None:
            self.library.record_selection(chosen.skill.id, success)

    def admit(self, skill: Skill) -> Admission:
        return self.library.admit(skill)

    def close(self) -> None:
        if self._library is not None:
            self._library.close()
            self._library = None


class StaticSource:
    """SKILL0's skill files: the general file and the task type's file, when active.

    With ``static_distill`` (and not ``read_only``) it also holds a :class:`LibrarySource`: distilled skills are
    admitted there, and the library skills of the files shown in an episode (:attr:`StaticSkillSet.skill_ids`)
    count that episode as a selection, with its outcome, and move their utilities by EMA.
    """

    def __init__(self, config: SkillConfig) -> None:
        self.config = config
        self.skills = StaticSkillSet(config.static_dir or starter_skills_dir(config.env_name))
        self.writer = LibrarySource(config) if config.static_distill and not config.read_only else None
        self._shown: list[str] = []

    @property
    def library(self) -> Library:
        """The library distilled skills go to (``static_distill``)."""
        if self.writer is None:
            raise AttributeError("these static skill files write no library (static_distill is off or read_only)")
        return self.writer.library

    def load(self, folder: str | Path) -> None:
        """Show the skill files of ``folder`` from now on; the active files that it still holds stay active, and
        its files new to this set become active."""
        fresh = StaticSkillSet(folder)
        known = set(self.skills.files)
        fresh.set_active(
            [k for k in self.skills.active if k in fresh.files] + [k for k in fresh.files if k not in known]
        )
        self.skills = fresh

    def candidates(self, query: str) -> list[Retrieved]:
        return []

    def context(self, task_type: str, chosen: Sequence[Retrieved]) -> tuple[str, list[str]]:
        keys = self.skills.keys_for(task_type)
        self._shown = [i for key in keys for i in self.skills.skill_ids.get(key, [])]
        return self.skills.render(task_type), keys

    def record_outcome(self, retrieved: Sequence[Retrieved], chosen: Retrieved | None, success: bool) -> None:
        if self.writer is None or not self._shown:
            return
        library = self.writer.library  # a skill merged or evicted since the export is no longer counted
        library.update_utilities(self._shown, 1.0 if success else 0.0, self.config.alpha)
        for skill_id in dict.fromkeys(self._shown):
            library.record_selection(skill_id, success)

    def admit(self, skill: Skill) -> Admission:
        if self.writer is None:
            return Admission("rejected", None, "static skill files are read-only")
        return self.writer.admit(skill)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def make_source(config: SkillConfig) -> LibrarySource | StaticSource:
    """The source ``config.skills`` names."""
    return StaticSource(config) if config.skills == "static" else LibrarySource(config)
