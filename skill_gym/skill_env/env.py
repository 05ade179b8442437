"""The skill-library extension of a text environment: the ``select → rerank → act → distill`` phase machine.

This module holds :class:`SkillEnv` (the phases around a base env's episode) and :func:`make_skill_env`,
the entry point of the ``Skill*`` ids. Its switches are :class:`~skill_gym.skill_env.config.SkillConfig`,
where skills come from is a :class:`~skill_gym.skill_env.sources.SkillSource`, and what it reports is
:class:`~skill_gym.skill_env.info.SkillInfo`.
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from typing import Any

import gymnasium as gym

from skill_gym.envs.instructions import Instructions
from skill_gym.envs.text_env import TextEnv, coerce_action, sanitize_text
from skill_gym.library import Admission, Library, Retrieved, Skill
from skill_gym.skill_env.config import SkillConfig
from skill_gym.skill_env.demonstrations import SELECT_OBSERVATION, distill_observation, phase_demonstrations
from skill_gym.skill_env.info import SkillInfo, admission_info, copy_skill_info, new_skill_info
from skill_gym.skill_env.parsing import (
    LESSONS_FORMAT,
    SKILL_FORMAT,
    parse_query,
    parse_rank,
    parse_skill,
    phase_formats,
)
from skill_gym.skill_env.ranking import ndcg
from skill_gym.skill_env.sources import StaticSource, make_source
from skill_gym.skill_env.static_skills import StaticSkillSet

__all__ = ["PHASES", "SkillEnv", "make_skill_env"]

PHASES = ("select", "rerank", "act", "distill")
_CONTRAST_MEMORY = 2048
_TRAJECTORY_CHARS = 6000


class SkillEnv(TextEnv):
    """A base text env with the skill phases around each episode (Skill1; SKILL0 with static skills).

    ## Description
    One text action drives four phases, shown in ``obs["phase"]``:

    1. ``select`` — the agent writes a retrieval query (``<query>...</query>``); the library returns the
       top-K skills by cosine between the query and skill descriptions (frozen all-MiniLM-L6-v2);
    2. ``rerank`` — ``obs["candidates"]`` lists them numbered; the agent answers ``<rank>2,1,3</rank>``;
       the top one (or all, ``inject="all"``) goes into ``obs["skills"]``. An unparseable ranking keeps
       the similarity order and is flagged. With fewer than 2 candidates there is no rerank turn unless
       ``rerank_always`` (Skill1's released code asks anyway, with nothing to rank);
    3. ``act`` — the base env's episode, with the chosen skill(s) in ``obs["skills"]``;
    4. ``distill`` — after the base episode the agent sees the outcome and its trajectory (and, with
       ``contrast``, the latest attempt at the same task with the opposite outcome, from this env or,
       ``contrast_scope="library"``, from any env sharing the library) and writes a skill as JSON
       (``distill_format``); it is validated and admitted (by default only after a success), merged
       with a near-duplicate, or rejected.

    ``selection="similarity"`` skips ``select``/``rerank`` (the task text is the query, top-1 injected),
    ``selection="none"`` gives no skill, ``distillation="none"`` skips ``distill``; ``skills="static"``
    (SKILL0) shows the skill files of the task type instead of retrieving,
    :meth:`set_active_skills` sets which files are active and :meth:`load_skill_files` swaps the folder; with
    ``static_distill`` the ``distill`` phase still runs and writes into ``library`` (Skill1 → SKILL0's one-stage
    option).

    ## Action Space
    A string, in every phase. The answer format of each phase is in :attr:`instructions`.

    ## Observation Space
    A ``Dict`` of ``Text`` spaces: the base env's fields plus ``phase``, ``skills`` (the text of the
    skills in context) and ``candidates`` (numbered, during ``rerank``). ``admissible_actions`` is empty
    outside ``act``.

    ## Rewards
    The base env's reward in ``act``; 0 in the other phases. Learners read the per-phase signals from
    ``info["skill"]``: NDCG of the ranking against utilities, Û, and the distillation reward ``r − Û``.

    ## Starting State
    The base env's reset, then ``select`` (``act`` when selection is off or by similarity).

    ## Episode End
    ``terminated`` after ``distill`` (or with the base episode when there is no distill phase);
    ``truncated`` when the base episode truncates and there is no distill phase. The step limit is the
    base env's ``max_steps`` argument, not ``max_episode_steps`` of the registry: a ``TimeLimit``
    wrapper would count the skill turns against the base budget and cut off ``distill`` after a
    truncated base episode. Stepping after the end answers "the episode is over" with
    ``action_valid=False`` and changes nothing (no second utility update).

    ## Info
    The base env's ``info`` plus ``info["skill"]``: a :class:`~skill_gym.skill_env.info.SkillInfo`.

    ## Arguments
    Every field of :class:`~skill_gym.skill_env.config.SkillConfig` (``gym.make`` keyword arguments);
    the others go to the base env.

    ## Version History
    * v0: initial version (Skill1 phases, SKILL0 static skills).

    Example:
        >>> import gymnasium as gym, skill_gym  # doctest: +SKIP
        >>> env = gym.make("SkillAlfworld-v0", selection="policy", library="/tmp/lib.sqlite")  # doctest: +SKIP
        >>> obs, info = env.reset(seed=0)  # doctest: +SKIP
        >>> obs["phase"]  # doctest: +SKIP
        'select'
    """

    def __init__(self, base: TextEnv, config: SkillConfig | None = None, render_mode: str | None = None) -> None:
        self.base = base
        self.config = config or SkillConfig()
        self.observation_keys = (*base.observation_space.keys(), "phase", "skills", "candidates")
        super().__init__(render_mode=render_mode)
        self.source = make_source(self.config)
        self._contrast: OrderedDict[tuple[str, bool], str] = OrderedDict()
        self._episode = 0
        self._phase = "act"

    @property
    def instructions(self) -> Instructions:
        """The base env's instructions plus the answer formats of ``select``, ``rerank`` and ``distill`` (and, with
        ``demonstrations``, a worked example of each)."""
        instructions = self.base.instructions.with_phases(**phase_formats(self.config.distill_format))
        if self.config.demonstrations:
            instructions = instructions.with_demonstrations(**phase_demonstrations(self.config.distill_format))
        return instructions

    @property
    def task_ids(self) -> list[str]:
        """The base env's task ids."""
        return list(getattr(self.base, "task_ids", []))

    @property
    def library(self) -> Library:
        """The skill library (``skills="library"``, or the one static skill files distill into with
        ``static_distill``; opened on first use, shared through its file or, with ``library="http://..."``, a
        library service)."""
        if isinstance(self.source, StaticSource) and self.source.writer is None:
            raise AttributeError("this skill env shows static skill files; it has no library")
        return self.source.library

    @property
    def static_skills(self) -> StaticSkillSet:
        """The static skill set (``skills="static"``)."""
        if not isinstance(self.source, StaticSource):
            raise AttributeError("this skill env retrieves from a library; it has no static skill files")
        return self.source.skills

    def set_active_skills(self, keys: list[str]) -> None:
        """SKILL0 curriculum hook: choose the active skill files (``vector_env.call`` reaches it)."""
        self.static_skills.set_active(keys)

    @property
    def contrast_memory(self) -> list[list[Any]]:
        """This env's attempts kept for ``contrast`` (``contrast_scope="env"``), oldest first, as JSON-able
        ``[task_id, won, trajectory]`` rows: a trainer's checkpoint stores them, so a resumed run shows the same
        earlier attempts. Setting it replaces them (rows beyond the memory's size keep the newest)."""
        return [[task_id, won, text] for (task_id, won), text in self._contrast.items()]

    @contrast_memory.setter
    def contrast_memory(self, rows: list[list[Any]]) -> None:
        memory: OrderedDict[tuple[str, bool], str] = OrderedDict()
        for row in list(rows)[-_CONTRAST_MEMORY:]:
            if not (isinstance(row, list | tuple) and len(row) == 3 and isinstance(row[0], str)
                    and isinstance(row[1], bool) and isinstance(row[2], str)):  # fmt: skip
                raise ValueError(f"a contrast memory row is [task_id, won, trajectory], got {str(row)[:100]}")
            memory[(row[0], row[1])] = row[2][-_TRAJECTORY_CHARS - 4 :]
        self._contrast = memory

    def load_skill_files(self, folder: str) -> None:
        """Show the skill files of ``folder`` from the next episode on (a re-exported curriculum); see
        :meth:`StaticSource.load` for which files are active."""
        if not isinstance(self.source, StaticSource):
            raise AttributeError("this skill env retrieves from a library; it has no static skill files")
        self.source.load(folder)

    def close(self) -> None:
        self.source.close()
        self.base.close()
        super().close()

    # -- episode -------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = self.take_pending_options(options)
        self._policy_step = options.pop("policy_step", None)
        base_obs, base_info = self.base.reset(seed=seed, options=options or None)
        self._episode += 1
        self._base_obs, self._base_info = base_obs, dict(base_info)
        self._trajectory: list[tuple[str, str]] = []
        self._candidates: list[Retrieved] = []
        self._chosen: list[Retrieved] = []
        self._skill_text = ""
        self._track: SkillInfo = new_skill_info(f"{self.config.skills}/{self.config.selection}")
        cfg = self.config
        if cfg.skills == "static":
            self._show_context()
        elif cfg.selection == "similarity":
            self._retrieve(self._task_text())
            self._choose(list(range(len(self._candidates))))
        elif cfg.selection == "policy":
            self._phase = "select"
            return self._emit(None, SELECT_OBSERVATION), self._info(True)
        return self._enter_act(note="")

    def step(self, action: str):
        handlers = {
            "select": self._step_select,
            "rerank": self._step_rerank,
            "act": self._step_act,
            "distill": self._step_distill,
        }
        if self._phase not in handlers:  # stepped after the episode ended
            obs = self._emit(action, "The episode is over; call reset() to start a new one.")
            return obs, 0.0, True, False, self._info(action_valid=False)
        return handlers[self._phase](action)

    # -- phases --------------------------------------------------------------------------------

    def _step_select(self, action: object):
        query, problem = parse_query(action)
        self._track["query_valid"] = query is not None
        self._retrieve(query if query is not None else self._task_text())
        if query is not None and not self._candidates and self.config.query_fallback == "task":
            self._retrieve(self._task_text())
        note = f"Invalid query ({problem}); the task text was used instead.\n" if problem else ""
        if self.config.rerank and (len(self._candidates) >= 2 or self.config.rerank_always):
            self._phase = "rerank"
            n = len(self._candidates)
            if n >= 2:
                text = f"{note}The library returned {n} candidate skills (in obs['candidates'])."
            else:
                text = f"{note}The library returned {n} candidate skill{'' if n == 1 else 's'}: nothing to rank."
            return self._emit(action, text), 0.0, False, False, self._info(action_valid=not problem)
        self._choose(list(range(len(self._candidates))))
        obs, info = self._enter_act(note=note, action=action)
        info["action_valid"] = not problem
        return obs, 0.0, False, False, info

    def _step_rerank(self, action: object):
        if len(self._candidates) < 2:  # rerank_always: a turn with nothing to rank (NDCG 0, as released)
            self._choose(list(range(len(self._candidates))))
            obs, info = self._enter_act(note="", action=action)
            return obs, 0.0, False, False, info
        order, problem = parse_rank(action, len(self._candidates))
        self._track["rank_valid"] = order is not None
        if order is None:
            order = list(range(len(self._candidates)))  # similarity order
        self._track["rank"] = [self._candidates[i].skill.id for i in order]
        self._track["ndcg"] = ndcg(order, [c.skill.utility for c in self._candidates])
        self._track["reranked"] = True
        self._choose(order, ranking_valid=not problem)
        note = f"Invalid ranking ({problem}); the similarity order was used instead.\n" if problem else ""
        obs, info = self._enter_act(note=note, action=action)
        info["action_valid"] = not problem
        return obs, 0.0, False, False, info

    def _step_act(self, action: object):
        base_obs, reward, terminated, truncated, base_info = self.base.step(action)
        self._base_obs, self._base_info = base_obs, dict(base_info)
        clean, _ = coerce_action(action)
        self._trajectory.append((sanitize_text(clean or repr(action)[:200], 300), base_obs["observation"]))
        if not (terminated or truncated):
            return self._emit(action, base_obs["observation"]), reward, False, False, self._info(None)
        success = bool(base_info.get("won", False))
        self._finish_base_episode(success)
        if self.config.distillation == "policy" and self._writes_library():
            self._phase = "distill"
            obs = self._emit(action, self._distill_text(success))
            return obs, reward, False, False, self._info(None)
        obs = self._emit(action, base_obs["observation"])
        info = self._info(None)
        self._phase = "done"  # after the emit: the last observation still shows the act phase
        return obs, reward, terminated, truncated, info

    def _step_distill(self, action: object):
        success = bool(self._base_info.get("won", False))
        lessons = self.config.distill_format == "lessons"
        parsed, problem = parse_skill(action, default_description=self._base_obs.get("task", "") if lessons else "")
        skill = None
        if parsed is not None:
            skill, problem = self._skill_from(parsed)
        if skill is None:
            admission = Admission("rejected", None, f"invalid skill: {problem}")
        elif self.config.admit_on == "success" and not success:
            admission = Admission("rejected", None, "not admitted: the episode failed")
        else:
            admission = self.source.admit(skill)
        self._track["admission"] = admission_info(admission)
        self._phase = "done"
        text = f"Skill {admission.status}" + (f": {admission.reason}" if admission.reason else ".")
        if problem:
            text = f"Invalid skill ({problem}). Expected JSON like {LESSONS_FORMAT if lessons else SKILL_FORMAT}."
        obs = self._emit(action, text)
        return obs, 0.0, True, False, self._info(action_valid=skill is not None)

    # -- helpers -------------------------------------------------------------------------------

    def _task_type(self) -> str:
        return str(self._base_info.get("task_type", ""))

    def _task_text(self) -> str:
        return self._base_obs["task"] or self._base_obs["observation"]

    def _retrieve(self, query: str) -> None:
        self._candidates = self.source.candidates(query)
        self._track.update(
            query=query,
            retrieved_ids=[c.skill.id for c in self._candidates],
            similarities=[c.similarity for c in self._candidates],
            scores=[c.score for c in self._candidates],
            utilities=[c.skill.utility for c in self._candidates],
            u_hat=max((c.skill.utility for c in self._candidates), default=0.0),
        )

    def _choose(self, order: list[int], ranking_valid: bool = True) -> None:
        ranked = [self._candidates[i] for i in order]
        inject = self.config.inject
        if inject == "top1_if_ranked":
            inject = "top1" if ranking_valid else "all"
        self._chosen = ranked[:1] if inject == "top1" else ranked
        self._track["chosen_id"] = self._chosen[0].skill.id if self._chosen else ""
        self._show_context()

    def _show_context(self) -> None:
        self._skill_text, keys = self.source.context(self._task_type(), self._chosen)
        if self.config.skills == "static":
            self._track["static_files"] = keys

    def _enter_act(self, note: str, action: object = None):
        self._phase = "act"
        text = note + self._base_obs["observation"]
        obs = self._emit(action, text) if action is not None else self._emit(None, text)
        return obs, self._info(action_valid=True)

    def _finish_base_episode(self, success: bool) -> None:
        """EMA utilities for every retrieved skill, selection counters, the distill reward."""
        self._track["distill_reward"] = (1.0 if success else 0.0) - float(self._track["u_hat"])
        self._track["base_done"] = True
        self.source.record_outcome(self._candidates, self._chosen[0] if self._chosen else None, success)
        if self._shares_attempts():
            self.library.record_attempt(self._task_text(), success, self._trajectory_text())
            return
        task_id = str(self._base_info.get("task_id", ""))
        self._contrast[(task_id, success)] = self._trajectory_text()
        self._contrast.move_to_end((task_id, success))
        while len(self._contrast) > _CONTRAST_MEMORY:
            self._contrast.popitem(last=False)

    def _writes_library(self) -> bool:
        """Whether this env writes a library: Skill1's, or static files' with ``static_distill``."""
        cfg = self.config
        return not cfg.read_only and (cfg.skills == "library" or cfg.static_distill)

    def _shares_attempts(self) -> bool:
        cfg = self.config
        shared = cfg.contrast and cfg.contrast_scope == "library" and cfg.distillation == "policy"
        return shared and self._writes_library()

    def _earlier_attempt(self, success: bool) -> str | None:
        """The latest attempt at this task with the opposite outcome (``None`` without ``contrast``)."""
        if not self.config.contrast:
            return None
        if self._shares_attempts():
            return self.library.latest_attempt(self._task_text(), not success)
        return self._contrast.get((str(self._base_info.get("task_id", "")), not success))

    def _skill_from(self, parsed: Any) -> tuple[Skill | None, str]:
        """The skill record of a parsed answer, or ``None`` and why it is not a valid skill."""
        try:
            skill = Skill(
                description=parsed.description,
                strategy=parsed.strategy,
                env=self.config.env_name,
                task_type=self._task_type(),
                source="distilled",
                provenance={
                    "task_id": str(self._base_info.get("task_id", "")),
                    "task": self._base_obs.get("task", ""),
                    "episode": self._episode,
                    "policy_step": self._policy_step,
                    "time": time.time(),
                    "won": bool(self._base_info.get("won", False)),
                },
            )
        except ValueError as error:  # SkillValidationError: size limits, NUL, lone surrogates
            return None, str(error)
        return skill, ""

    def _trajectory_text(self) -> str:
        lines = [f"{n}. > {a}\n{o}" for n, (a, o) in enumerate(self._trajectory, start=1)]
        text = "\n".join(lines)
        return text if len(text) <= _TRAJECTORY_CHARS else "...\n" + text[-_TRAJECTORY_CHARS:]

    def _candidates_text(self) -> str:
        return "\n".join(f"[{n}] {c.skill.render()}" for n, c in enumerate(self._candidates, start=1))

    def _distill_text(self, success: bool) -> str:
        return distill_observation(
            self._base_obs["task"], success, self._trajectory_text(), self._earlier_attempt(success)
        )

    def _emit(self, action: object, text: str) -> dict[str, str]:
        fields = dict(self._base_obs)
        fields.update(observation=text, phase=self._phase, skills=self._skill_text)
        fields["candidates"] = self._candidates_text() if self._phase == "rerank" else ""
        if self._phase in ("select", "rerank", "distill", "done"):
            fields["admissible_actions"] = ""
        return self._observe(None if action is None else (coerce_action(action)[0] or repr(action)[:80]), **fields)

    def _info(self, action_valid: bool | None) -> dict[str, Any]:
        info = dict(self._base_info)
        if action_valid is not None:
            info["action_valid"] = action_valid
        self._track["phase"] = self._phase
        info["skill"] = copy_skill_info(self._track)
        return info


def make_skill_env(base_id: str, env_name: str = "", render_mode: str | None = None, **kwargs: Any) -> SkillEnv:
    """Entry point of the ``Skill*`` ids: splits ``kwargs`` into :class:`SkillConfig` and base-env arguments."""
    names = {f.name for f in dataclasses.fields(SkillConfig)}
    skill_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
    skill_kwargs.setdefault("env_name", env_name)
    spec = gym.spec(base_id)
    creator = gym.envs.registration.load_env_creator(spec.entry_point)
    base = creator(**{**spec.kwargs, **kwargs, "render_mode": render_mode})
    return SkillEnv(base, SkillConfig(**skill_kwargs), render_mode=render_mode)
