"""What an env tells an agent: its intro, the answer format of each phase, and how a response becomes an action.

This module holds:

* :class:`ResponseFormat` — the protocol of one answer format: the ``instruction`` shown to the agent and
  ``parse(text) -> (action, format_valid)``, which never raises;
* the formats the envs use: :class:`ThinkAction` (``<think>…</think><action>…</action>``, verl-agent's format),
  :class:`VerlThinkAction` (the same format by verl-agent's parsing rules),
  :class:`PlainAction` (the action alone) and :class:`WholeResponse` (the whole text goes to the env, which
  parses it — the skill phases); Search-QA's ``<search>``/``<answer>`` formats live beside that env
  (``skill_gym.envs.searchqa.turns``);
* :class:`Demonstration` — a worked example of the act phase (an observation and the right answer in the
  act format) that a prompt may show first as a finished exchange: small models copy its form;
* :class:`Instructions` — an env's intro plus one format per phase; every env exposes one as
  ``env.unwrapped.instructions`` (a vector env: ``vec.get_attr("instructions")``), so a learner or a
  third-party agent acts in any registered env without knowing its name.

>>> fmt = ThinkAction()
>>> fmt.parse("<think>the mug is hot</think><action>take mug 1 from countertop 1</action>")
('take mug 1 from countertop 1', True)
>>> fmt.parse("take mug 1")
('', False)
>>> Instructions(intro="Shop.", formats={"act": PlainAction()}).parse("click[buy now]\\nthanks", "act")
('click[buy now]', True)
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

__all__ = [
    "ANSWER_FORMATS",
    "Demonstration",
    "Instructions",
    "PlainAction",
    "ResponseFormat",
    "ThinkAction",
    "VerlThinkAction",
    "WholeResponse",
    "tag_content",
]

_MAX_TAG_SCAN = 200_000
"""Responses longer than this are scanned only in their last part (a model's runaway output)."""


def tag_content(text: str, tag: str) -> str | None:
    """Content of the last complete ``<tag>...</tag>`` in ``text`` (stripped), else ``None``.

    >>> tag_content("<a>1</a> <a> 2 </a>", "a")
    '2'
    """
    matches = re.findall(rf"<\s*{tag}\s*>(.*?)<\s*/\s*{tag}\s*>", text[-_MAX_TAG_SCAN:], re.IGNORECASE | re.DOTALL)
    return matches[-1].strip() if matches else None


@runtime_checkable
class ResponseFormat(Protocol):
    """One answer format: what the agent is told, and how its text becomes an env action."""

    @property
    def instruction(self) -> str:
        """The sentence(s) that tell the agent how to answer."""
        ...

    def parse(self, text: str) -> tuple[str, bool]:
        """``(action_for_env, format_valid)``; never raises. An invalid response may still carry an action."""
        ...


@dataclasses.dataclass(frozen=True)
class ThinkAction:
    """``<think>reasoning</think><action>command</action>`` (verl-agent's ALFWorld/WebShop format).

    Without an ``<action>`` tag the action is empty (the env answers "invalid action"); with ``think``,
    a missing ``<think>`` keeps the action but marks the format invalid.
    """

    think: bool = True

    @property
    def instruction(self) -> str:
        first = "First reason about the situation inside <think> </think>. " if self.think else ""
        return f"{first}Then write exactly one admissible action inside <action> </action>."

    def parse(self, text: str) -> tuple[str, bool]:
        action = tag_content(text, "action") if isinstance(text, str) else None
        if action is None:
            return "", False
        return action, not self.think or tag_content(text, "think") is not None


_CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclasses.dataclass(frozen=True)
class VerlThinkAction:
    """``<think>…</think><action>…</action>`` parsed by verl-agent's rules (``alfworld_projection``,
    ``webshop_projection`` in ``agent_system/environments/env_package/*/projection.py``), for ``--recipe released``.

    The text is lower-cased; the action lies between the first ``<action>`` and the first ``</action>`` (empty
    when that closing tag comes first); without both tags the action is the last ``fallback_chars`` characters
    (ALFWorld 30, WebShop 20) and the format is invalid; the format is also invalid without a literal ``<think>``
    and ``</think>`` anywhere, or with a CJK character. The default :class:`ThinkAction` instead takes the last
    complete ``<action>`` pair, keeps case and accepts spaces and any case inside the tags.

    >>> VerlThinkAction().parse("<think>ok</think><action>Go To Desk 1</action><action>look</action>")
    ('go to desk 1', True)
    >>> VerlThinkAction().parse("<action>look</action> 好")
    ('look', False)
    """

    fallback_chars: int = 30

    @property
    def instruction(self) -> str:
        return ThinkAction(think=True).instruction

    def parse(self, text: str) -> tuple[str, bool]:
        if not isinstance(text, str):
            return "", False
        lowered = text.lower()
        start, end = lowered.find("<action>"), lowered.find("</action>")
        if start == -1 or end == -1:
            return lowered[-self.fallback_chars :], False
        action = lowered[start + len("<action>") : end].strip()
        valid = "<think>" in text and "</think>" in text and _CJK.search(text) is None
        return action, valid


@dataclasses.dataclass(frozen=True)
class PlainAction:
    """The action alone: the first non-empty line of the response (tiny test policies, scripted agents)."""

    @property
    def instruction(self) -> str:
        return "Answer with the action only, exactly as listed."

    def parse(self, text: str) -> tuple[str, bool]:
        lines = [line.strip() for line in text.splitlines() if line.strip()] if isinstance(text, str) else []
        return (lines[0], True) if lines else ("", False)


@dataclasses.dataclass(frozen=True)
class WholeResponse:
    """The whole response goes to the env, which parses it (the skill phases: query, ranking, skill JSON)."""

    guide: str

    @property
    def instruction(self) -> str:
        return self.guide

    def parse(self, text: str) -> tuple[str, bool]:
        return (text, bool(text.strip())) if isinstance(text, str) else ("", False)


ANSWER_FORMATS: Mapping[str, ResponseFormat] = {
    "tagged": ThinkAction(think=True),
    "action": ThinkAction(think=False),
    "plain": PlainAction(),
    "verl": VerlThinkAction(),
}
"""Act-phase formats of the command-style envs, by the name an env's ``answer_format=`` argument takes."""


@dataclasses.dataclass(frozen=True)
class Demonstration:
    """A worked example of the act phase: an observation the env could show, and the right answer to it.

    ``response`` is written in the act format of the instructions that carry it. A prompt builder may show it
    as a finished user/assistant exchange before the real prompt (one-shot prompting); a small instruct model
    then answers in that form instead of writing sentences. The example task should not be one of the env's
    own tasks, so it gives away no answer.
    """

    observation: Mapping[str, str]
    response: str


@dataclasses.dataclass(frozen=True)
class Instructions:
    """An env's intro text, the answer format of each phase (``"act"`` always; skill envs add theirs) and,
    optionally, a :class:`Demonstration` of the act phase and of other phases (``phase_demonstrations``)."""

    intro: str
    formats: Mapping[str, ResponseFormat]
    demonstration: Demonstration | None = None
    phase_demonstrations: Mapping[str, Demonstration] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if "act" not in self.formats:
            raise ValueError(f"instructions need an 'act' format, got phases {sorted(self.formats)}")

    def format(self, phase: str) -> ResponseFormat:
        """The format of ``phase`` (an empty or unknown phase is ``act``)."""
        return self.formats.get(phase or "act", self.formats["act"])

    def parse(self, text: str, phase: str = "act") -> tuple[str, bool]:
        """``(action_for_env, format_valid)`` of a raw model response in ``phase``."""
        return self.format(phase).parse(text)

    def with_phases(self, **formats: ResponseFormat) -> Instructions:
        """These instructions with more phases (how the skill env adds select, rerank and distill)."""
        return dataclasses.replace(self, formats={**self.formats, **formats})

    def with_demonstrations(self, **examples: Demonstration) -> Instructions:
        """These instructions with worked examples of more phases than ``act``."""
        return dataclasses.replace(self, phase_demonstrations={**self.phase_demonstrations, **examples})

    def demonstration_for(self, phase: str) -> Demonstration | None:
        """The worked example of ``phase`` (``act``: :attr:`demonstration`), if there is one."""
        phase = phase or "act"
        return self.demonstration if phase == "act" else self.phase_demonstrations.get(phase)
