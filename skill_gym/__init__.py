"""skill-gym: Gymnasium text environments with a skill library for LLM agents.

``import skill_gym`` registers the env families of :mod:`skill_gym.envs`, a base id and a skill id each;
nothing heavy is imported until an env is made. :func:`register_family` adds a family
(:mod:`skill_gym.families`); :func:`is_skill_env` tells a skill env's id from a base env's; every env declares
how an agent should talk to it in ``env.unwrapped.instructions`` (:mod:`skill_gym.envs.instructions`).

* ``Alfworld-v0`` / ``SkillAlfworld-v0`` — the real ALFWorld engine on an embedded game suite;
* ``WebShop-v0`` / ``SkillWebShop-v0`` — WebShop's shopping tasks (search, results, item pages, buy) on an embedded catalog;
* ``SearchQA-v0`` / ``SkillSearchQA-v0`` — Search-R1's search-and-answer protocol on an embedded knowledge base;
* ``Keyword-v0`` / ``SkillKeyword-v0`` — a microsecond word task for tests and learning checks.
"""

from __future__ import annotations

import gymnasium as gym

from skill_gym.envs import register_envs
from skill_gym.families import SKILL_ENTRY_POINT, register_family

__version__ = "0.1.0"
__all__ = ["__version__", "is_skill_env", "make_vec", "register_envs", "register_family"]


def is_skill_env(env_id: str) -> bool:
    """Whether ``env_id`` is a skill env (the phases of :class:`~skill_gym.skill_env.SkillEnv` around a base env).

    >>> is_skill_env("SkillKeyword-v0"), is_skill_env("Keyword-v0")
    (True, False)
    """
    return gym.spec(env_id).entry_point == SKILL_ENTRY_POINT


def make_vec(
    env_id: str, num_envs: int = 1, vectorization_mode: str = "sync", **kwargs: object
) -> gym.vector.VectorEnv:
    """``gym.make_vec``, plus ``vectorization_mode="ray"``: a :class:`~skill_gym.vector.RayVectorEnv`.

    Observation fields are :class:`~skill_gym.envs.spaces.Utf8Text` spaces, whose shared memory holds
    UTF-8 bytes, so async workers return exactly what sync ones do, through shared memory (Gymnasium's
    default) or, with ``vector_kwargs={"shared_memory": False}``, pickled: both are as fast for text.
    With ``"ray"`` the envs live in Ray actors (``vector_kwargs``: ``num_workers``, ``envs_per_worker``,
    ``address``, ...); the plain ``gym.make_vec`` knows only ``"sync"`` and ``"async"``.
    """
    if vectorization_mode == "ray":
        from skill_gym.vector import make_ray_vec

        return make_ray_vec(env_id, num_envs, **kwargs)  # type: ignore[arg-type]
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=vectorization_mode, **kwargs)  # type: ignore[arg-type]


register_envs()
