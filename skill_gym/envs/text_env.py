"""The shared shape of every skill-gym text environment.

This module holds:

* :data:`TEXT_CHARSET` and :func:`text_space` — the printable character set and the ``Text``
  space every observation field uses;
* :func:`sanitize_text` — maps arbitrary text into that space (so observations always pass
  ``check_env``);
* :func:`coerce_action` — turns whatever the agent sent into a clean action string or a clear
  reason why it is not one (never raises);
* :class:`TextEnv` — a small base class with the observation space, the ``ansi`` transcript,
  the env's :class:`~skill_gym.envs.instructions.Instructions` (intro and answer format, chosen with
  ``answer_format=``) and the default ``info`` keys. Concrete envs implement ``reset`` and ``step``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any, ClassVar

import gymnasium as gym
from gymnasium import spaces

from skill_gym.envs.instructions import ANSWER_FORMATS, Instructions, ResponseFormat
from skill_gym.envs.spaces import Utf8Text

__all__ = [
    "MAX_ACTION_CHARS",
    "MAX_TEXT_CHARS",
    "TEXT_CHARSET",
    "TextEnv",
    "coerce_action",
    "sanitize_text",
    "text_space",
]

TEXT_CHARSET: frozenset[str] = frozenset(string.printable)
"""Printable ASCII plus whitespace (``\\t \\n \\r \\x0b \\x0c``)."""

MAX_TEXT_CHARS = 65_536
"""Largest observation field; longer text is cut with a visible marker."""

MAX_ACTION_CHARS = 4_096
"""Longest action string accepted; longer actions are answered as invalid, not truncated."""

_TRUNCATION_MARK = "\n...[truncated]"

_OUTSIDE_CHARSET = re.compile("[^" + re.escape("".join(sorted(TEXT_CHARSET))) + "]")


def text_space(max_length: int = MAX_TEXT_CHARS) -> Utf8Text:
    """A ``Text`` space over :data:`TEXT_CHARSET` that also admits the empty string.

    It is a :class:`~skill_gym.envs.spaces.Utf8Text`, so ``gymnasium.make_vec(..., vectorization_mode="async")``
    passes observations through shared memory exactly (Gymnasium's own ``Text`` buffers read back as tabs).

    >>> space = text_space(16)
    >>> space.contains("") and space.contains("two\\nlines") and not space.contains("caf\\u00e9")
    True
    """
    return Utf8Text(max_length=max_length, min_length=0, charset="".join(sorted(TEXT_CHARSET)))


def sanitize_text(text: object, max_length: int = MAX_TEXT_CHARS) -> str:
    """Return ``text`` as a string inside :func:`text_space`.

    Characters outside the charset become ``?`` and text longer than ``max_length`` is cut
    with a ``...[truncated]`` marker.

    >>> sanitize_text("caf\\u00e9 ok")
    'caf? ok'
    >>> len(sanitize_text("x" * 100, max_length=20))
    20
    """
    s = text if isinstance(text, str) else str(text)
    if _OUTSIDE_CHARSET.search(s) is not None:  # one C-level scan: this runs on every field of every step
        s = _OUTSIDE_CHARSET.sub("?", s)
    if len(s) > max_length:
        keep = max(0, max_length - len(_TRUNCATION_MARK))
        s = (s[:keep] + _TRUNCATION_MARK)[:max_length]
    return s


def coerce_action(action: object, max_chars: int = MAX_ACTION_CHARS) -> tuple[str | None, str]:
    """Turn an agent's action into a stripped string, or say why it cannot be one.

    Returns ``(action, "")`` on success and ``(None, reason)`` otherwise. Never raises.

    >>> coerce_action("  go to desk 1 ")
    ('go to desk 1', '')
    >>> coerce_action(3)
    (None, 'the action must be a string, got int')
    """
    if isinstance(action, bytes):
        try:
            action = action.decode("utf-8")
        except UnicodeDecodeError:
            return None, "the action is bytes that are not valid UTF-8"
    if not isinstance(action, str):
        return None, f"the action must be a string, got {type(action).__name__}"
    if len(action) > max_chars:
        return None, f"the action is {len(action)} characters long; the limit is {max_chars}"
    action = action.strip()
    if not action:
        return None, "the action is empty"
    return action, ""


class TextEnv(gym.Env[dict[str, str], str]):
    """Base class of the text environments: spaces, transcript, instructions and ``ansi`` rendering.

    Subclasses set :attr:`intro` (and :attr:`answer_formats` when their answers are not commands),
    call :meth:`_observe` to build observations (it sanitizes every field and records the
    transcript) and implement ``reset``/``step``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 4}
    observation_keys: ClassVar[tuple[str, ...]] = ("observation", "task", "admissible_actions")
    intro: ClassVar[str] = "You are an agent acting in a text environment."
    """Who the agent is and what the world is: the first thing a prompt says."""
    answer_formats: ClassVar[Mapping[str, ResponseFormat]] = ANSWER_FORMATS
    """The act-phase answer formats this env offers, by name; the first is the default."""
    pending_options: dict[str, Any] | None = None
    """Options merged into the next ``reset`` and then cleared: lets a vector env give each worker its
    own task (``vec.set_attr("pending_options", [{"task_id": ...}, ...])``), which ``reset`` cannot."""

    def __init__(self, render_mode: str | None = None, answer_format: str | None = None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        answer_format = answer_format or next(iter(self.answer_formats))
        if answer_format not in self.answer_formats:
            raise ValueError(f"answer_format must be one of {list(self.answer_formats)}, got {answer_format!r}")
        self.render_mode = render_mode
        self.answer_format = answer_format
        self.observation_space = spaces.Dict({key: text_space() for key in self.observation_keys})
        self.action_space = text_space(MAX_ACTION_CHARS)
        self._transcript: list[str] = []

    @property
    def instructions(self) -> Instructions:
        """The intro and the answer format of each phase (``env.unwrapped.instructions``)."""
        return self.instructions_for(self.answer_format)

    @classmethod
    def instructions_for(cls, answer_format: str | None = None) -> Instructions:
        """The instructions an instance made with ``answer_format`` has, without making one (no engine loaded)."""
        answer_format = answer_format or next(iter(cls.answer_formats))
        return Instructions(intro=cls.intro, formats={"act": cls.answer_formats[answer_format]})

    def take_pending_options(self, options: dict[str, Any] | None) -> dict[str, Any]:
        """``options`` updated with :attr:`pending_options` (per-env values win), which is then cleared."""
        merged = {**(options or {}), **(self.pending_options or {})}
        self.pending_options = None
        return merged

    def _observe(self, action: str | None = None, **fields: object) -> dict[str, str]:
        """Build a sanitized observation dict and append it to the transcript."""
        obs = {key: sanitize_text(fields.get(key, "")) for key in self.observation_keys}
        if action is None:
            self._transcript = [obs["task"], obs["observation"]] if obs["task"] else [obs["observation"]]
        else:
            self._transcript.append(f"> {sanitize_text(action, 512)}\n{obs['observation']}")
        return obs

    def render(self) -> str | None:
        """With ``render_mode="ansi"``, the episode transcript so far."""
        if self.render_mode == "ansi":
            return "\n\n".join(self._transcript) + "\n"
        return None
