"""skill-gym: Gymnasium text environments with a skill library for LLM agents.

``import skill_gym`` registers the environment ids; nothing heavy is imported until an env is made.

* ``Alfworld-v0`` / ``SkillAlfworld-v0`` — the real ALFWorld engine on an embedded game suite;
* ``Keyword-v0`` / ``SkillKeyword-v0`` — a microsecond word task for tests and learning checks.
"""

from __future__ import annotations

import gymnasium as gym

__version__ = "0.1.0"
__all__ = ["__version__", "register_envs"]

_SKILL_ENTRY = "skill_gym.wrappers.skill_env:make_skill_env"


def register_envs() -> None:
    """Register every env id (idempotent)."""
    specs = {
        "Alfworld-v0": ("skill_gym.envs.alfworld.env:AlfworldEnv", {}),
        "SkillAlfworld-v0": (_SKILL_ENTRY, {"base_id": "Alfworld-v0", "env_name": "alfworld"}),
        "Keyword-v0": ("skill_gym.envs.keyword:KeywordEnv", {}),
        "SkillKeyword-v0": (_SKILL_ENTRY, {"base_id": "Keyword-v0", "env_name": "keyword"}),
    }
    for env_id, (entry_point, kwargs) in specs.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=entry_point, kwargs=kwargs, disable_env_checker=False)


register_envs()
