"""``SkillConfig``: every switch of the skill extension, each with its help text and default.

``gym.make("Skill...-v0", **kwargs)`` takes each field as a keyword argument; the rest go to the base env.
Learners that set these switches on their envs take the fields from here (``agents.skill1.config``), so each
switch is declared once.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from typing import Literal

from skill_gym.config_fields import check_choices, config_field

__all__ = ["SkillConfig"]


@dataclasses.dataclass
class SkillConfig:
    """Switches of the skill extension.

    Defaults: Skill1's (arXiv 2605.06130) paper values where its paper and released code agree; where they
    differ, the paper's reading (the released value is a switch), except retrieval: K = 3 and w = 1.0 as in
    Skill1's launch scripts (its paper: 5 and 0.6), and greedy (no UCB bonus), as an env cannot know whether
    it serves training. ``skill-gym train skill1`` sets the paper's K, w and UCB in training
    (``agents.skill1.config.SKILL1_DEFAULTS``).
    """

    env_name: str = config_field("", 'Env family recorded on skills and used to filter retrieval (e.g. "alfworld").')
    skills: Literal["library", "static"] = config_field(
        "library", "library: retrieve from a SkillLibrary; static: SKILL0 skill files by task type."
    )
    selection: Literal["policy", "similarity", "none"] = config_field(
        "policy",
        "policy: the agent writes a query and ranks the candidates (Skill1); similarity: the task text as query, "
        "top-1 (Skill1's no-selection ablation); none: no skill (its no-library ablation).",
    )
    distillation: Literal["policy", "none"] = config_field(
        "policy", "policy: the agent writes a skill after each episode (Skill1); none: no distill phase (ablation)."
    )
    library: str | None = config_field(
        None,
        "Library file (default <cache>/libraries/<env_name>.sqlite), shared by vector-env workers on its host; or the "
        "URL (http(s)://host:port) of a library service (skill-gym serve library), shared by workers on any machine. "
        "A service keeps its own capacity and merge settings.",
    )
    library_token: str | None = config_field(
        None, "Bearer token of a library service (default $SKILL_GYM_LIBRARY_TOKEN)."
    )
    read_only: bool = config_field(
        False, "Never write to the library (evaluation: frozen library, no utility updates)."
    )
    top_k: int = config_field(3, "Candidates retrieved per query (Skill1's paper: 5; its scripts: 3).")
    min_similarity: float = config_field(
        0.4, "Candidates below this cosine are dropped (Skill1's paper and released memory code: 0.4)."
    )
    relevance_weight: float = config_field(
        1.0, "w in w·rel + (1−w)·(U [+ UCB bonus]) (Skill1's paper: 0.6; its scripts: 1.0)."
    )
    ucb: bool = config_field(
        False, "UCB exploration bonus in retrieval (Skill1: in training; its evaluation is greedy)."
    )
    ucb_c: float = config_field(1.0, "UCB scale c.")
    ucb_log_plus_one: bool = config_field(
        False,
        "UCB bonus with ln(N + 1) (another repository's re-implementation of Skill1 as a baseline) instead of ln N "
        "(Skill1's paper and released code).",
    )
    query_fallback: Literal["none", "task"] = config_field(
        "none",
        "When the agent's query retrieves nothing: none = no skill; task = retrieve with the task text instead "
        "(Skill1's released code keeps the task text's retrieval).",
    )
    rerank: bool = config_field(
        True, 'With selection="policy", ask the agent to rank the candidates (skipped for < 2 candidates).'
    )
    rerank_always: bool = config_field(
        False,
        "A rerank turn even with fewer than 2 candidates (Skill1's released code: a placeholder prompt, NDCG 0, "
        "still trained).",
    )
    inject: Literal["top1", "all", "top1_if_ranked"] = config_field(
        "top1",
        "Skills put in context: top1 = the top of the ranking (Skill1's paper); all = every candidate in ranked "
        "order; top1_if_ranked = Skill1's released training: the top one when the ranking parsed, all candidates in "
        "similarity order when it did not.",
    )
    alpha: float = config_field(0.05, "EMA rate of the utilities of every retrieved skill after each episode.")
    admit_on: Literal["success", "always"] = config_field(
        "success", "Which written skills are admitted to the library: on success only (Skill1), or always."
    )
    contrast: bool = config_field(
        True, "In distill, also show the latest attempt at the same task with the opposite outcome."
    )
    contrast_scope: Literal["env", "library"] = config_field(
        "env",
        "Where that attempt comes from: env = this env instance (the paper's reading); library = any env sharing the "
        "library file, siblings of the group included, matched by task text (Skill1's released code).",
    )
    distill_format: Literal["skill", "lessons"] = config_field(
        "skill",
        "skill: JSON {description, strategy}; lessons: Skill1's released JSON {subtasks, task_success, "
        "action_lesson, navigation_lesson, description_head}, stored as 'Action Insight: … | Navigation Insight: …' "
        "(description: the head, else the task text).",
    )
    demonstrations: bool = config_field(
        False,
        "Open the select, rerank and distill prompts with a worked example of each answer (a task of no env): "
        "a small model then answers in the format (Skill1's prompts have none).",
    )
    capacity: int = config_field(5000, "Library capacity: beyond it a skill is evicted (see eviction).")
    merge_threshold: float = config_field(
        0.85, "Description similarity above which a new skill is merged (see merge_rule)."
    )
    merge_rule: Literal["similar", "same_strategy", "same_strategy_and_similar"] = config_field(
        "similar",
        "similar: merge on the same strategy or description similarity > merge_threshold; "
        "same_strategy_and_similar: only on the identical strategy string and description similarity > "
        "merge_threshold, U moves one EMA step toward the newcomer's 0.5 and n + 1 (Skill1's released code); "
        "same_strategy: the identical strategy string alone (a re-implementation of Skill1 as a baseline).",
    )
    eviction: Literal["spare_newcomer", "lowest"] = config_field(
        "spare_newcomer",
        "At capacity, evict the lowest U·log2(n + 1) but never the skill just offered (spare_newcomer), or that skill "
        "too when it is the lowest (lowest: Skill1's released code inserts, then evicts).",
    )
    static_dir: str | None = config_field(
        None, 'Skill-file folder for skills="static" (default: the starter set shipped for env_name).'
    )
    static_distill: bool = config_field(
        False,
        'With skills="static": the distill turn still runs and admits into library, and the skills shown from an '
        "exported curriculum (skill_mapping.json's provenance) get their in-context outcomes recorded there "
        "(n_selected, n_success, U): Skill1 -> SKILL0's one-stage option.",
    )

    def __post_init__(self) -> None:
        check_choices(self)
        if isinstance(self.library, str) and self.library.startswith(("http:", "https:")):
            parts = urllib.parse.urlsplit(self.library)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"library must be a file path or an http(s)://host:port URL, got {self.library!r}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
