"""skill-gym: Gymnasium text environments with a skill library for LLM agents.

``import skill_gym`` registers the environment ids; nothing heavy is imported until an env is made.

* ``Alfworld-v0`` / ``SkillAlfworld-v0`` — the real ALFWorld engine on an embedded game suite;
* ``Keyword-v0`` / ``SkillKeyword-v0`` — a microsecond word task for tests and learning checks.
"""

from __future__ import annotations

import gymnasium as gym

__version__ = "0.1.0"
__all__ = ["__version__", "make_vec", "register_envs"]

_SKILL_ENTRY = "skill_gym.skill_env.env:make_skill_env"


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


def make_vec(
    env_id: str, num_envs: int = 1, vectorization_mode: str = "sync", **kwargs: object
) -> gym.vector.VectorEnv:
    """``gym.make_vec`` with ``shared_memory=False`` for async workers.

    Gymnasium 1.4's shared memory for ``Text`` spaces returns strings of tabs, and copying 64k-int
    buffers per field would be slow anyway; pickled observations are exact and fast for text.
    """
    vector_kwargs = dict(kwargs.pop("vector_kwargs", None) or {})  # type: ignore[call-overload]
    if vectorization_mode == "async":
        vector_kwargs.setdefault("shared_memory", False)
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=vectorization_mode,
                        vector_kwargs=vector_kwargs, **kwargs)  # fmt: skip


register_envs()
