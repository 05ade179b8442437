"""The two-stage learner's part of the recipes (:mod:`agents.recipes`): Skill1's part, plus SKILL0's values of
:data:`~agents.skill1to0.config.STAGE2_SWITCHES` (its curriculum's schedule and validation).

SKILL0's part also sets shared GRPO settings (e.g. ``history_length``, ``kl_coef``); the two stages share one
value of each, so Skill1's (stage 1, and the GRPO part) stays and SKILL0's is left out, as is its ``mode`` (stage 2
is always the curriculum) and its ``eval_env_kwargs`` (an env setting of both stages).
"""

from __future__ import annotations

from typing import Any

from agents.skill0.recipes import SKILL0_RECIPES
from agents.skill1.recipes import SKILL1_RECIPES
from agents.skill1to0.config import STAGE2_SWITCHES

__all__ = ["SKILL1TO0_RECIPES", "compose_parts"]


def compose_parts(stage1: dict[str, Any], stage2: dict[str, Any]) -> dict[str, Any]:
    """``stage1``'s part with ``stage2``'s :data:`STAGE2_SWITCHES` on top, in the general part and per env family.

    >>> compose_parts({"top_k": 3, "env:webshop": {"invalid_penalty": 0.5}},
    ...               {"kl_coef": 0.0, "test_freq": 5, "env:searchqa": {"budget_schedule": [5, 3, 0], "history_length": 4}})
    {'top_k': 3, 'env:webshop': {'invalid_penalty': 0.5}, 'test_freq': 5, 'env:searchqa': {'budget_schedule': [5, 3, 0]}}
    """
    out = dict(stage1)
    for key, value in stage2.items():
        if key.startswith("env:"):
            own = {k: v for k, v in value.items() if k in STAGE2_SWITCHES}
            if own:
                out[key] = {**out.get(key, {}), **own}
        elif key in STAGE2_SWITCHES:
            out[key] = value
    return out


SKILL1TO0_RECIPES: dict[str, dict[str, Any]] = {
    name: compose_parts(SKILL1_RECIPES.get(name, {}), SKILL0_RECIPES.get(name, {}))
    for name in sorted(SKILL1_RECIPES.keys() | SKILL0_RECIPES.keys())
}
"""Recipe name → ``Skill1To0Config`` overrides (:func:`compose_parts` of Skill1's and SKILL0's parts)."""
