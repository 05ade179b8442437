"""Killing a Ray actor in a test: ``ray.kill`` returns before the actor is gone, so wait until it is."""

from __future__ import annotations

import time
from typing import Any

import ray


def kill_until_dead(actor: Any, timeout: float = 30.0) -> None:
    """``ray.kill(actor)``, then return once a call to it fails (an actor's first call may still be served)."""
    ray.kill(actor, no_restart=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ray.get(actor.__ray_ready__.remote(), timeout=timeout)
        except ray.exceptions.RayActorError:
            return
        time.sleep(0.05)
    raise AssertionError(f"the actor still answers {timeout} s after ray.kill")
