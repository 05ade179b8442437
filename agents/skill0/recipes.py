"""SKILL0's part of the recipes (:mod:`agents.recipes`): ``SKILL0_RECIPES[recipe]`` holds the
``Skill0Config`` overrides that ``--recipe released`` (ZJU-REAL/SkillZero's code and launch scripts)
and ``--recipe paper`` (the SKILL0 paper's text) apply on top of the GRPO part; an optional
``"env:<family>"`` sub-dict (e.g. ``"env:searchqa"``) applies only to that env family."""

from __future__ import annotations

from typing import Any

__all__ = ["SKILL0_RECIPES"]

SKILL0_RECIPES: dict[str, dict[str, Any]] = {"released": {}, "paper": {}}
