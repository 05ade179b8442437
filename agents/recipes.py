"""Recipes: named sets of config overrides that reproduce the released code or follow the papers' text.

``RECIPES[recipe][learner]`` holds the overrides of a learner's config (``"grpo"``, ``"skill1"``,
``"skill0"``, ``"skill1to0"``) for ``--recipe released`` (the released code and launch scripts that produced
the published numbers) and ``--recipe paper`` (the papers' text). Every difference is listed, with its
source, in ``docs/recipes.md``. This module holds the GRPO part (verl-agent's core, shared by all the
learners); the learner parts live beside their learners (``agents/skill1/recipes.py``,
``agents/skill0/recipes.py``; ``agents/skill1to0/recipes.py`` composes those two). A part may hold
``"env:<family>"`` sub-dicts (family: ``alfworld``, ``webshop``, ``searchqa``, ``keyword``; :func:`env_family`)
that apply only to that env family.

What a part holds: the ``paper`` recipe only where the papers' text departs from the config classes'
defaults; the ``released`` recipe every switch of the released code with its source, default or not (a later
change of a default leaves it alone), and the sizes where the launch scripts differ from the defaults (the
papers' sizes). A learner's part never repeats its recipe's GRPO part.

:func:`config_layers` is the precedence: the layers a config is built from, lowest first, which
:func:`resolve_config` lays over each other (the env keyword dicts, :data:`MERGED_FIELDS`, key by key);
:func:`recipe_parts` the order of a recipe's parts. docs/recipes.md lists both and every recipe's effective
values, generated from the code by :mod:`agents.recipes_doc`.

Example:
    >>> apply_recipe("grpo", "released", {"learning_rate": 3e-6})["learning_rate"]
    3e-06
    >>> apply_recipe("grpo", "released", {})["group_stats"]
    'turn'
"""

from __future__ import annotations

import dataclasses
from typing import Any

from agents.skill0.recipes import SKILL0_RECIPES
from agents.skill1.recipes import SKILL1_RECIPES
from agents.skill1to0.recipes import SKILL1TO0_RECIPES
from skill_gym.families import family_of

__all__ = [
    "GRPO_RECIPES",
    "MERGED_FIELDS",
    "RECIPES",
    "SIZE_FIELDS",
    "Layer",
    "apply_recipe",
    "config_layers",
    "env_family",
    "preset_values",
    "recipe_names",
    "recipe_parts",
    "resolve_config",
]

GRPO_RECIPES: dict[str, dict[str, Any]] = {
    # langfengQ/verl-agent: examples/grpo_trainer/run_alfworld.sh (and gigpo_trainer/), verl/trainer/config/
    # ppo_trainer.yaml, verl/trainer/ppo/core_algos.py, ray_trainer.py, dp_actor.py, env_package/*/projection.py.
    "released": {
        "lora_rank": 0,  # actor fine-tunes every weight; a frozen reference model for the KL
        "learning_rate": 1e-6,
        "weight_decay": 0.01,  # ppo_trainer.yaml actor.optim.weight_decay
        "warmup_steps": 0,
        "kl_coef": 0.01,  # use_kl_loss, low_var_kl
        "entropy_coef": 0.001,
        "clip_low": 0.2,
        "clip_high": 0.2,
        "dual_clip": 3.0,  # compute_policy_loss(clip_ratio_c=3.0)
        "loss_agg": "micro_token_mean",  # agg_loss("token-mean") per micro-batch / gradient_accumulation
        "ppo_epochs": 1,
        "max_grad_norm": 1.0,
        "advantage": "grpo",
        "group_stats": "turn",  # compute_mean_std_cross_steps=True
        "norm_adv_by_std": True,  # norm_adv_by_std_in_grpo; GiGPO script: mode=mean_std_norm
        "gigpo_step_weight": 1.0,
        "gigpo_gamma": 0.95,
        "reward_scale": 10.0,
        "invalid_penalty": 0.1,
        "invalid_kind": "format",  # projection's is_action_valid: the answer format only
        "env:alfworld": {"env_kwargs": {"answer_format": "verl"}},  # alfworld_projection's parsing rules
        "env:webshop": {"env_kwargs": {"answer_format": "verl"}},  # webshop_projection's
        "env:searchqa": {"env_kwargs": {"answer_format": "verl"}},  # search_projection's (its search runs)
        "invalid_penalty_scope": "turn",  # apply_invalid_action_penalty: the turn's own reward
        "history_length": 2,
        "temperature": 1.0,
        "top_p": 1.0,
        "val_temperature": 0.4,
    },
    # GRPO (Shao et al., 2024, Eq. 3), GiGPO (Feng et al., 2025, Eq. 3, 5-8) and the Skill1 / SKILL0 papers'
    # hyper-parameter tables, where they depart from the defaults (KL 0.01, clip 0.2, group statistics over the
    # group's N trajectory returns, validation temperature 0.4 are the defaults); what the text leaves open keeps
    # this project's default.
    "paper": {
        "lora_rank": 0,
        "learning_rate": 1e-6,
        "dual_clip": 0.0,
        "loss_agg": "seq_mean_token_mean",  # 1/G Σ_i 1/|o_i| Σ_t
    },
}
"""The GRPO core's part of each recipe; it applies to every learner."""

