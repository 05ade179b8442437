"""The leaderboard run: agents x suites x seeds over vector envs, one transcript per episode, resumable.

This module holds :class:`RunConfig`, :func:`run_leaderboard` and :func:`starter_library`. Episode ``e`` of
seed ``s`` plays task ``suite.tasks(...)[e]`` with env seed ``s * 100_000 + e``; its transcript's path is keyed
by agent, suite, seed and episode, and is written atomically when the episode ends, so a killed run continues
where it stopped and never plays a finished episode again. Episodes run ``num_envs`` at a time in one vector
env (:func:`agents.evaluation.make_rollout_envs`, finished envs held still), through the one episode loop
(:func:`agents.rollout.play`), whose per-episode callback writes each transcript as its episode ends. An agent that fails (raises,
answers a non-string, exceeds the per-step timeout, or an endpoint that stays down) ends that episode as
*failed*; the run goes on.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym

import skill_gym  # noqa: F401  (registers the env ids)
from agents.evaluation import make_rollout_envs
from agents.rollout import EnvSet, Episode, play
from benchmarks.leaderboard.players import MAX_RECORDED_CHARS
from benchmarks.leaderboard.specs import AgentEntry, LoadedAgent
from benchmarks.leaderboard.suites import Suite, task_types
from benchmarks.leaderboard.transcripts import read_transcript, transcript_path, write_transcript
from skill_gym.files import atomic_write

__all__ = ["RunConfig", "RunSummary", "run_leaderboard", "starter_library"]


@dataclasses.dataclass
class RunConfig:
    """Where a run writes and how much it plays."""

    out: Path
    """Folder of the transcripts, tables, plots and page."""
    episodes: int = 10
    """Episodes per suite and seed (the first N tasks, task types interleaved); 0 plays every task."""
    seeds: int = 1
    """Seeds ``0 .. seeds-1``; tables show mean ± std over them."""
    num_envs: int = 4
    vectorization_mode: str = "sync"
    step_timeout: float = 30.0
    """Seconds a third-party agent (or one endpoint request) may take per step."""
    max_turns: int = 200
    """Agent turns per episode before it is cut (the envs' own step limits end episodes first)."""
    env_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Extra env arguments for every suite (e.g. ``{"max_steps": 10}``)."""
    progress: bool = True


@dataclasses.dataclass
class RunSummary:
    """What a call played: episodes written now, found finished from before, and failed ones among the new."""

    played: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: list[str] = dataclasses.field(default_factory=list)
    """Agent x suite pairs that could not start (a model that does not load, a suite without an expert, ...)."""


def starter_library(out: Path, suite: Suite) -> tuple[Path, int]:
    """The library agent's frozen library for ``suite``: its family's starter skills, embedded once (empty for a
    family without starter skills); ``(path, size)``."""
    from skill_gym.library import SkillLibrary, load_skills

    folder = suite.family.starter_skills
    path = Path(out) / "libraries" / f"{suite.name}.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    with SkillLibrary(path) as library:
        if len(library) == 0 and folder is not None:
            library.add(load_skills(folder, env=suite.name))
        return path, len(library)


def _finished(path: Path) -> bool:
    return path.is_file() and read_transcript(path)[0] is not None


def run_leaderboard(agents: list[AgentEntry], suites: list[Suite], config: RunConfig) -> RunSummary:
    """Play every agent on every suite for every seed; skip the episodes whose transcripts exist."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    _write_manifest(out, agents, suites, config)
    summary = RunSummary()
    started = time.perf_counter()
    for entry in agents:
        loaded = LoadedAgent(entry, config.step_timeout)
        try:
            for suite in suites:
                try:
                    _run_suite(loaded, suite, config, summary)
                except Exception as problem:  # an agent or env that breaks fails this pair only; the run goes on
                    summary.errors.append(f"{loaded.name} on {suite.key}: {type(problem).__name__}: {problem}")
                    print(f"leaderboard: {summary.errors[-1]}", file=sys.stderr)
        finally:
            loaded.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _run_suite(loaded: LoadedAgent, suite: Suite, config: RunConfig, summary: RunSummary) -> None:
    from tqdm import tqdm

    library = loaded.entry.uses_library
    env_id = suite.env_id(library)
    kwargs = {**suite.env_kwargs(), **config.env_kwargs, **loaded.env_kwargs(suite)}
    library_size = 0
    if library:
        path, library_size = starter_library(config.out, suite)
        kwargs["library"] = str(path)
    probe = gym.make(env_id, **kwargs)
    try:
        tasks = suite.tasks(list(probe.unwrapped.task_ids), config.episodes, task_types(probe.unwrapped))
        instructions = probe.unwrapped.instructions
    finally:
        probe.close()
    for seed in range(config.seeds):
        paths = {e: transcript_path(config.out, loaded.name, suite.key, seed, e) for e in range(len(tasks))}
        pending = [e for e, p in paths.items() if not _finished(p)]
        summary.skipped += len(tasks) - len(pending)
        if not pending:
            continue
        width = max(1, min(config.num_envs, len(pending)))
        player = loaded.player(suite, seed, instructions, width)
        vec = make_rollout_envs(env_id, width, kwargs, config.vectorization_mode)
        bar = tqdm(total=len(tasks), initial=len(tasks) - len(pending), desc=f"{loaded.name} | {suite.key} | seed {seed}",
                   disable=not config.progress, file=sys.stderr, leave=True, dynamic_ncols=True)  # fmt: skip
        header = {"agent": loaded.name, "spec": loaded.entry.spec, "suite": suite.key, "env_id": env_id, "seed": seed,
                  "library_size": library_size}  # fmt: skip
        try:
            for start in range(0, len(pending), width):
                wave = pending[start : start + width]
                write = _transcript_writer(wave, tasks, paths, header, summary)
                # Slots beyond the wave (the last one may be short) reset to its first task and are never played.
                padded = wave + wave[:1] * (width - len(wave))
                options = [{"task_id": tasks[e]} for e in padded]
                play(EnvSet(vec), player, options, [_env_seed(seed, e) for e in padded], config.max_turns,
                     slots=range(len(wave)), on_end=write, keep_prompts=True)  # fmt: skip
                bar.update(len(wave))
        finally:
            bar.close()
            vec.close()
            close = getattr(player, "close", None)
            if callable(close):
                close()


def _env_seed(seed: int, episode: int) -> int:
    return seed * 100_000 + episode


def _transcript_writer(wave: list[int], tasks: list[str], paths: dict[int, Path], header: dict[str, Any],
                       summary: RunSummary) -> Callable[[int, Episode], None]:  # fmt: skip
    """The callback that writes the transcript of slot ``i``'s episode (episode ``wave[i]``) as it ends."""

    def write(slot: int, episode: Episode) -> None:
        number = wave[slot]
        info = {"episode": number, "task_id": tasks[number], "env_seed": _env_seed(header["seed"], number),
                "task_type": episode.task_type}  # fmt: skip
        write_transcript(paths[number], {**header, **info}, _turns(episode), _result(episode, header["library_size"]))
        summary.played += 1
        summary.failed += episode.failed

    return write


def _turns(episode: Episode) -> list[dict[str, Any]]:
    """An episode's turns as a transcript records them."""
    return [{"phase": t.phase, "observation": t.observation, "prompt": t.prompt, "response": t.text[:MAX_RECORDED_CHARS],
             "action": t.action[:MAX_RECORDED_CHARS], "reward": t.reward, "action_valid": t.action_valid,
             "format_valid": t.format_valid, "prompt_tokens": t.prompt_tokens, "response_tokens": t.response_tokens,
             "seconds": t.seconds} for t in episode.turns]  # fmt: skip


def _result(episode: Episode, library_size: int) -> dict[str, Any]:
    """An episode's outcome as a transcript records it."""
    return {"won": episode.won, "score": episode.score, "return": episode.env_return, "truncated": episode.truncated,
            "failed": episode.failed, "error": episode.error, "seconds": episode.seconds,
            "library_size": library_size}  # fmt: skip


def _write_manifest(out: Path, agents: list[AgentEntry], suites: list[Suite], config: RunConfig) -> None:
    """``run.json``: what this folder has been asked to play (the tables read the transcripts, not this)."""
    path = out / "run.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        manifest = {}
    if not isinstance(manifest, dict):
        manifest = {}
    agents_seen = {a["name"]: a for a in manifest.get("agents", []) if isinstance(a, dict) and "name" in a}
    for entry in agents:
        agents_seen[entry.name] = {"name": entry.name, "spec": entry.spec, "temperature": entry.temperature,
                                   "max_new_tokens": entry.max_new_tokens}  # fmt: skip
    suites_seen = [s for s in manifest.get("suites", []) if isinstance(s, str)]
    suites_seen += [s.key for s in suites if s.key not in suites_seen]
    manifest = {"agents": list(agents_seen.values()), "suites": suites_seen, "episodes": config.episodes,
                "seeds": config.seeds, "num_envs": config.num_envs, "step_timeout": config.step_timeout,
                "env_kwargs": config.env_kwargs}  # fmt: skip
    atomic_write(path, json.dumps(manifest, indent=2, default=str))
