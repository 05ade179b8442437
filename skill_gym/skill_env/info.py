"""``info["skill"]``: the typed record a skill env reports at every step, for a learner's credit assignment.

This module holds :class:`SkillInfo` (what each key means), :class:`AdmissionInfo` (the library's
:class:`~skill_gym.library.Admission` as plain values) and :func:`new_skill_info`. Values are plain
lists, strings, numbers and bools of fixed types, so vector envs batch them and they pickle and
serialize to JSON as they are.
"""

from __future__ import annotations

from typing import TypedDict

from skill_gym.library import Admission

__all__ = ["AdmissionInfo", "SkillInfo", "admission_info", "copy_skill_info", "new_skill_info"]


class AdmissionInfo(TypedDict):
    """What happened to the skill written in the ``distill`` phase (:class:`~skill_gym.library.Admission`)."""

    status: str
    """``"added"``, ``"merged"``, ``"rejected"``, or ``""`` before a skill was offered."""
    skill_id: str
    """The new skill's id, or the id it was merged into; ``""`` when rejected."""
    reason: str
    """Why it was rejected or merged."""
    evicted: list[str]
    """Ids evicted to make room (library at capacity)."""


class SkillInfo(TypedDict):
    """``info["skill"]`` of a skill env; every key is present at every step."""

    phase: str
    """The phase the env is in after this step: ``select``, ``rerank``, ``act``, ``distill`` or ``done``."""
    mode: str
    """``"<skills>/<selection>"``, e.g. ``"library/policy"`` or ``"static/none"``."""
    query: str
    """The retrieval query (the agent's, or the task text when the query was invalid or not asked for)."""
    query_valid: bool
    retrieved_ids: list[str]
    """Top-K candidates in similarity-score order."""
    similarities: list[float]
    """Cosine between the query and each candidate's description."""
    scores: list[float]
    """Ranking scores ``w·rel + (1−w)·(U [+ UCB])``."""
    utilities: list[float]
    """Each candidate's utility U at retrieval."""
    rank: list[str]
    """The agent's ranking of the candidates (ids, best first); the similarity order when invalid."""
    rank_valid: bool
    reranked: bool
    """Whether a ``rerank`` turn happened (needs ``selection="policy"`` and at least two candidates)."""
    ndcg: float
    """NDCG of the agent's ranking against the candidates' utilities (Skill1's rerank reward)."""
    chosen_id: str
    """The skill put in context (the top of the ranking), ``""`` for none."""
    u_hat: float
    """Û: the largest utility among the retrieved candidates (0 when none)."""
    base_done: bool
    """Whether the base episode has ended."""
    distill_reward: float
    """Skill1's distillation reward ``r − Û``, set when the base episode ends."""
    admission: AdmissionInfo
    static_files: list[str]
    """Static mode (SKILL0): the skill files in context for this task."""


def admission_info(admission: Admission | None) -> AdmissionInfo:
    """The plain-value form of a library :class:`~skill_gym.library.Admission` (``None``: nothing offered yet)."""
    if admission is None:
        return {"status": "", "skill_id": "", "reason": "", "evicted": []}
    return {
        "status": admission.status,
        "skill_id": admission.skill_id or "",
        "reason": admission.reason,
        "evicted": list(admission.evicted),
    }


def new_skill_info(mode: str) -> SkillInfo:
    """The record at the start of an episode: nothing retrieved, chosen or written."""
    return {
        "phase": "",
        "mode": mode,
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
        "admission": admission_info(None),
        "static_files": [],
    }


def copy_skill_info(info: SkillInfo) -> SkillInfo:
    """A copy that later steps cannot change (lists and the admission copied; no ``copy.deepcopy`` overhead)."""
    out = {key: list(value) if isinstance(value, list) else value for key, value in info.items()}
    out["admission"] = {**info["admission"], "evicted": list(info["admission"]["evicted"])}
    return out  # type: ignore[return-value]
