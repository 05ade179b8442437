"""Gymnasium wrappers that give skill-gym's text envs other shapes.

* :class:`ClassicRLWrapper` (``classic_rl.py``) — any text env as a classic RL env: ``Discrete(k)`` over the
  admissible actions with an action mask (sb3-contrib's ``MaskablePPO``) and a fixed-size ``Box`` observation
  from the frozen sentence encoder.
"""

from skill_gym.wrappers.classic_rl import ClassicRLWrapper, observation_layout

__all__ = ["ClassicRLWrapper", "observation_layout"]
