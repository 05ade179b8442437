"""The skill-library extension of the Gym API, generic over every skill-gym text env.

* :class:`SkillEnv` / :class:`SkillConfig` — the ``select → rerank → act → distill`` phases;
* :class:`StaticSkillSet` — SKILL0's skill files by task type, with an active set;
* parsing of the agent's phase outputs (``parsing.py``) and rerank NDCG (``ranking.py``).
"""

from skill_gym.skill_env.env import PHASES, SkillConfig, SkillEnv, make_skill_env
from skill_gym.skill_env.ranking import ndcg
from skill_gym.skill_env.static_skills import StaticSkillSet, starter_skills_dir

__all__ = ["PHASES", "SkillConfig", "SkillEnv", "StaticSkillSet", "make_skill_env", "ndcg", "starter_skills_dir"]
