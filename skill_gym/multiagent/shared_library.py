"""``SharedLibraryEnv``: N agents, one skill library, as a PettingZoo ``ParallelEnv``.

This module holds :class:`SharedLibraryEnv`, :func:`parallel_env` and :func:`aec_env` (the AEC form, through
PettingZoo's ``parallel_to_aec``), and :class:`TextObservation`, the ``str`` its observations are made of.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

import skill_gym

__all__ = ["SharedLibraryEnv", "TextObservation", "aec_env", "parallel_env"]


class TextObservation(str):
    """A ``str`` that states its NumPy dtype (``<U``, the dtype of Gymnasium's ``Text`` spaces).

    PettingZoo's ``api_test`` compares each observation's ``dtype`` with its space's, which plain ``str`` values
    lack; everything else sees an ordinary string.

    >>> text = TextObservation("go to desk 1")
    >>> text == "go to desk 1", text.dtype == gym.spaces.Text(8).dtype
    (True, True)
    """

    __slots__ = ()
    dtype: ClassVar[np.dtype] = np.dtype(str)


class SharedLibraryEnv(ParallelEnv[str, dict[str, str], str]):
    """N agents solve tasks of one suite at the same time and share one skill library.

    ## Description
    Each agent (``agent_0`` ... ``agent_{N-1}``) runs its own copy of a registered skill-gym env (``env_id``),
    all made with the same ``library`` file, so a skill one agent distills is retrievable by every agent in
    later episodes (or later in the same one: the library is read fresh at every retrieval). With a base
    env id (no skills) the agents simply act side by side. Agents do not see each other's observations.

    ## Action Space
    Per agent, the single-agent env's: a string (``Text``), interpreted by that agent's current phase. An
    agent missing from the actions dict is stepped with ``None``, which its env answers as invalid (it costs
    a step); actions for agents that are not live are ignored.

    ## Observation Space
    Per agent, the single-agent env's ``Dict`` of ``Text`` fields (``observation``, ``task``,
    ``admissible_actions`` and, for ``Skill*`` ids, ``phase``, ``skills``, ``candidates``); the values are
    :class:`TextObservation` strings.

    ## Rewards
    Per agent, the single-agent env's reward.

    ## Starting State
    ``reset(seed=s)`` seeds the env's RNG, which draws one seed per agent for its env's reset, so the same
    seed gives the same tasks and text. ``options={"task_id": id}`` pins every agent to one task,
    ``options={"task_ids": {"agent_0": id, ...}}`` pins agents one by one; other options are ignored.

    ## Episode End
    An agent leaves ``agents`` on the step its own episode terminates or truncates; the episode ends when
    every agent has left.

    ## Info
    Per agent, the single-agent env's ``info`` (``won``, ``score``, ``task_id``, ``task_type``,
    ``action_valid``, ``step`` and, on skill envs, ``skill``).

    ## Arguments
    ``env_id`` (any id ``import skill_gym`` registers), ``num_agents`` (2), ``library`` (the shared library
    file, for ``Skill*`` ids; default the env family's library in the skill-gym cache), ``render_mode``
    (``"ansi"``) and any keyword argument of the env id.

    ## Version History
    * v0: initial version.

    >>> env = SharedLibraryEnv("Keyword-v0", num_agents=2)
    >>> obs, infos = env.reset(seed=0, options={"task_ids": {"agent_0": "opposite/fast", "agent_1": "plural/box"}})
    >>> sorted(obs), obs["agent_0"]["task"]
    (['agent_0', 'agent_1'], "Answer with the opposite of the word 'fast'.")
    >>> obs, rewards, terminations, truncations, infos = env.step({"agent_0": "slow", "agent_1": "box"})
    >>> rewards, env.agents
    ({'agent_0': 1.0, 'agent_1': 0.0}, ['agent_1'])
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "name": "shared_library_v0"}

    def __init__(
        self,
        env_id: str = "SkillKeyword-v0",
        num_agents: int = 2,
        library: str | None = None,
        render_mode: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        if not isinstance(num_agents, int) or num_agents < 1:
            raise ValueError(f"num_agents must be a positive int, got {num_agents!r}")
        if env_id not in gym.registry:
            raise ValueError(f"unknown env id {env_id!r}; skill-gym registers {_skill_gym_ids()}")
        if library is not None:
            if not skill_gym.is_skill_env(env_id):
                raise ValueError(f"{env_id} has no skill library; pass library= only with a Skill* id")
            env_kwargs["library"] = str(library)
        self.env_id = env_id
        self.render_mode = render_mode
        self.possible_agents = [f"agent_{i}" for i in range(num_agents)]
        self.agents: list[str] = []
        self.envs = {agent: gym.make(env_id, render_mode=render_mode, **env_kwargs) for agent in self.possible_agents}
        first = self.envs[self.possible_agents[0]]
        self.observation_spaces = {agent: first.observation_space for agent in self.possible_agents}
        self.action_spaces = {agent: first.action_space for agent in self.possible_agents}
        self._np_random, _ = seeding.np_random()
        self._closed = False

    def observation_space(self, agent: str) -> gym.spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> gym.spaces.Space:
        return self.action_spaces[agent]

    @property
    def instructions(self):
        """The agents' :class:`~skill_gym.envs.instructions.Instructions` (the same for every agent)."""
        return self.envs[self.possible_agents[0]].unwrapped.instructions

    @property
    def task_ids(self) -> list[str]:
        """The env id's task ids (pin them with ``options``)."""
        return list(getattr(self.envs[self.possible_agents[0]].unwrapped, "task_ids", []))

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self._np_random, _ = seeding.np_random(seed)
        options = options if isinstance(options, dict) else {}
        per_agent = options.get("task_ids") if isinstance(options.get("task_ids"), dict) else {}
        self.agents = list(self.possible_agents)
        observations, infos = {}, {}
        for agent in self.agents:
            task_id = per_agent.get(agent, options.get("task_id"))
            agent_options = {"task_id": task_id} if task_id is not None else None
            agent_seed = int(self._np_random.integers(2**31))
            obs, info = self.envs[agent].reset(seed=agent_seed, options=agent_options)
            observations[agent], infos[agent] = _text(obs), info
        return observations, infos

    def step(self, actions: dict[str, Any]):
        observations, rewards, terminations, truncations, infos = {}, {}, {}, {}, {}
        actions = actions if isinstance(actions, dict) else {}
        for agent in self.agents:
            obs, reward, terminated, truncated, info = self.envs[agent].step(actions.get(agent))
            observations[agent], rewards[agent], infos[agent] = _text(obs), float(reward), info
            terminations[agent], truncations[agent] = bool(terminated), bool(truncated)
        self.agents = [a for a in self.agents if not (terminations[a] or truncations[a])]
        return observations, rewards, terminations, truncations, infos

    def render(self) -> str | None:
        """With ``render_mode="ansi"``, every agent's transcript under its name."""
        if self.render_mode != "ansi":
            return None
        return "\n".join(f"=== {agent} ===\n{self.envs[agent].render()}" for agent in self.possible_agents)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            for env in self.envs.values():
                env.close()


def parallel_env(env_id: str = "SkillKeyword-v0", **kwargs: Any) -> SharedLibraryEnv:
    """The parallel form (PettingZoo's naming): :class:`SharedLibraryEnv` with these arguments."""
    return SharedLibraryEnv(env_id, **kwargs)


def aec_env(env_id: str = "SkillKeyword-v0", **kwargs: Any) -> AECEnv:
    """The AEC form: agents act one at a time, through PettingZoo's ``parallel_to_aec`` converter.

    >>> env = aec_env("Keyword-v0", num_agents=2)
    >>> env.reset(seed=0, options={"task_id": "echo/river"})
    >>> env.agent_selection, env.last()[0]["task"]
    ('agent_0', "Answer with the word 'river'.")
    """
    return parallel_to_aec(SharedLibraryEnv(env_id, **kwargs))


def _text(obs: dict[str, str]) -> dict[str, str]:
    return {key: TextObservation(value) for key, value in obs.items()}


def _skill_gym_ids() -> list[str]:
    return sorted(i for i, s in gym.registry.items() if str(s.entry_point).startswith("skill_gym"))
