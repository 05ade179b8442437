"""Settings dataclasses declared once: a field with its help text, the check of ``Literal`` choices, and a
dataclass made of another one's fields.

* :func:`config_field` — a dataclass field with its help text (the CLI's flag help);
* :func:`check_choices` — every field annotated ``Literal[...]`` holds one of its choices, or a ``ValueError``;
* :func:`config_subset` — some fields of a settings dataclass as a dataclass to inherit from, so a learner's
  config offers the env's switches without declaring them again.

:class:`~skill_gym.skill_env.SkillConfig` and the learners' configs (``agents``) use them.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal

__all__ = ["check_choices", "config_field", "config_subset"]


def config_field(default: Any, help: str) -> Any:
    """A dataclass field with its help text (``field.metadata["help"]``)."""
    return dataclasses.field(default=default, metadata={"help": help})


def check_choices(config: Any) -> None:
    """Raise a ``ValueError`` naming the field, its choices and the value when a field annotated ``Literal[...]``
    holds another value (string annotations are resolved).

    >>> @dataclasses.dataclass
    ... class Run:
    ...     mode: Literal["fast", "slow"] = "fast"
    >>> check_choices(Run(mode="medium"))
    Traceback (most recent call last):
    ...
    ValueError: mode must be one of fast, slow; got 'medium'
    """
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        hint = hints[field.name]
        choices = typing.get_args(hint) if typing.get_origin(hint) is Literal else ()
        value = getattr(config, field.name)
        if choices and value not in choices:
            raise ValueError(f"{field.name} must be one of {', '.join(map(str, choices))}; got {value!r}")


def config_subset(source: type, names: Iterable[str], defaults: Mapping[str, Any] | None = None) -> type:
    """A dataclass with the fields ``names`` of the dataclass ``source``, in that order: the same types, help
    texts and defaults, but the defaults given in ``defaults``.

    >>> @dataclasses.dataclass
    ... class Env:
    ...     top_k: int = config_field(3, "Candidates per query.")
    ...     seed: int = config_field(0, "Seed.")
    >>> Switches = config_subset(Env, ["top_k"], {"top_k": 5})
    >>> Switches(), dataclasses.fields(Switches)[0].metadata["help"]
    (EnvSubset(top_k=5), 'Candidates per query.')
    """
    defaults, names = dict(defaults or {}), list(names)
    hints = typing.get_type_hints(source)
    by_name = {f.name: f for f in dataclasses.fields(source)}
    if unknown := [name for name in names if name not in by_name]:
        raise ValueError(f"{source.__name__} has no field(s) {', '.join(unknown)}")
    if outside := sorted(defaults.keys() - set(names)):
        raise ValueError(f"defaults given for field(s) outside the subset: {', '.join(outside)}")
    fields = []
    for name in names:
        field = by_name[name]
        if name in defaults:
            default = dataclasses.field(default=defaults[name], metadata=field.metadata)
        elif field.default_factory is not dataclasses.MISSING:
            default = dataclasses.field(default_factory=field.default_factory, metadata=field.metadata)
        else:
            default = dataclasses.field(default=field.default, metadata=field.metadata)
        fields.append((name, hints[name], default))
    return dataclasses.make_dataclass(f"{source.__name__}Subset", fields, namespace={"__module__": source.__module__})
