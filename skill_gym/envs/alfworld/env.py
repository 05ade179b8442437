"""``Alfworld-v0``: ALFWorld's text household tasks on the real alfworld/textworld engine, as a Gymnasium env.

This module holds :class:`AlfworldEnv`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, SupportsFloat

from skill_gym.envs.alfworld.engine import ENGINE_POOL, GameEngine, StepResult
from skill_gym.envs.alfworld.expert import ExpertFailed, HandCodedExpert
from skill_gym.envs.alfworld.games import Game, find_games
from skill_gym.envs.text_env import TextEnv, coerce_action, sanitize_text

__all__ = ["AlfworldEnv"]

_TASK_MARKER = "Your task is to: "


def _show(action: object, limit: int = 60) -> str:
    """A short printable rendering of an agent's action for an error note."""
    text = action if isinstance(action, str) else repr(action)
    text = sanitize_text(text, 10 * limit).replace("\n", " ")
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


class AlfworldEnv(TextEnv):
    """ALFWorld (Shridhar et al., 2021): reach a household goal with text commands in a simulated room.

    ## Description
    Games come from the embedded suite (generated from alfworld's own floor plans, rules and goal library,
    every game won by alfworld's hand-coded expert) or, with ``data_dir=`` or ``$ALFWORLD_DATA`` pointing at
    a folder holding ``json_2.1.1``, from upstream ALFWorld data. Six task types: pick_and_place_simple,
    look_at_obj_in_light, pick_clean_then_place_in_recep, pick_heat_then_place_in_recep,
    pick_cool_then_place_in_recep, pick_two_obj_and_place.

    ``accelerate=True`` (the default) runs the accelerated engine (:mod:`skill_gym.envs.alfworld.accel`):
    the same observations, admissible commands, rewards and expert actions as upstream's engine, 50-200x
    faster per step; ``accelerate=False`` runs upstream's engine untouched. On upstream versions other than
    the pinned ones the stock engine runs either way, after a one-line warning.

    ## Action Space
    One command string. Anything that is not an admissible command (wrong type, empty, too long,
    non-ASCII, unknown) is answered ``Nothing happens.`` with a note saying why, is not sent to the engine,
    sets ``info["action_valid"] = False`` and still counts as a step. Agents are asked for
    ``<think>…</think><action>…</action>`` by default (:attr:`instructions`; ``answer_format=``).

    ## Observation Space
    ``Dict`` of ``Text``: ``observation`` (the engine's text; the reset text is the intro with the room and
    the task), ``task`` (the goal after "Your task is to: ") and ``admissible_actions`` (newline-joined,
    upstream order, without ``help``).

    ## Rewards
    1.0 on the step that wins, else 0.0 (verl-agent uses 10 x won; scale in the learner).

    ## Starting State
    ``reset(options={"task_id": ...})`` pins a game (see :attr:`task_ids`); otherwise the game is drawn with
    ``self.np_random``, so the same seed gives the same game and text. Goal texts are fixed per game (drawn,
    with alfworld's templates, when the game was generated), so no global RNG is used at reset.

    ## Episode End
    ``terminated`` on a win; ``truncated`` after ``max_steps`` steps (an argument, not the registry's
    ``max_episode_steps``, so the skill env can run its phases around the episode).

    ## Info
    ``won``, ``score`` (1.0 if won else 0.0), ``task_id``, ``task_type``, ``action_valid``, ``step`` and, with
    ``expert_action=True``, ``expert_action``: the next command of alfworld's hand-coded expert (``look`` when
    it has none, as upstream).

    ## Arguments
    ``split`` (``train``, ``eval_in_distribution``, ``eval_out_of_distribution``), ``data_dir``, ``max_steps``
    (50), ``render_mode`` (``"ansi"``), ``expert_action``, ``task_types``, ``accelerate``, ``answer_format``
    (``"tagged"``, ``"action"``, ``"plain"``, ``"verl"``: tagged, parsed by verl-agent's rules).

    ## Version History
    * v0: initial version (alfworld 0.4.2 / textworld 1.7.0 semantics).

    >>> import gymnasium as gym, skill_gym  # doctest: +SKIP
    >>> env = gym.make("Alfworld-v0", split="eval_out_of_distribution")  # doctest: +SKIP
    >>> obs, info = env.reset(seed=0)  # doctest: +SKIP
    >>> obs["task"]  # doctest: +SKIP
    'put a clean mug in coffeemachine.'
    """

    intro = (
        "You are an agent acting in a household simulated as text (ALFWorld). You move between "
        "receptacles, pick objects up, open, heat, cool and clean things to complete the task."
    )

    def __init__(
        self,
        split: str = "train",
        data_dir: str | os.PathLike[str] | None = None,
        max_steps: int = 50,
        render_mode: str | None = None,
        expert_action: bool = False,
        task_types: Iterable[str | int] | None = None,
        accelerate: bool = True,
        answer_format: str | None = None,
    ) -> None:
        super().__init__(render_mode=render_mode, answer_format=answer_format)
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
        self.split = split
        self.max_steps = max_steps
        self.expert_action = bool(expert_action)
        self.accelerate = bool(accelerate)
        self.games: list[Game] = find_games(split, data_dir=data_dir, task_types=task_types)
        if not self.games:
            raise ValueError(f"no ALFWorld games in split {split!r} for task types {task_types!r}")
        self._by_id = {game.task_id: game for game in self.games}
        self._game: Game | None = None
        self._engine: GameEngine | None = None
        self._expert: HandCodedExpert | None = None
        self._last: StepResult | None = None
        self._task = ""
        self._steps = 0

    @property
    def accelerated(self) -> bool | None:
        """Whether the current game runs on the accelerated engine (``None`` before the first reset)."""
        return None if self._engine is None else self._engine.accelerated

    @property
    def task_ids(self) -> list[str]:
        """The ids of the games in this env's split, in order; pass one as ``options={"task_id": id}``."""
        return [game.task_id for game in self.games]

    def _pick(self, options: dict[str, Any] | None) -> Game:
        task_id = (options or {}).get("task_id")
        if task_id is None:
            return self.games[int(self.np_random.integers(len(self.games)))]
        game = self._by_id.get(task_id) if isinstance(task_id, str) else None
        if game is None:
            raise ValueError(
                f"unknown task_id {task_id!r} for split {self.split!r} ({len(self.games)} games); "
                "valid ids are in env.unwrapped.task_ids"
            )
        return game

    def _info(self, action_valid: bool) -> dict[str, Any]:
        assert self._game is not None and self._last is not None
        info: dict[str, Any] = {
            "won": self._last.won,
            "score": 1.0 if self._last.won else 0.0,
            "task_id": self._game.task_id,
            "task_type": self._game.task_type,
            "action_valid": action_valid,
            "step": self._steps,
        }
        if self._expert is not None:
            info["expert_action"] = self._expert.next_action
        return info

    def _obs(self, action: str | None, feedback: str) -> dict[str, str]:
        assert self._last is not None
        commands = "\n".join(self._last.admissible_commands)
        return self._observe(action, observation=feedback, task=self._task, admissible_actions=commands)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, str], dict]:
        super().reset(seed=seed)
        game = self._pick(self.take_pending_options(options))
        expert_seed = int(self.np_random.integers(2**31))
        if self._engine is not None and self._engine.key != game.task_id:
            ENGINE_POOL.release(self._engine)
            self._engine = None
        if self._engine is None:
            self._engine = ENGINE_POOL.acquire(game.task_id, game.load, accelerate=self.accelerate)
        self._engine.facts = self.expert_action
        self._game, self._steps = game, 0
        self._last = self._engine.reset()
        feedback = self._last.feedback
        self._task = feedback.split(_TASK_MARKER, 1)[1].strip() if _TASK_MARKER in feedback else ""
        self._expert = None
        if self.expert_action:
            self._expert = HandCodedExpert(game.task_type, game.pddl_params, seed=expert_seed)
            try:
                self._expert.reset(self._engine.raw)
            except Exception:  # a broken expert must not break the env
                self._expert.next_action = "look"
        return self._obs(None, feedback), self._info(action_valid=True)

    def step(self, action: str) -> tuple[dict[str, str], SupportsFloat, bool, bool, dict[str, Any]]:
        if self._engine is None or self._last is None:
            raise RuntimeError("call reset() before step()")
        self._steps += 1
        command, reason = coerce_action(action)
        if command is not None and not command.isascii():
            command, reason = None, "the action contains non-ASCII characters"
        elif command is not None and command not in self._last.admissible_commands:
            command, reason = None, "not one of the admissible actions"
        if command is None:
            feedback = f"Nothing happens. (Invalid action {_show(action)}: {reason}.)"
        else:
            self._last = self._engine.step(command)
            feedback = self._last.feedback
            if self._expert is not None:
                try:
                    self._expert.observe(self._engine.raw, command)
                except ExpertFailed:
                    self._expert.next_action = "look"
        valid = command is not None
        reward = 1.0 if valid and self._last.won else 0.0
        terminated = self._last.won
        truncated = not terminated and self._steps >= self.max_steps
        obs = self._obs(command if valid else _show(action), feedback)
        return obs, reward, terminated, truncated, self._info(valid)

    def close(self) -> None:
        if self._engine is not None:
            ENGINE_POOL.release(self._engine)
            self._engine = None
        super().close()