RECIPES: dict[str, dict[str, dict[str, Any]]] = {
    name: {
        "grpo": GRPO_RECIPES[name],
        "skill1": SKILL1_RECIPES.get(name, {}),
        "skill0": SKILL0_RECIPES.get(name, {}),
        "skill1to0": SKILL1TO0_RECIPES.get(name, {}),
    }
    for name in GRPO_RECIPES
}
"""Recipe name → learner name → config overrides (:func:`recipe_parts` says how they are layered)."""

SIZE_FIELDS: frozenset[str] = frozenset(
    {
        "total_steps", "tasks_per_step", "group_size", "max_new_tokens", "max_turns",
        "mini_batch_size", "micro_batch_size", "micro_batch_tokens", "gradient_checkpointing", "eval_tasks",
        "eval_envs",
    }
)  # fmt: skip
"""Fields that are size limits: the ``cpu`` preset's values for them win over a recipe's."""

MERGED_FIELDS: frozenset[str] = frozenset({"env_kwargs", "eval_env_kwargs"})
"""Dict fields merged key by key across the layers (recipe, then preset, then the user's), so a recipe's
``answer_format`` and the ``cpu`` preset's ``max_steps`` both survive a user's ``--env-kwargs``."""


def recipe_names() -> list[str]:
    """The recipes one can ask for."""
    return sorted(RECIPES)


def env_family(env_id: str) -> str:
    """The env family a recipe's ``"env:<family>"`` part is keyed by ('' for an id no family registered).

    >>> env_family("SkillWebShop-v0"), env_family("Alfworld-v0"), env_family("SearchQA-v0")
    ('webshop', 'alfworld', 'searchqa')
    """
    found = family_of(env_id)
    return found.name if found is not None else ""


def apply_recipe(learner: str, recipe: str | None, given: dict[str, Any], env_id: str | None = None) -> dict[str, Any]:
    """Config overrides of ``recipe`` for ``learner`` with the user's ``given`` settings on top.

    The env family is taken from ``given["env_id"]``, else ``env_id`` (the config's default env). With
    ``recipe=None`` this returns ``given``. The recipe's name is recorded as ``recipe``.
    """
    if recipe is None:
        return dict(given)
    env = given.get("env_id", env_id)
    merged: dict[str, Any] = {}
    for _, part in recipe_parts(learner, recipe, env_family(env) if env else None):
        merged.update(part)
    merged["recipe"] = recipe
    return _layered(merged, given)


def recipe_parts(learner: str, recipe: str, family: str | None) -> list[tuple[str, dict[str, Any]]]:
    """The parts of ``recipe`` for ``learner`` on an env of ``family``, each named by where it is held, lowest
    first: a later part's value beats an earlier one's (the learner's beats the GRPO part's, an env-specific
    one a general one).

    >>> [name for name, _ in recipe_parts("skill1", "released", "webshop")]  # doctest: +NORMALIZE_WHITESPACE
    ['RECIPES["released"]["grpo"]', 'RECIPES["released"]["skill1"]', 'RECIPES["released"]["grpo"]["env:webshop"]',
     'RECIPES["released"]["skill1"]["env:webshop"]']
    """
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of: {', '.join(recipe_names())}")
    parts = RECIPES[recipe]
    if learner not in parts:
        raise ValueError(f"recipe {recipe!r} has no part for learner {learner!r} (it has: {', '.join(parts)})")
    learners, where = list(dict.fromkeys(("grpo", learner))), f'RECIPES["{recipe}"]'
    general = [
        (f'{where}["{name}"]', {k: v for k, v in parts[name].items() if not k.startswith("env:")}) for name in learners
    ]
    if not family:
        return general
    return general + [(f'{where}["{name}"]["env:{family}"]', parts[name].get(f"env:{family}", {})) for name in learners]


