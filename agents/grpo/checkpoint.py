"""Checkpoints that resume a run exactly: policy, optimizer, scheduler, RNG, data position, library, learner state.

This module holds :func:`save_checkpoint`, :func:`load_checkpoint` and :func:`load_trained_weights`. A checkpoint is
a folder ``<run_dir>/checkpoints/step_<N>`` written under a staging name and renamed when complete (a killed save
leaves the previous checkpoint intact); ``checkpoints/latest`` names the newest. It holds:

* ``dcp/`` — the trainable weights and the optimizer state keyed by parameter name, written by every rank with
  ``torch.distributed.checkpoint`` (DCP): each rank writes its own shards, and a run resumes on any number of
  ranks (DCP reshards on load; one process reads it too);
* ``adapter/`` — the peft adapter of a LoRA policy, whole, for serving and evaluation;
* ``scheduler.pt`` and each rank's torch RNG (``rng_rank<R>.pt``; CUDA's too when used) and, when it keeps any,
  its own state (``state_rank<R>.json.gz``: its skill envs' contrast attempts);
* ``trainer_state.json`` — the step, the NumPy, Python and task-sampler RNG states, the world size and the
  learner's own JSON state (e.g. SKILL0's curriculum); and a snapshot of the skill library.

Rank 0 writes everything but the DCP shards; several nodes need a shared filesystem for the run directory, as
DCP's file writer does. Older checkpoints (``trainable.safetensors`` + ``optimizer.pt``) still load in one process.
Nothing is unpickled except torch's own tensor states (``weights_only=True``).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import random
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.distributed import World
from agents.grpo.update import PolicyUpdate
from skill_gym.files import atomic_write, staged_dir

__all__ = [
    "latest_checkpoint",
    "load_checkpoint",
    "load_rank_state",
    "load_trained_weights",
    "restore_library",
    "save_checkpoint",
]


def save_checkpoint(
    run_dir: Path,
    step: int,
    policy: PolicyUpdate,
    sampler: np.random.Generator,
    extra_state: Callable[[Path], dict[str, Any]],
    library_path: Path | None,
    keep: int,
    world: World | None = None,
    export_model: torch.nn.Module | None = None,
    rank_state: dict[str, Any] | None = None,
) -> Path:
    """Write the checkpoint of ``step`` (every rank calls it); keep the newest ``keep``; return its folder.

    ``export_model``: an unsharded model with the policy's weights, whose LoRA adapter rank 0 saves whole
    (default: the policy's model, unsharded in one process). ``rank_state``: JSON this rank keeps of its own
    (e.g. its envs' memories), written gzipped as ``state_rank<R>.json.gz`` (:func:`load_rank_state`).
    """
    import torch.distributed.checkpoint as dcp

    world = world or World()
    root = run_dir / "checkpoints"
    final = root / f"step_{step:06d}"
    with _staged(final, root / f".staging_{step:06d}", world) as staging:
        with _quiet_single_process():
            dcp.save(_dcp_state(policy), checkpoint_id=staging / "dcp", no_dist=not _has_group())
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():  # sampling on a GPU draws from its generator
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save(rng, staging / f"rng_rank{world.rank}.pt")
        if rank_state:
            with gzip.open(staging / f"state_rank{world.rank}.json.gz", "wt", encoding="utf-8") as out:
                json.dump(rank_state, out)
        if world.main:
            if policy.uses_lora:
                (export_model or policy.model).save_pretrained(staging / "adapter")
            torch.save(policy.scheduler.state_dict(), staging / "scheduler.pt")
            state = {
                "step": step,
                "world_size": world.size,
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
    if world.main:
        atomic_write(root / "latest", final.name)  # a killed write leaves the old pointer whole
        older = sorted(p for p in root.glob("step_*") if p.is_dir() and p.name < final.name)
        for old in older[: max(len(older) - (keep - 1), 0)]:
            shutil.rmtree(old, ignore_errors=True)
    world.barrier()
    return final


@contextlib.contextmanager
def _staged(final: Path, staging: Path, world: World) -> Iterator[Path]:
    """The folder every rank writes the checkpoint into; rank 0 renames it to ``final`` once all are done."""
    with staged_dir(final, staging) if world.main else contextlib.nullcontext(staging) as folder:
        world.barrier()  # rank 0 has made the folder
        yield folder
        world.barrier()  # every rank's shards and RNG are on disk


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
    world: World | None = None,
) -> tuple[int, Path, dict[str, Any]] | None:
    """Restore the latest (or given) checkpoint on every rank; ``(step, folder, learner state)``, or ``None``."""
    world = world or World()
    if path is None:
        path = latest_checkpoint(run_dir)
        if path is None:
            return None
    path = Path(path)
    state = json.loads((path / "trainer_state.json").read_text())
    if (path / "dcp").is_dir():
        _load_dcp(policy, path / "dcp", no_dist=not _has_group())
    elif world.distributed:
        raise ValueError(f"{path} is a single-process checkpoint of an older format: resume it in one process first")
    else:
        from safetensors.torch import load_file

        policy.model.load_state_dict(load_file(path / "trainable.safetensors"), strict=False)
        policy.optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
    policy.scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    rng_file = next((f for f in (path / f"rng_rank{world.rank}.pt", path / "rng.pt") if f.is_file()), None)
    if rng_file is not None and (rng_file.name != "rng.pt" or world.rank == 0):
        rng = torch.load(rng_file, weights_only=True)
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
    saved_size = int(state.get("world_size", 1))
    if saved_size != world.size and world.main:
        warnings.warn(f"{path.name} was written by {saved_size} rank(s) and resumes on {world.size}: weights and "
                      "optimizer are resharded; ranks without a saved RNG keep their seeded one", stacklevel=2)  # fmt: skip
    step = int(state["step"])
    sampler.bit_generator.state = state["sampler"]
    np.random.set_state(state["numpy"])
    random.setstate(_python_state(state["python"]))
    snapshot = path / f"library-step{step:06d}.sqlite"
    if world.main and library_path is not None and snapshot.is_file():
        restore_library(snapshot, library_path)
    world.barrier()  # the library file is back before any rank's envs use it
    return step, path, state.get("extra") or {}


def load_rank_state(checkpoint: str | Path, rank: int) -> dict[str, Any]:
    """What :func:`save_checkpoint` kept for ``rank`` (``rank_state``); empty when it kept nothing for it (another
    world size, or an older checkpoint)."""
    path = Path(checkpoint) / f"state_rank{rank}.json.gz"
    if not path.is_file():
        return {}
    with gzip.open(path, "rt", encoding="utf-8") as source:
        return json.load(source)


def load_trained_weights(model: torch.nn.Module, checkpoint: str | Path) -> torch.nn.Module:
    """Load a checkpoint's trained weights into ``model`` (unsharded, one process): DCP, or an older checkpoint's
    ``trainable.safetensors``. For serving and evaluation; a LoRA checkpoint's ``adapter/`` loads with peft."""
    path = Path(checkpoint)
    if (path / "dcp").is_dir():
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, set_model_state_dict

        options = StateDictOptions(ignore_frozen_params=True, strict=False)
        weights = _trainable_only(model, get_model_state_dict(model, options=options))
        with _quiet_single_process():
            dcp.load({"model": weights}, checkpoint_id=path / "dcp", no_dist=True)
        set_model_state_dict(model, weights, options=options)
        return model
    from safetensors.torch import load_file

    model.load_state_dict(load_file(path / "trainable.safetensors"), strict=False)
    return model


def _has_group() -> bool:
    """A process group exists (several ranks, or one process sharding onto the CPU): DCP uses it."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


@contextlib.contextmanager
def _quiet_single_process() -> Iterator[None]:
    """DCP warns that it assumes one process whenever no process group exists: that is meant here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")
        yield


def _dcp_state(policy: PolicyUpdate) -> dict[str, Any]:
    """The trainable weights and the optimizer state as DCP state dicts (sharded ones on several ranks)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    weights, optimizer = get_state_dict(policy.model, policy.optimizer,
                                        options=StateDictOptions(ignore_frozen_params=True))  # fmt: skip
    return {"model": _trainable_only(policy.model, weights), "optimizer": optimizer}


def _trainable_only(model: torch.nn.Module, weights: dict[str, Any]) -> dict[str, Any]:
    """``weights`` without frozen ones: torch keeps a frozen weight's second name (a LoRA policy's tied LM head)."""
    trainable = {n for n, p in model.named_parameters(remove_duplicate=False) if p.requires_grad}
    return {name: value for name, value in weights.items() if name in trainable}


def _load_dcp(policy: PolicyUpdate, folder: Path, no_dist: bool) -> None:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    state = _dcp_state(policy)
    with _quiet_single_process():
        dcp.load(state, checkpoint_id=folder, no_dist=no_dist)
    # strict=False: the frozen weights (a LoRA policy's base) are not in a checkpoint; DCP's load above already
    # failed on any trainable weight the checkpoint lacks
    options = StateDictOptions(ignore_frozen_params=True, strict=False)
    set_state_dict(policy.model, policy.optimizer, model_state_dict=state["model"],
                   optim_state_dict=state["optimizer"], options=options)  # fmt: skip


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


def restore_library(snapshot: Path, target: Path) -> None:
    """Put a checkpoint's library snapshot back in place (the derived index is rebuilt on open)."""
    for suffix in ("", "-wal", "-shm", ".hnsw", ".hnsw.json"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    shutil.copyfile(snapshot, target)
