"""The Skill1 learner: GRPO where one policy also selects, ranks and distills skills.

This module holds :class:`Skill1Trainer`. Each rollout on a ``Skill*`` env runs the phases
``select → rerank → act → distill`` with the same policy; the env retrieves from and admits into
the run's library (``<run_dir>/library.sqlite``), updates utilities by EMA, and reports NDCG, Û and
``r − Û`` in ``info["skill"]``. The trainer turns those into per-phase advantages
(:func:`agents.skill1.advantages.skill1_turn_advantages`, or with ``credit="released"``
:func:`~agents.skill1.advantages.skill1_released_turn_advantages`, which leaves the distill turn
untrained), logs library metrics, and evaluates
greedily (no UCB, no distillation) on a frozen library. The library snapshot travels with every
checkpoint (see :class:`agents.grpo.GRPOTrainer`). With ``library_service`` (always on several ranks), rank 0 serves
the library file (:class:`~skill_gym.library.LibraryServer`, with Skill1's capacity and merge rules) and the envs, Ray
workers and other ranks included, get its URL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

import skill_gym
from agents.grpo.trainer import GRPOTrainer
from agents.grpo.update import Sample
from agents.rollout import Episode
from agents.skill1.advantages import (
    released_trained_phases,
    skill1_released_turn_advantages,
    skill1_turn_advantages,
)
from agents.skill1.config import Skill1Config
from skill_gym.library import Library, SkillLibrary

__all__ = ["RunLibraryReader", "Skill1Credit", "Skill1Trainer", "distill_metrics", "library_options"]


class Skill1Credit:
    """Skill1's credit assignment as trainer hooks, with the credit settings of :attr:`credit_config` (a
    :class:`Skill1Config`, or any config holding its fields): per-phase advantages, and with ``credit="released"``
    only the phases the released code trains reach the optimizer. Mixed in before a :class:`GRPOTrainer`."""

    credit_config: Any

    def turn_advantages(self, episodes: Sequence[Episode]) -> list[list[float]]:
        cfg = self.credit_config
        if cfg.credit == "released":
            return skill1_released_turn_advantages(
                episodes,
                lambda_rerank=cfg.lambda_rerank,
                reward_scale=cfg.reward_scale,
                invalid_penalty=cfg.invalid_penalty,
                invalid_kind=cfg.invalid_kind,
                use_std=cfg.norm_adv_by_std,
            )
        return skill1_turn_advantages(
            episodes,
            lambda_rerank=cfg.lambda_rerank,
            lambda_distill=cfg.lambda_distill,
            reward_scale=cfg.reward_scale,
            invalid_penalty=cfg.invalid_penalty,
            use_std=cfg.norm_adv_by_std,
            rerank_baseline=cfg.rerank_baseline,
            phase_invalid_penalty=cfg.phase_invalid_penalty,
            group_stats=cfg.group_stats,
            invalid_scope=cfg.invalid_penalty_scope,
            invalid_kind=cfg.invalid_kind,
        )

    def update(self, samples: list[Sample]) -> dict[str, float]:
        if self.credit_config.credit == "released":
            trained = released_trained_phases(self.credit_config.lambda_rerank)
            samples = [s for s in samples if s.phase in trained]
        return super().update(samples)  # type: ignore[misc]


class RunLibraryReader:
    """The run's library file kept open for a trainer's metrics (the envs write it): :attr:`library`, ``None`` until
    the file exists or where this rank does not hold it; reopened after a checkpoint puts another file in place.
    Mixed in before a :class:`GRPOTrainer`."""

    _library: SkillLibrary | None = None
    library_path: Any

    @property
    def library(self) -> SkillLibrary | None:
        if self._library is None and self.library_path is not None and self.library_path.is_file():
            self._library = SkillLibrary(self.library_path)
        return self._library

    def load_extra_state(self, directory: Any, state: dict[str, Any]) -> None:
        if self._library is not None:  # the checkpoint put another library file in place
            self._library.close()
            self._library = None
        super().load_extra_state(directory, state)  # type: ignore[misc]

    def close(self) -> None:
        if self._library is not None:
            self._library.close()
            self._library = None
        super().close()  # type: ignore[misc]


def library_options(cfg: Any) -> dict[str, Any]:
    """A served library keeps Skill1's capacity and merge rules (``cfg``: a config holding Skill1's fields)."""
    return {"capacity": cfg.capacity, "merge_threshold": cfg.merge_threshold, "merge_rule": cfg.merge_rule,
            "merge_alpha": cfg.alpha, "eviction": cfg.eviction}  # fmt: skip


def distill_metrics(episodes: Sequence[Episode], library: Library | None) -> dict[str, float]:
    """The distill turns' outcomes (admissions, invalid skills, ``r − Û``), the library's size (0 without one)
    and response tokens per phase."""
    skills = [e.skill for e in episodes]
    statuses = Counter(s.get("admission", {}).get("status", "") for s in skills)
    tokens: Counter[str] = Counter()
    for e in episodes:
        for t in e.turns:
            tokens[t.phase] += len(t.response_ids)
    out = {
        "library/size": float(len(library)) if library is not None else 0.0,
        "library/added": float(statuses.get("added", 0)),
        "library/merged": float(statuses.get("merged", 0)),
        "library/rejected": float(statuses.get("rejected", 0)),
        "library/evicted": float(sum(len(s.get("admission", {}).get("evicted", [])) for s in skills)),
        "skill/distill_reward": float(np.mean([s.get("distill_reward", 0.0) for s in skills])) if skills else 0.0,
        "skill/invalid_skill": _invalid_rate(episodes, "distill"),
    }
    out.update({f"tokens/{phase}": float(n) for phase, n in sorted(tokens.items())})
    return out


class Skill1Trainer(Skill1Credit, RunLibraryReader, GRPOTrainer):
    """Skill1 on any ``Skill*`` env (ALFWorld now).

    Example:
        >>> trainer = Skill1Trainer(Skill1Config.cpu_defaults(env_id="SkillAlfworld-v0"))  # doctest: +SKIP
        >>> trainer.train()  # doctest: +SKIP
    """

    config: Skill1Config

    def __init__(self, config: Skill1Config, **kwargs: Any) -> None:
        if not skill_gym.is_skill_env(config.env_id):
            raise ValueError(f"Skill1 needs a skill env (Skill*-v0), got {config.env_id!r}")
        config.env_kwargs = {**config.skill_env_kwargs(training=True), **config.env_kwargs}
        config.eval_env_kwargs = {**config.skill_env_kwargs(training=False), **config.eval_env_kwargs}
        self.credit_config = config
        super().__init__(config, **kwargs)

    def library_options(self) -> dict[str, Any]:
        return library_options(self.config)

    def episode_metrics(self, episodes: Sequence[Episode]) -> dict[str, float]:
        out = super().episode_metrics(episodes)
        skills = [e.skill for e in episodes]
        reranked = [s["ndcg"] for s in skills if s.get("reranked")]
        library = self.library if self.config.selection != "none" else None
        precise = []
        for episode, info in zip(episodes, skills, strict=True):
            chosen = info.get("chosen_id")
            skill = library.get(chosen) if (library is not None and chosen) else None
            if skill is not None:
                precise.append(skill.task_type == episode.task_type)
        out.update(distill_metrics(episodes, library))
        out.update(
            {
                "skill/u_hat": float(np.mean([s.get("u_hat", 0.0) for s in skills])) if skills else 0.0,
                "skill/retrieved": float(np.mean([len(s.get("retrieved_ids", [])) for s in skills])) if skills else 0.0,
                "skill/rerank_ndcg": float(np.mean(reranked)) if reranked else 0.0,
                "skill/selection_precision": float(np.mean(precise)) if precise else 0.0,
                "skill/invalid_query": _invalid_rate(episodes, "select"),
                "skill/invalid_rank": _invalid_rate(episodes, "rerank"),
            }
        )
        return out


def _invalid_rate(episodes: Sequence[Episode], phase: str) -> float:
    turns = [t for e in episodes for t in e.turns if t.phase == phase]
    return float(np.mean([not (t.format_valid and t.action_valid) for t in turns])) if turns else 0.0