def _layered(lower: dict[str, Any], upper: dict[str, Any]) -> dict[str, Any]:
    """``upper`` over ``lower``; the :data:`MERGED_FIELDS` dicts are merged key by key."""
    out = {**lower, **upper}
    for name in MERGED_FIELDS & lower.keys() & upper.keys():
        out[name] = {**lower[name], **upper[name]}
    return out


def preset_values(cls: type, preset: str, given: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fields a preset sets: ``paper`` none (the class defaults are the papers' values); ``cpu`` those
    where ``cls.cpu_defaults(**given)`` differs from ``cls(**given)``."""
    if preset == "paper":
        return {}
    if preset != "cpu":
        raise ValueError(f"unknown preset {preset!r}; choose cpu or paper")
    small, default = cls.cpu_defaults(**(given or {})), cls(**(given or {}))
    return {
        f.name: getattr(small, f.name)
        for f in dataclasses.fields(cls)
        if getattr(small, f.name) != getattr(default, f.name)
    }


@dataclasses.dataclass(frozen=True)
class Layer:
    """One layer of a config's settings (:func:`config_layers`)."""

    name: str
    source: str
    """Where its settings come from, in words (markdown: docs/recipes.md lists them)."""
    values: dict[str, Any]
    """The settings it lays over the layers below."""


def config_layers(learner: str, cls: type, preset: str, recipe: str | None, given: dict[str, Any]) -> list[Layer]:
    """The layers a ``cls`` config of ``learner`` is built from, lowest first: the precedence of the settings.

    >>> from agents.grpo.config import GRPOConfig
    >>> [layer.name for layer in config_layers("grpo", GRPOConfig, "cpu", "released", {"seed": 1})]
    ['defaults', 'preset', 'recipe', 'preset limits', 'flags']
    """
    from_preset = preset_values(cls, preset, {k: v for k, v in given.items() if k not in MERGED_FIELDS})
    env = given.get("env_id", from_preset.get("env_id", getattr(cls(), "env_id", None)))
    from_recipe = apply_recipe(learner, recipe, {}, env_id=env) if recipe is not None else {}
    limits = {k: v for k, v in from_preset.items() if k in SIZE_FIELDS | MERGED_FIELDS}
    return [
        Layer("defaults", "the defaults of the learner's config class (with the papers' sizes)", {}),
        Layer("preset", "`--preset cpu`: the values of `cls.cpu_defaults()` that differ from the defaults; "
                        "`--preset paper`: none", from_preset),
        Layer("recipe", "`--recipe`: its parts for the learner and the env's family (`recipe_parts`), each over "
                        "the one before", from_recipe),
        Layer("preset limits", "the preset's values of the size limits (`SIZE_FIELDS`) and of the env dicts "
                               "again: the preset picks the sizes, the recipe the algorithm", limits),
        Layer("flags", "the user's settings (the flags of `skill-gym train`)", dict(given)),
    ]  # fmt: skip


def resolve_config(learner: str, cls: type, preset: str, recipe: str | None, given: dict[str, Any]) -> Any:
    """A ``cls`` config from the preset, the recipe and the user's settings: :func:`config_layers`, each over the
    ones below it (:data:`MERGED_FIELDS` merged key by key)."""
    kwargs: dict[str, Any] = {}
    for layer in config_layers(learner, cls, preset, recipe, given):
        kwargs = _layered(kwargs, layer.values)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ValueError(f"{cls.__name__} has no setting(s) {', '.join(unknown)} (from recipe {recipe!r})")
    return cls(**kwargs)
