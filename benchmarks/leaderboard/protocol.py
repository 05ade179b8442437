"""The plug-in agent protocol of the leaderboard: :mod:`skill_gym.agent`'s, under the leaderboard's name.

A third-party agent implements :class:`~skill_gym.agent.Agent` (``act(observation, info) -> str``, with optional
``reset``, ``observe`` and ``close``) to enter the leaderboard; importing it is optional, as the protocol is
duck-typed: ``skill-gym leaderboard run --agent python:my_module:MyAgent`` loads any class or function of that
shape. The runner makes one instance per parallel env (a class is called with no arguments; an object is copied;
a function is wrapped in :class:`~skill_gym.agent.FunctionAgent`), calls ``reset`` when an episode begins, ``act``
once per step and ``observe`` after each step. ``act`` must return a string within the per-step timeout; an agent
that raises, returns something else or hangs ends that episode as *failed* (recorded, and the run goes on).
"""

from __future__ import annotations

from skill_gym.agent import Agent, FunctionAgent, InfoActionAgent, RandomAgent, admissible_actions

__all__ = ["Agent", "FunctionAgent", "InfoActionAgent", "RandomAgent", "admissible_actions"]
