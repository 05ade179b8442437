"""A text env as a classic RL env: discrete actions with a mask, a fixed-size embedding observation.

This module holds :class:`ClassicRLWrapper` and :func:`observation_layout`. The wrapper imports nothing from
Stable-Baselines3: its ``action_masks()`` method is the hook sb3-contrib's ``MaskablePPO`` looks up (through
``get_wrapper_attr``, so ``Monitor`` and other wrappers may sit outside it).
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding

from skill_gym.library.encoder import Encoder, SentenceEncoder

__all__ = ["ClassicRLWrapper", "observation_layout"]

_MAX_RULE_TURNS = 8
"""Skill turns (select, rerank, distill) the wrapper may answer in a row before giving up on an env."""
_QUERY_CHARS = 400


def observation_layout(dim: int, max_actions: int, action_embeddings: bool = True) -> dict[str, slice]:
    """Where each part sits in the observation vector of :class:`ClassicRLWrapper`.

    >>> {name: (s.start, s.stop) for name, s in observation_layout(4, 2).items()}
    {'task': (0, 4), 'observation': (4, 8), 'skills': (8, 12), 'action_similarity': (12, 14), 'actions': (14, 22)}
    """
    sizes = {"task": dim, "observation": dim, "skills": dim, "action_similarity": max_actions}
    if action_embeddings:
        sizes["actions"] = max_actions * dim
    layout, start = {}, 0
    for name, size in sizes.items():
        layout[name] = slice(start, start + size)
        start += size
    return layout


class ClassicRLWrapper(gym.Wrapper[np.ndarray, np.int64, dict[str, str], str]):
    """Turn a skill-gym text env (any suite, base or ``Skill*``) into a classic RL env.

    ## Action Space
    ``Discrete(max_actions)``: action ``i`` sends the ``i``-th admissible action (in the env's order) to the
    text env. :meth:`action_masks` marks the indices that name an admissible action; an index beyond the
    list (masked), out of range or not an integer is sent as a text that is not admissible, so the text env
    answers it as invalid and counts the step (``info["action_valid"] = False``, ``info["action_masked"] =
    True``). When there are more than ``max_actions`` admissible actions the rest are unreachable. When
    there are none, index 0 is left open (so a mask is never all zeros) and sends an empty action.

    ## Observation Space
    ``Box(-1, 1, (n,), float32)``: unit embeddings of the frozen encoder (all-MiniLM-L6-v2 by default, ``d =
    384``) laid out by :func:`observation_layout`: ``task`` (``d``), ``observation`` (the env's feedback
    text, ``d``), ``skills`` (the skill text in context, ``d``; zeros for a base env),
    ``action_similarity`` (``max_actions`` cosines between each admissible action and the task) and, with
    ``action_embeddings=True``, ``actions`` (``max_actions x d``). Empty texts and padding are zeros.
    Embeddings are cached by text (the encoder's LRU cache), so repeated observations cost nothing.

    ## Skill envs
    The agent acts only in the ``act`` phase. The wrapper answers the other phases by a fixed rule: in
    ``select`` it queries with the task text (similarity selection), in ``rerank`` it keeps the similarity
    order, and in ``distill`` it writes nothing (the skill is rejected and the episode ends). For Skill1-style
    skills without those turns, make the env with ``selection="similarity", distillation="none"``; with
    ``skills="static"`` (SKILL0) the task type's skill files are in ``skills``.

    ## Rewards, Episode End, Info
    The text env's, summed over the rule-answered turns of a step. ``info`` is the text env's (of its last
    turn) plus ``action_index``, ``action_text`` (what was sent) and ``action_masked``; ``action_valid`` is
    the agent's turn's.

    ## Arguments
    ``max_actions`` (32), ``encoder`` (an :class:`~skill_gym.library.Encoder` or a sentence-transformers
    model name or path; default the shared all-MiniLM-L6-v2), ``action_embeddings`` (``True``) and
    ``task_ids`` (draw each episode's task from these ids, with the wrapper's own seeded RNG, unless
    ``reset`` pins one).

    >>> import gymnasium as gym, skill_gym  # doctest: +SKIP
    >>> env = ClassicRLWrapper(gym.make("Keyword-v0"), max_actions=8)  # doctest: +SKIP
    >>> obs, info = env.reset(seed=0)  # doctest: +SKIP
    >>> obs.shape, env.action_masks()  # doctest: +SKIP
    ((4744,), array([ True,  True,  True,  True, False, False, False, False]))
    """

    def __init__(
        self,
        env: gym.Env[dict[str, str], str],
        max_actions: int = 32,
        encoder: Encoder | str | None = None,
        action_embeddings: bool = True,
        task_ids: list[str] | None = None,
    ) -> None:
        super().__init__(env)
        if not isinstance(max_actions, int) or max_actions < 1:
            raise ValueError(f"max_actions must be a positive int, got {max_actions!r}")
        if task_ids is not None and not task_ids:
            raise ValueError("task_ids must name at least one task (or be None for the env's own draw)")
        self.max_actions = max_actions
        self.action_embeddings = bool(action_embeddings)
        self.task_ids = list(task_ids) if task_ids is not None else None
        self.encoder: Encoder = (
            encoder if encoder is not None and not isinstance(encoder, str) else SentenceEncoder.shared(encoder)
        )
        self.layout = observation_layout(self.encoder.dim, max_actions, self.action_embeddings)
        size = max(s.stop for s in self.layout.values())
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(size,), dtype=np.float32)
        self.action_space = spaces.Discrete(max_actions)
        self._task_rng, _ = seeding.np_random()
        self._text_obs: dict[str, str] = {}
        self._actions: list[str] = []

    # -- the Gymnasium API ---------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self._task_rng, _ = seeding.np_random(seed)
        options = dict(options or {})
        if self.task_ids is not None and "task_id" not in options:
            options["task_id"] = self.task_ids[int(self._task_rng.integers(len(self.task_ids)))]
        obs, info = self.env.reset(seed=seed, options=options or None)
        obs, *_, info = self._answer_skill_turns(obs, 0.0, False, False, info)
        self._remember(obs)
        return self._vector(), info

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        index = _as_index(action)
        masked = index is None or index >= self.max_actions or not self.action_masks()[index]
        if not masked:
            text = self._actions[index] if self._actions else ""
        else:
            text = f"(action {action!r:.40} is masked: {len(self._actions)} admissible actions)"
        obs, reward, terminated, truncated, info = self.env.step(text)
        action_valid = bool(info.get("action_valid", not masked)) and not masked
        obs, reward, terminated, truncated, info = self._answer_skill_turns(obs, reward, terminated, truncated, info)
        self._remember(obs)
        info = {**info, "action_valid": action_valid, "action_index": -1 if index is None else index,
                "action_text": text, "action_masked": masked}  # fmt: skip
        return self._vector(), float(reward), bool(terminated), bool(truncated), info

    def action_masks(self) -> np.ndarray:
        """Which indices name an admissible action now (``bool``, length ``max_actions``)."""
        mask = np.zeros(self.max_actions, dtype=bool)
        mask[: max(1, min(len(self._actions), self.max_actions))] = True
        return mask

    # -- helpers -------------------------------------------------------------------------------------

    def _answer_skill_turns(self, obs, reward, terminated, truncated, info):
        """Answer ``select``/``rerank``/``distill`` by the fixed rule until the agent has to act (or it ends)."""
        total = float(reward)
        for _ in range(_MAX_RULE_TURNS):
            phase = obs.get("phase", "act")
            if terminated or truncated or phase == "act":
                break
            if phase == "select":
                query = " ".join((obs.get("task") or obs.get("observation", "")).split())[:_QUERY_CHARS]
                answer = f"<query>{query or 'any task'}</query>"
            elif phase == "rerank":
                answer = "<rank>1</rank>"  # the similarity order
            else:
                answer = "(no skill written)"
            obs, reward, terminated, truncated, info = self.env.step(answer)
            total += float(reward)
        return obs, total, terminated, truncated, info

    def _remember(self, obs: dict[str, str]) -> None:
        self._text_obs = obs
        self._actions = [a for a in obs.get("admissible_actions", "").split("\n") if a.strip()]

    def _vector(self) -> np.ndarray:
        obs, actions = self._text_obs, self._actions[: self.max_actions]
        texts = [obs.get("task", ""), obs.get("observation", ""), obs.get("skills", ""), *actions]
        vectors = self._embed(texts)
        out = np.zeros(self.observation_space.shape, dtype=np.float32)
        for name, row in (("task", 0), ("observation", 1), ("skills", 2)):
            out[self.layout[name]] = vectors[row]
        if actions:
            action_vectors = vectors[3:]
            start = self.layout["action_similarity"].start
            out[start : start + len(actions)] = action_vectors @ vectors[0]
            if self.action_embeddings:
                start = self.layout["actions"].start
                out[start : start + action_vectors.size] = action_vectors.ravel()
        return np.clip(out, -1.0, 1.0, out=out)

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Unit embeddings of ``texts``; empty texts are zero rows."""
        out = np.zeros((len(texts), self.encoder.dim), dtype=np.float32)
        filled = [i for i, text in enumerate(texts) if text.strip()]
        if filled:
            out[filled] = self.encoder.encode([texts[i] for i in filled])
        return out


def _as_index(action: Any) -> int | None:
    """``action`` as an ``int`` (a Python or NumPy integer, or a one-element integer array), else ``None``."""
    if isinstance(action, np.ndarray):
        if action.size != 1 or not np.issubdtype(action.dtype, np.integer):
            return None
        action = action.reshape(()).item()
    if isinstance(action, bool) or not isinstance(action, int | np.integer):
        return None
    return int(action) if 0 <= int(action) < 2**62 else None
