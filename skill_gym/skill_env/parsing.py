"""The agent's answers in the skill phases: their formats (the one place they are written) and parsers.

:data:`PHASE_FORMATS` holds the answer format of ``select``, ``rerank`` and ``distill`` as the skill env
declares them in its :class:`~skill_gym.envs.instructions.Instructions`. Three parsers read the
answers; each is tolerant where the intent is clear and otherwise returns a reason that names the
expected format; none raises on any input.

* :func:`parse_query` — ``<query>...</query>`` (or a short untagged sentence);
* :func:`parse_rank` — ``<rank>2,1,3</rank>`` over 1-based candidate numbers;
* :func:`parse_skill` — a skill as JSON: ``{"description", "strategy"}`` or Skill1's released
  ``{"subtasks", "task_success", "action_lesson", "navigation_lesson", "description_head"}``.

:func:`phase_formats` gives the formats for either distill answer (``distill_format``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from skill_gym.envs.instructions import WholeResponse, tag_content
from skill_gym.library.record import is_unicode_text

__all__ = [
    "LESSONS_FORMAT",
    "PHASE_FORMATS",
    "QUERY_FORMAT",
    "RANK_FORMAT",
    "SKILL_FORMAT",
    "ParsedSkill",
    "parse_query",
    "parse_rank",
    "parse_skill",
    "phase_formats",
]

QUERY_FORMAT = "<query>one sentence describing the skill you need</query>"
RANK_FORMAT = "<rank>2,1,3</rank> (candidate numbers, most useful first)"
SKILL_FORMAT = '{"description": "when this skill applies", "strategy": "what to do, step by step"}'
LESSONS_FORMAT = (
    '{"subtasks": [{"name": "...", "status": "completed or incomplete"}], "task_success": true or false, '
    '"action_lesson": "...", "navigation_lesson": "...", "description_head": "the kind of task this helps with"}'
)
MAX_QUERY_CHARS = 500

PHASE_FORMATS = {
    "select": WholeResponse(
        "Before acting you may consult a library of skills learnt from earlier tasks. Describe in one "
        "sentence the skill that would help most, inside <query> </query>."
    ),
    "rerank": WholeResponse(
        "Rank the candidates from most to least useful for this task by their numbers, inside "
        "<rank> </rank>, for example <rank>2,1,3</rank>."
    ),
    "distill": WholeResponse(
        'Reply with the JSON object only: {"description": "...", "strategy": "..."}. The description says '
        "when the skill applies (it is what future tasks are matched against); the strategy says what to do."
    ),
}
"""The answer format of each skill phase, as the skill env declares it (the prompt text of the phase)."""
_LESSONS_DISTILL = WholeResponse(
    "Review the attempt: list its subtasks and whether each was completed, say whether the task succeeded, "
    "and give the key action lesson and the key navigation lesson, with the objects and places involved, "
    f"plus a one-line description of the kind of task they help with. Reply with the JSON object only: {LESSONS_FORMAT}."
)


def phase_formats(distill_format: str = "skill") -> dict[str, WholeResponse]:
    """The phase formats for a ``distill_format`` (``"skill"`` or Skill1's released ``"lessons"``)."""
    if distill_format not in ("skill", "lessons"):
        raise ValueError(f"distill_format must be 'skill' or 'lessons', got {distill_format!r}")
    return PHASE_FORMATS if distill_format == "skill" else {**PHASE_FORMATS, "distill": _LESSONS_DISTILL}


_ANY_TAG = re.compile(r"</?\s*(think|action|answer|search|rank|query|information)\s*>", re.IGNORECASE)


def parse_query(text: object) -> tuple[str | None, str]:
    """``(query, "")`` or ``(None, reason)``.

    >>> parse_query("<think>need heating</think><query>heat a mug with the microwave</query>")
    ('heat a mug with the microwave', '')
    >>> parse_query("heat a mug")  # a short untagged sentence is taken as the query
    ('heat a mug', '')
    """
    if not isinstance(text, str):
        return None, f"the query must be text, got {type(text).__name__}"
    tagged = tag_content(text, "query")
    query = tagged if tagged is not None else text.strip()
    if tagged is None and (_ANY_TAG.search(text) or "\n" in query):
        return None, f"no query found; answer with {QUERY_FORMAT}"
    query = " ".join(query.split())
    if not is_unicode_text(query):
        return None, "the query is not valid Unicode text (it holds a lone surrogate)"
    if not query:
        return None, f"the query is empty; answer with {QUERY_FORMAT}"
    if len(query) > MAX_QUERY_CHARS:
        return None, f"the query is {len(query)} characters; keep it under {MAX_QUERY_CHARS}"
    return query, ""


def parse_rank(text: object, n_candidates: int) -> tuple[list[int] | None, str]:
    """A full ranking of ``range(n_candidates)`` (0-based) or ``(None, reason)``.

    Numbers are 1-based in the text. Repeats are ignored and unranked candidates keep their
    given order after the ranked ones.

    >>> parse_rank("<rank>3, 1</rank>", 3)
    ([2, 0, 1], '')
    >>> parse_rank("<rank>9</rank>", 3)[0] is None
    True
    """
    if not isinstance(text, str):
        return None, f"the ranking must be text, got {type(text).__name__}"
    body = tag_content(text, "rank")
    if body is None:
        if _ANY_TAG.search(text) or len(text) > 200:
            return None, f"no ranking found; answer with {RANK_FORMAT}"
        body = text
    numbers = [int(x) for x in re.findall(r"\d+", body)[:100]]
    order: list[int] = []
    for number in numbers:
        if 1 <= number <= n_candidates and number - 1 not in order:
            order.append(number - 1)
    if not order:
        return None, f"no candidate number between 1 and {n_candidates}; answer with {RANK_FORMAT}"
    order += [i for i in range(n_candidates) if i not in order]
    return order, ""


@dataclasses.dataclass(frozen=True)
class ParsedSkill:
    """A skill written by the agent: when it applies, what to do, and its own success claim."""

    description: str
    strategy: str
    claimed_success: bool | None = None


def parse_skill(text: object, default_description: str = "") -> tuple[ParsedSkill | None, str]:
    """Parse a distilled skill from JSON text (a ```json block, or the outermost braces).

    Either format is accepted. Lessons become the strategy "Action Insight: … | Navigation Insight: …"
    (each kept when longer than 5 characters, as Skill1's released code does); a skill without a
    description takes ``default_description`` when one is given (Skill1 stores the task text).

    >>> parse_skill('{"action_lesson": "Open the fridge first.", "navigation_lesson": "no"}', "cool a mug")[0]
    ParsedSkill(description='cool a mug', strategy='Action Insight: Open the fridge first.', claimed_success=None)
    """
    if not isinstance(text, str):
        return None, f"the skill must be text, got {type(text).__name__}"
    data = _json_object(text)
    if data is None:
        return None, f"no JSON object found; answer with {SKILL_FORMAT}"
    description = _text_field(data, "description", "description_head", "when", "when_to_apply")
    strategy = _text_field(data, "strategy", "principle")
    if not strategy:
        lessons = [
            f"{label}: {data[key].strip()}"
            for key, label in (("action_lesson", "Action Insight"), ("navigation_lesson", "Navigation Insight"))
            if isinstance(data.get(key), str) and len(data[key].strip()) > 5
        ]
        strategy = " | ".join(lessons)
    description = description or " ".join(default_description.split())
    if not description:
        return None, f"the skill has no description of when it applies; answer with {SKILL_FORMAT}"
    if not strategy:
        return None, f"the skill has no strategy; answer with {SKILL_FORMAT}"
    claimed = data.get("task_success")
    claimed = claimed if isinstance(claimed, bool) else None
    return ParsedSkill(description=description, strategy=strategy, claimed_success=claimed), ""


def _json_object(text: str) -> dict[str, Any] | None:
    candidates = re.findall(r"```(?:json)?\s*(\{.*?\})\s*```", text, re.DOTALL)
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(data, dict):
            return data
    return None


def _text_field(data: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return " ".join(value.split()) if key != "strategy" else value.strip()
    return ""
