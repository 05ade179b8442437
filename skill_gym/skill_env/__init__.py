"""The skill-library extension of the Gym API, generic over every skill-gym text env.

* :class:`SkillEnv` (``env.py``) — the ``select → rerank → act → distill`` phase machine;
* :class:`SkillConfig` (``config.py``) — its switches, each with its help text and default;
* :class:`SkillSource` (``sources.py``) — where skills come from: a library (Skill1) or static files (SKILL0);
* :class:`SkillInfo` (``info.py``) — the typed ``info["skill"]`` record;
* :class:`StaticSkillSet` (``static_skills.py``) — SKILL0's skill files by task type, with an active set;
* the phases' answer formats and parsers (``parsing.py``) and rerank NDCG (``ranking.py``).
"""

from skill_gym.skill_env.config import SkillConfig
from skill_gym.skill_env.env import PHASES, SkillEnv, make_skill_env
from skill_gym.skill_env.info import AdmissionInfo, SkillInfo
from skill_gym.skill_env.parsing import PHASE_FORMATS
from skill_gym.skill_env.ranking import ndcg
from skill_gym.skill_env.sources import LibrarySource, SkillSource, StaticSource
from skill_gym.skill_env.static_skills import StaticSkillSet, starter_skills_dir

__all__ = [
    "PHASES",
    "PHASE_FORMATS",
    "AdmissionInfo",
    "LibrarySource",
    "SkillConfig",
    "SkillEnv",
    "SkillInfo",
    "SkillSource",
    "StaticSkillSet",
    "StaticSource",
    "make_skill_env",
    "ndcg",
    "starter_skills_dir",
]
