"""The skill-library extension of a text environment: ``select → rerank → act → distill``.

This module holds :class:`SkillConfig` (every switch, Skill1's values as defaults) and
:class:`SkillEnv`, which runs a base text env inside four phases driven by the same text
action and shown in ``obs["phase"]``:

1. ``select`` — the agent writes a retrieval query (``<query>...</query>``); the library returns
   the top-K skills by cosine between the query and skill descriptions;
2. ``rerank`` — ``obs["candidates"]`` lists them numbered; the agent answers ``<rank>2,1,3</rank>``;
   the top one (or all, ``inject="all"``) goes into ``obs["skills"]``;
3. ``act`` — the base episode, with the chosen skill(s) in ``obs["skills"]``;
4. ``distill`` — after the base episode, the agent sees the outcome and its trajectory and writes a
   skill as JSON; it is validated and admitted (by default only after a success).

``SkillEnv`` is a :class:`gymnasium.Env` that *contains* its base env (rather than a
``gymnasium.Wrapper``), so ``check_env`` and ``env.unwrapped`` see one environment.
``info["skill"]`` carries what a learner needs for credit assignment (see :meth:`SkillEnv.step`).
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym

from skill_gym.assets import cache_dir
from skill_gym.envs.text_env import TextEnv, coerce_action, sanitize_text
from skill_gym.library import Skill, SkillLibrary
from skill_gym.library.library import Retrieved
from skill_gym.skill_env.parsing import QUERY_FORMAT, RANK_FORMAT, SKILL_FORMAT, parse_query, parse_rank, parse_skill
from skill_gym.skill_env.ranking import ndcg
from skill_gym.skill_env.static_skills import StaticSkillSet, starter_skills_dir

__all__ = ["PHASES", "SkillConfig", "SkillEnv"]

PHASES = ("select", "rerank", "act", "distill")
_CONTRAST_MEMORY = 2048
_TRAJECTORY_CHARS = 6000


@dataclasses.dataclass
class SkillConfig:
    """Switches of the skill extension. Defaults follow Skill1 (REFERENCE.md)."""

    env_name: str = ""
    """Env family recorded on skills and used to filter retrieval (e.g. ``"alfworld"``)."""
    skills: Literal["library", "static"] = "library"
    """``library``: retrieve from a SkillLibrary; ``static``: SKILL0 skill files by task type."""
    selection: Literal["policy", "similarity", "none"] = "policy"
    """``policy``: the agent queries and reranks; ``similarity``: task text as query, top-1; ``none``: no skill."""
    distillation: Literal["policy", "none"] = "policy"
    """``policy``: the agent writes a skill after each episode; ``none``: no distill phase."""
    library: str | None = None
    """Library file (default ``<cache>/libraries/<env_name>.sqlite``); shared by vector-env workers."""
    read_only: bool = False
    """Never write to the library (evaluation: frozen library, no utility updates)."""
    top_k: int = 3
    min_similarity: float = 0.4
    relevance_weight: float = 1.0
    """``w`` in ``w·rel + (1−w)·(U [+ UCB bonus])``; the paper uses 0.6, its scripts 1.0."""
    ucb: bool = False
    ucb_c: float = 1.0
    rerank: bool = True
    """With ``selection="policy"``, ask the agent to rank the candidates (skipped for < 2 candidates)."""
    inject: Literal["top1", "all"] = "top1"
    alpha: float = 0.05
    """EMA rate of the utilities of every retrieved skill after each episode."""
    admit_on: Literal["success", "always"] = "success"
    contrast: bool = True
    """In ``distill``, also show this env's latest attempt at the same task with the opposite outcome."""
    capacity: int = 5000
    merge_threshold: float = 0.85
    static_dir: str | None = None
    """Skill-file folder for ``skills="static"`` (default: the starter set shipped for ``env_name``)."""

    def __post_init__(self) -> None:
        choices = {
            "skills": ("library", "static"),
            "selection": ("policy", "similarity", "none"),
            "distillation": ("policy", "none"),
            "inject": ("top1", "all"),
            "admit_on": ("success", "always"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")


class SkillEnv(TextEnv):
    """A base text env with the skill phases around each episode.

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
        self._library: SkillLibrary | None = None
        self._static: StaticSkillSet | None = None
        self._contrast: OrderedDict[tuple[str, bool], str] = OrderedDict()
        self._episode = 0
        self._phase = "act"

    @property
    def task_ids(self) -> list[str]:
        """The base env's task ids."""
        return list(getattr(self.base, "task_ids", []))

    # -- resources -----------------------------------------------------------------------------

    @property
    def library(self) -> SkillLibrary:
        """The skill library (opened on first use; shared through its file)."""
        if self._library is None:
            path = self.config.library or cache_dir() / "libraries" / f"{self.config.env_name or 'default'}.sqlite"
            self._library = SkillLibrary(
                Path(path),
                capacity=self.config.capacity,
                merge_threshold=self.config.merge_threshold,
                read_only=self.config.read_only,
            )
        return self._library

    @property
    def static_skills(self) -> StaticSkillSet:
        """The static skill set (``skills="static"``)."""
        if self._static is None:
            folder = self.config.static_dir or starter_skills_dir(self.config.env_name)
            self._static = StaticSkillSet(folder)
        return self._static

    def set_active_skills(self, keys: list[str]) -> None:
        """SKILL0 curriculum hook: choose the active skill files (``vector_env.call`` reaches it)."""
        self.static_skills.set_active(keys)

    def close(self) -> None:
        if self._library is not None:
            self._library.close()
            self._library = None
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
        self._reward = 0.0
        self._candidates: list[Retrieved] = []
        self._chosen: list[Retrieved] = []
        self._skill_text = ""
        self._distill_attempted = False
        self._track: dict[str, Any] = {  # type-stable values, so vector envs can batch them
            "phase": "",
            "query": "",
            "query_valid": True,
            "retrieved_ids": [],
            "similarities": [],
            "scores": [],
            "utilities": [],
            "rank": [],
            "rank_valid": True,
            "reranked": False,
            "ndcg": 0.0,
            "chosen_id": "",
            "u_hat": 0.0,
            "base_done": False,
            "distill_reward": 0.0,
            "admission": {"status": "", "skill_id": "", "reason": "", "evicted": []},
            "static_files": [],
        }
        cfg = self.config
        if cfg.skills == "static":
            self._track["static_files"] = self.static_skills.keys_for(self._task_type())
            self._skill_text = self.static_skills.render(self._task_type())
            return self._enter_act(note="")
        if cfg.selection == "none":
            return self._enter_act(note="")
        if cfg.selection == "similarity":
            self._retrieve(self._base_obs["task"] or self._base_obs["observation"])
            self._choose(list(range(len(self._candidates))))
            return self._enter_act(note="")
        self._phase = "select"
        return self._emit(None, self._select_prompt()), self._info(action_valid=True)

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
        if query is None:
            query = self._base_obs["task"] or self._base_obs["observation"]
        self._track["query"] = query
        self._retrieve(query)
        note = f"Invalid query ({problem}); the task text was used instead.\n" if problem else ""
        if self.config.rerank and len(self._candidates) >= 2:
            self._phase = "rerank"
            obs = self._emit(action, note + self._rerank_prompt())
            return obs, 0.0, False, False, self._info(action_valid=not problem)
        self._choose(list(range(len(self._candidates))))
        obs, info = self._enter_act(note=note, action=action)
        info["action_valid"] = not problem
        return obs, 0.0, False, False, info

    def _step_rerank(self, action: object):
        order, problem = parse_rank(action, len(self._candidates))
        self._track["rank_valid"] = order is not None
        if order is None:
            order = list(range(len(self._candidates)))  # similarity order
        self._track["rank"] = [self._candidates[i].skill.id for i in order]
        self._track["ndcg"] = ndcg(order, [c.skill.utility for c in self._candidates])
        self._track["reranked"] = True
        self._choose(order)
        note = f"Invalid ranking ({problem}); the similarity order was used instead.\n" if problem else ""
        obs, info = self._enter_act(note=note, action=action)
        info["action_valid"] = not problem
        return obs, 0.0, False, False, info

    def _step_act(self, action: object):
        base_obs, reward, terminated, truncated, base_info = self.base.step(action)
        self._base_obs, self._base_info = base_obs, dict(base_info)
        self._reward += float(reward)
        clean, _ = coerce_action(action)
        self._trajectory.append((sanitize_text(clean or repr(action)[:200], 300), base_obs["observation"]))
        if not (terminated or truncated):
            return self._emit(action, base_obs["observation"]), reward, False, False, self._info(None)
        success = bool(base_info.get("won", False))
        self._finish_base_episode(success)
        if self.config.distillation == "policy" and self.config.skills == "library" and not self.config.read_only:
            self._phase = "distill"
            obs = self._emit(action, self._distill_prompt(success))
            return obs, reward, False, False, self._info(None)
        return self._emit(action, base_obs["observation"]), reward, terminated, truncated, self._info(None)

    def _step_distill(self, action: object):
        success = bool(self._base_info.get("won", False))
        parsed, problem = parse_skill(action)
        admission: dict[str, Any]
        if parsed is None:
            admission = {"status": "rejected", "skill_id": "", "reason": f"invalid skill: {problem}", "evicted": []}
        elif self.config.admit_on == "success" and not success:
            admission = {
                "status": "rejected",
                "skill_id": "",
                "reason": "not admitted: the episode failed",
                "evicted": [],
            }
        else:
            skill = self._skill_from(parsed)
            result = self.library.admit(skill) if skill is not None else None
            if result is None:
                admission = {"status": "rejected", "skill_id": "", "reason": "invalid skill: over the size limits",
                             "evicted": []}  # fmt: skip
            else:
                admission = {"status": result.status, "skill_id": result.skill_id or "", "reason": result.reason,
                             "evicted": list(result.evicted)}  # fmt: skip
        self._track["admission"] = admission
        self._phase = "done"
        text = f"Skill {admission['status']}" + (f": {admission['reason']}" if admission.get("reason") else ".")
        if problem:
            text = f"Invalid skill ({problem}). Expected JSON like {SKILL_FORMAT}."
        obs = self._emit(action, text)
        return obs, 0.0, True, False, self._info(action_valid=parsed is not None)

    # -- helpers -------------------------------------------------------------------------------

    def _task_type(self) -> str:
        return str(self._base_info.get("task_type", ""))

    def _retrieve(self, query: str) -> None:
        cfg = self.config
        self._candidates = self.library.retrieve(
            query,
            k=cfg.top_k,
            min_similarity=cfg.min_similarity,
            env=cfg.env_name or None,
            relevance_weight=cfg.relevance_weight,
            ucb=cfg.ucb and not cfg.read_only,
            ucb_c=cfg.ucb_c,
        )
        self._track.update(
            retrieved_ids=[c.skill.id for c in self._candidates],
            similarities=[c.similarity for c in self._candidates],
            scores=[c.score for c in self._candidates],
            utilities=[c.skill.utility for c in self._candidates],
            u_hat=max((c.skill.utility for c in self._candidates), default=0.0),
        )

    def _choose(self, order: list[int]) -> None:
        ranked = [self._candidates[i] for i in order]
        self._chosen = ranked[:1] if self.config.inject == "top1" else ranked
        self._track["chosen_id"] = self._chosen[0].skill.id if self._chosen else ""
        if self._chosen:
            lines = [f"[{n}] {c.skill.render()}" for n, c in enumerate(self._chosen, start=1)]
            self._skill_text = (
                "Skills from similar past tasks (they may be outdated: follow them only where they fit what you"
                " observe):\n" + "\n".join(lines)
            )
        else:
            self._skill_text = "No relevant skill in the library for this task."

    def _enter_act(self, note: str, action: object = None):
        self._phase = "act"
        text = note + self._base_obs["observation"]
        obs = self._emit(action, text) if action is not None else self._emit(None, text)
        return obs, self._info(action_valid=True)

    def _finish_base_episode(self, success: bool) -> None:
        """EMA utilities for every retrieved skill, selection counters, the distill reward."""
        reward = 1.0 if success else 0.0
        self._track["distill_reward"] = reward - float(self._track["u_hat"])
        self._track["base_done"] = True
        if self.config.skills == "library" and self._candidates and not self.config.read_only:
            self.library.update_utilities([c.skill.id for c in self._candidates], reward, self.config.alpha)
            if self._chosen:
                self.library.record_selection(self._chosen[0].skill.id, success)
        task_id = str(self._base_info.get("task_id", ""))
        self._contrast[(task_id, success)] = self._trajectory_text()
        self._contrast.move_to_end((task_id, success))
        while len(self._contrast) > _CONTRAST_MEMORY:
            self._contrast.popitem(last=False)

    def _skill_from(self, parsed: Any) -> Skill | None:
        try:
            return Skill(
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
        except ValueError:
            return None

    def _trajectory_text(self) -> str:
        lines = [f"{n}. > {a}\n{o}" for n, (a, o) in enumerate(self._trajectory, start=1)]
        text = "\n".join(lines)
        return text if len(text) <= _TRAJECTORY_CHARS else "...\n" + text[-_TRAJECTORY_CHARS:]

    def _select_prompt(self) -> str:
        return (
            "Before acting, ask the skill library for advice.\n"
            f"Task: {self._base_obs['task']}\n"
            f"Write one sentence describing the skill you need, as {QUERY_FORMAT}."
        )

    def _rerank_prompt(self) -> str:
        return (
            f"The library returned {len(self._candidates)} candidate skills (in obs['candidates']).\n"
            f"Rank them by how useful they are for this task, as {RANK_FORMAT}."
        )

    def _candidates_text(self) -> str:
        return "\n".join(f"[{n}] {c.skill.render()}" for n, c in enumerate(self._candidates, start=1))

    def _distill_prompt(self, success: bool) -> str:
        outcome = "succeeded" if success else "failed"
        task_id = str(self._base_info.get("task_id", ""))
        parts = [
            f"The episode is over: you {outcome} at the task '{self._base_obs['task']}'.",
            f"Your trajectory:\n{self._trajectory_text()}",
        ]
        earlier = self._contrast.get((task_id, not success)) if self.config.contrast else None
        if earlier:
            parts.append(f"An earlier attempt at the same task that {'failed' if success else 'succeeded'}:\n{earlier}")
        parts.append(f"Write one reusable skill for similar tasks as JSON: {SKILL_FORMAT}")
        return "\n\n".join(parts)

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
        info["skill"] = {**_copy_json(self._track), "mode": f"{self.config.skills}/{self.config.selection}"}
        return info


def _copy_json(value: Any) -> Any:
    """A copy of nested lists and dicts of plain values (what ``copy.deepcopy`` gives, without its overhead)."""
    if isinstance(value, dict):
        return {key: _copy_json(item) if isinstance(item, dict | list) else item for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_json(item) if isinstance(item, dict | list) else item for item in value]
    return value


def make_skill_env(base_id: str, env_name: str = "", render_mode: str | None = None, **kwargs: Any) -> SkillEnv:
    """Entry point of the ``Skill*`` ids: splits ``kwargs`` into :class:`SkillConfig` and base-env arguments."""
    names = {f.name for f in dataclasses.fields(SkillConfig)}
    skill_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
    skill_kwargs.setdefault("env_name", env_name)
    spec = gym.spec(base_id)
    creator = gym.envs.registration.load_env_creator(spec.entry_point)
    base = creator(**{**spec.kwargs, **kwargs, "render_mode": render_mode})
    return SkillEnv(base, SkillConfig(**skill_kwargs), render_mode=render_mode)
