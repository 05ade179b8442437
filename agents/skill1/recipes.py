"""Skill1's part of the recipes (:mod:`agents.recipes`): ``SKILL1_RECIPES[recipe]`` holds the
``Skill1Config`` overrides that ``--recipe released`` (AlphaLab-USTC/Skill1's code and launch scripts)
and ``--recipe paper`` (the Skill1 paper's text) apply on top of the GRPO part; an optional
``"env:<family>"`` sub-dict (e.g. ``"env:webshop"``) applies only to that env family."""

from __future__ import annotations

from typing import Any

__all__ = ["SKILL1_RECIPES"]

SKILL1_RECIPES: dict[str, dict[str, Any]] = {"released": {}, "paper": {}}
