"""Checkpoints that resume a run exactly: policy, optimizer, scheduler, RNG, data position, library, learner state.

This module holds :func:`save_checkpoint` and :func:`load_checkpoint`. A checkpoint is a folder
``<run_dir>/checkpoints/step_<N>`` written under a staging name and renamed when complete (a killed
save leaves the previous checkpoint intact); ``checkpoints/latest`` names the newest. It holds the
trainable weights (safetensors; the peft adapter too), optimizer and scheduler states, the torch (CPU,
and CUDA when used), NumPy, Python and task-sampler RNG states, the learner's own JSON state (e.g. SKILL0's curriculum)
and a snapshot of the skill library. Nothing is unpickled except torch's own tensor states
(``weights_only=True``).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.grpo.update import PolicyUpdate

__all__ = ["latest_checkpoint", "load_checkpoint", "save_checkpoint"]


def save_checkpoint(
    run_dir: Path,
    step: int,
    policy: PolicyUpdate,
    sampler: np.random.Generator,
    extra_state: Callable[[Path], dict[str, Any]],
    library_path: Path | None,
    keep: int,
) -> Path:
    """Write the checkpoint of ``step``; keep the newest ``keep`` checkpoints; return its folder."""
    from safetensors.torch import save_file

    root = run_dir / "checkpoints"
    final = root / f"step_{step:06d}"
    staging = root / f".staging_{step:06d}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model = policy.model
    trainable = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
    save_file(trainable, staging / "trainable.safetensors")
    if policy.uses_lora:
        model.save_pretrained(staging / "adapter")
    torch.save(policy.optimizer.state_dict(), staging / "optimizer.pt")
    torch.save(policy.scheduler.state_dict(), staging / "scheduler.pt")
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # sampling on a GPU draws from its generator
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, staging / "rng.pt")
    state = {
        "step": step,
        "sampler": _jsonable(sampler.bit_generator.state),
        "numpy": _jsonable(np.random.get_state(legacy=False)),
        "python": _jsonable(random.getstate()),
        "extra": extra_state(staging),
    }
    (staging / "trainer_state.json").write_text(json.dumps(state))
    if library_path is not None and library_path.is_file():
        from skill_gym.library import SkillLibrary

        with SkillLibrary(library_path) as lib:
            lib.snapshot(staging, step)
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    pointer = root / ".latest.tmp"
    pointer.write_text(final.name)
    os.replace(pointer, root / "latest")  # a killed write leaves the old pointer whole
    older = sorted(p for p in root.glob("step_*") if p.is_dir() and p.name < final.name)
    for old in older[: max(len(older) - (keep - 1), 0)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint ``checkpoints/latest`` names, else the newest complete ``step_*`` folder; ``None``: none."""
    root = Path(run_dir) / "checkpoints"
    named = root / "latest"
    if named.is_file():
        path = root / named.read_text().strip()
        if (path / "trainer_state.json").is_file():
            return path
    complete = sorted(p for p in root.glob("step_*") if (p / "trainer_state.json").is_file())
    return complete[-1] if complete else None


def load_checkpoint(
    run_dir: Path,
    policy: PolicyUpdate,
    sampler: np.random.Generator,
    library_path: Path | None,
    path: str | Path | None = None,
) -> tuple[int, Path, dict[str, Any]] | None:
    """Restore the latest (or given) checkpoint; ``(step, folder, learner state)``, or ``None`` when there is none."""
    from safetensors.torch import load_file

    if path is None:
        path = latest_checkpoint(run_dir)
        if path is None:
            return None
    path = Path(path)
    policy.model.load_state_dict(load_file(path / "trainable.safetensors"), strict=False)
    policy.optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
    policy.scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    rng = torch.load(path / "rng.pt", weights_only=True)
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    state = json.loads((path / "trainer_state.json").read_text())
    step = int(state["step"])
    sampler.bit_generator.state = state["sampler"]
    np.random.set_state(state["numpy"])
    random.setstate(_python_state(state["python"]))
    snapshot = path / f"library-step{step:06d}.sqlite"
    if library_path is not None and snapshot.is_file():
        _restore_library(snapshot, library_path)
    return step, path, state.get("extra") or {}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    return value


def _python_state(value: list) -> tuple:
    version, internal, gauss = value
    return (version, tuple(internal), gauss)


def _restore_library(snapshot: Path, target: Path) -> None:
    """Put a checkpoint's library snapshot back in place (the derived index is rebuilt on open)."""
    for suffix in ("", "-wal", "-shm", ".hnsw", ".hnsw.json"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    shutil.copyfile(snapshot, target)
