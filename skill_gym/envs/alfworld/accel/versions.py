"""The upstream versions the accelerator was checked against, and the guard that enforces them.

The accelerated engine re-implements parts of textworld's PDDL environment (text derivation, state queries,
reset) and relies on fast-downward's C interface (``set_state_id``, lazy ``load_sas_replan``). Its output
was proven identical to the stock engine's on exactly these versions (``tests/test_alfworld_accel.py``); on
any other version :func:`accelerator_problem` says why and the stock engine runs instead.
"""

from __future__ import annotations

import functools
import importlib.metadata
import warnings

__all__ = ["PINNED", "accelerator_available", "accelerator_problem"]

PINNED: dict[str, str] = {
    "alfworld": "0.4.2",
    "textworld": "1.7.0",
    "fast-downward-textworld": "20.6.4",
    "tatsu": "5.8.3",
}
"""Distribution name -> the exact version the accelerator supports (also pinned in the ``alfworld`` extra)."""


def accelerator_problem() -> str | None:
    """Why the accelerator can't run with the installed packages, or ``None`` when it can."""
    for name, wanted in PINNED.items():
        try:
            found = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return f"{name} is not installed"
        if found != wanted:
            return f"{name} {found} is installed, the accelerator supports {name}=={wanted}"
    return None


@functools.cache
def accelerator_available() -> bool:
    """Whether the accelerated engine may run; warns once (one line) when it may not."""
    problem = accelerator_problem()
    if problem is not None:
        warnings.warn(
            f"ALFWorld accelerator disabled, running the stock engine: {problem}", RuntimeWarning, stacklevel=2
        )
    return problem is None
