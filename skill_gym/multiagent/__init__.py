"""Multi-agent skill-gym: N agents sharing one skill library, as PettingZoo envs.

* :class:`SharedLibraryEnv` (``shared_library.py``) — the ``ParallelEnv``; :func:`parallel_env` makes it and
  :func:`aec_env` gives its AEC form through PettingZoo's ``parallel_to_aec``.

Needs the ``multiagent`` extra (``pettingzoo``); ``import skill_gym`` does not import this package.
"""

from skill_gym.multiagent.shared_library import SharedLibraryEnv, TextObservation, aec_env, parallel_env

__all__ = ["SharedLibraryEnv", "TextObservation", "aec_env", "parallel_env"]
