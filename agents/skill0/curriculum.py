"""SKILL0's curriculum: which skill files stay in context, decided from validation with and without them.

This module holds the pure decision functions and :class:`Curriculum`, the state a run keeps:

* :func:`budget_at` — the linearly decaying budget (e.g. ``[6, 3, 0]`` over the run); the first
  phase's budget applies from step 0 (upstream's first validation used the last budget by mistake:
  ``step0="last"`` reproduces it);
* :func:`file_deltas` — per-file helpfulness: mean over the file's task types of
  ``success_with − success_without``;
* :func:`choose_active` — drop files with Δ < 0, sort by Δ, keep the general file plus the best
  ``budget − 1``; budget 0 means no skills at all.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Literal

__all__ = ["Curriculum", "budget_at", "choose_active", "file_deltas"]


def budget_at(
    step: int, schedule: Sequence[int], total_steps: int, test_freq: int, step0: Literal["first", "last"] = "first"
) -> int:
    """The budget decided at validation ``step`` (0 = before training).

    The run's validations are split into ``len(schedule)`` equal phases. ``step0="last"`` reproduces
    SkillZero's released ``get_current_max_set``: at step 0 its phase index is ``(0 − 1) // test_freq
    // per_phase = −1``, the schedule's last budget (0: the first ``test_freq`` steps train without skills).

    >>> [budget_at(s, [6, 3, 0], 180, 10) for s in (0, 10, 60, 70, 120, 130, 180)]
    [6, 6, 6, 3, 3, 0, 0]
    >>> budget_at(0, [6, 3, 0], 180, 10, step0="last")
    0
    """
    if test_freq <= 0:
        raise ValueError(f"test_freq must be positive, got {test_freq}")
    if step == 0 and step0 == "last":
        return int(schedule[-1])
    validations = max(total_steps // test_freq, 1)
    per_phase = max(validations // len(schedule), 1)
    index = min(max(step - 1, 0) // test_freq // per_phase, len(schedule) - 1)
    return int(schedule[index])


def file_deltas(
    with_skills: Mapping[str, float], without_skills: Mapping[str, float], mapping: Mapping[str, str]
) -> dict[str, float]:
    """Δ per skill file: the mean of ``with − without`` over the task types mapped to it."""
    per_file: dict[str, list[float]] = defaultdict(list)
    for task_type, success in with_skills.items():
        if task_type in without_skills and task_type in mapping:
            per_file[mapping[task_type]].append(success - without_skills[task_type])
    return {name: sum(values) / len(values) for name, values in per_file.items()}


def choose_active(deltas: Mapping[str, float], budget: int, general: str = "general_skills") -> list[str]:
    """The general file plus the ``budget − 1`` most helpful task files with Δ ≥ 0.

    >>> choose_active({"heat": 0.2, "cool": -0.1, "clean": 0.5}, budget=3)
    ['general_skills', 'clean', 'heat']
    >>> choose_active({"heat": 0.2}, budget=0)
    []
    """
    if budget <= 0:
        return []
    ranked = sorted((name for name, d in deltas.items() if d >= 0 and name != general), key=lambda n: (-deltas[n], n))
    return [general, *ranked[: budget - 1]]


@dataclasses.dataclass
class Curriculum:
    """The curriculum's state: schedule, the active files, and every decision made so far."""

    schedule: list[int]
    total_steps: int
    test_freq: int
    active: list[str]
    general: str = "general_skills"
    decisions: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    step0: Literal["first", "last"] = "first"

    def update(
        self,
        step: int,
        with_skills: Mapping[str, float],
        without_skills: Mapping[str, float],
        mapping: Mapping[str, str],
    ) -> dict[str, Any]:
        """Decide the active files after the validation at ``step``; returns the decision record."""
        budget = budget_at(step, self.schedule, self.total_steps, self.test_freq, self.step0)
        deltas = file_deltas(with_skills, without_skills, mapping)
        self.active = choose_active(deltas, budget, self.general)
        decision = {
            "step": step,
            "budget": budget,
            "active": list(self.active),
            "file_deltas": deltas,
            "task_deltas": {t: with_skills[t] - without_skills[t] for t in with_skills if t in without_skills},
        }
        self.decisions.append(decision)
        return decision

    def state(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Curriculum:
        return cls(**dict(state))
