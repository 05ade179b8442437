"""Agents named by a spec string or a small YAML file, and the players the runner gets from them.

This module holds :class:`AgentEntry` (a name, a spec and its generation settings), :func:`parse_agents`
(``--agent`` values: spec strings or ``.yaml`` files) and :class:`LoadedAgent` (an entry with its model loaded
once, handing the runner a :class:`~benchmarks.leaderboard.players.Player` per suite and seed).

Spec strings:

* ``random`` — a random admissible action; ``expert`` (or ``oracle``) — the suite's expert (ALFWorld: alfworld's
  hand-coded expert through ``info["expert_action"]``);
* ``python:package.module:name`` — a third-party agent: a class (one instance per env), an object with ``act``,
  or a function ``f(observation, info) -> str`` (:mod:`benchmarks.leaderboard.protocol`);
* ``openai:MODEL@URL`` — any OpenAI-compatible chat endpoint (key from ``$OPENAI_API_KEY`` or ``api_key_env``);
* ``hf:MODEL`` — our policy through the transformers backend: a Hugging Face id, a local folder, a training run
  folder or one of its checkpoints (GRPO / Skill1 / SKILL0; the LoRA adapter on its base model);
  ``smollm2`` is ``hf:SmolLM2-135M-Instruct``; ``vllm:MODEL`` — the same through vLLM, when it is installed;
* ``skill1to0:RUN_DIR`` — the final policy of a finished two-stage run (``skill-gym train skill1to0``: Skill1
  built a library, SKILL0's curriculum withdrew it) on the suite's base env: a trained agent with no skills and
  no retrieval at inference (its rows' kind says so);
* ``library:SPEC`` — ``SPEC`` playing the suite's skill env with a frozen library of the starter skills,
  one skill selected by similarity to the task (cosine ≥ 0.05, this agent's own cut-off), no training (Skill1's
  library without its learned selection).

A YAML file holds ``agents:``, a list of ``{spec, name, temperature, max_new_tokens, history_length,
step_timeout, api_key_env, max_retries}`` (only ``spec`` is required; a bare string is a spec).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.leaderboard.suites import Suite
from skill_gym.agent import RandomAgent, agent_factory

__all__ = ["ROW_KINDS", "AgentEntry", "LoadedAgent", "parse_agents", "row_kind", "two_stage_policy"]

_KINDS = ("random", "expert", "oracle", "python", "openai", "hf", "smollm2", "vllm", "skill1to0", "library")
ROW_KINDS = {"skill1to0": "trained, no skills at inference"}
"""Spec kinds whose rows the tables mark beside their source ('ours: trained, no skills at inference'); the
others speak for themselves through their spec."""


def row_kind(spec: str) -> str:
    """The kind of row an agent spec makes, where the tables mark it (:data:`ROW_KINDS`; else ``""``).

    >>> row_kind("skill1to0:runs/two-stage"), row_kind("smollm2")
    ('trained, no skills at inference', '')
    """
    return ROW_KINDS.get(spec.split(":", 1)[0].strip().lower(), "")


@dataclasses.dataclass
class AgentEntry:
    """One leaderboard agent: its display ``name``, its ``spec`` and how it generates (for chat models)."""

    spec: str
    name: str = ""
    temperature: float = 0.0
    max_new_tokens: int = 256
    history_length: int = 2
    step_timeout: float | None = None
    """Per-step timeout of a third-party agent or an endpoint request (default: the run's)."""
    api_key_env: str = "OPENAI_API_KEY"
    max_retries: int = 4
    """Retries of a failed endpoint request (with exponential backoff from 0.5 s)."""
    agent: Any = None
    """A Python agent object, class or function given directly (API use; ``spec`` then only names it)."""

    def __post_init__(self) -> None:
        if not isinstance(self.spec, str) or not self.spec.strip():
            raise ValueError(f"an agent spec must be a non-empty string, got {self.spec!r}")
        self.spec = self.spec.strip()
        self.name = str(self.name or self.spec)
        kind = self.kind
        if self.agent is None and kind not in _KINDS:
            raise ValueError(f"unknown agent spec {self.spec!r}; kinds: {', '.join(_KINDS)}")
        if not isinstance(self.temperature, (int, float)) or not 0 <= self.temperature <= 5:
            raise ValueError(f"temperature must be in [0, 5], got {self.temperature!r}")
        if not _is_int(self.max_new_tokens) or not 1 <= self.max_new_tokens <= 32768:
            raise ValueError(f"max_new_tokens must be an integer in [1, 32768], got {self.max_new_tokens!r}")
        if not _is_int(self.history_length) or self.history_length < 0:
            raise ValueError(f"history_length must be an integer >= 0, got {self.history_length!r}")
        if not _is_int(self.max_retries) or not 0 <= self.max_retries <= 100:
            raise ValueError(f"max_retries must be an integer in [0, 100], got {self.max_retries!r}")
        timeout = self.step_timeout
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0):
            raise ValueError(f"step_timeout must be a positive number of seconds, got {timeout!r}")
        if not isinstance(self.api_key_env, str) or not self.api_key_env:
            raise ValueError(f"api_key_env must name an environment variable, got {self.api_key_env!r}")

    @property
    def kind(self) -> str:
        return self.spec.split(":", 1)[0].strip().lower()

    @property
    def uses_library(self) -> bool:
        return self.kind == "library"

    @property
    def inner(self) -> AgentEntry:
        """The entry a ``library:SPEC`` wraps (itself otherwise)."""
        if not self.uses_library:
            return self
        return dataclasses.replace(self, spec=self.spec.split(":", 1)[1], name=self.name)


def parse_agents(values: list[str]) -> list[AgentEntry]:
    """``--agent`` values → entries: a spec string each, or a ``.yaml``/``.yml`` file of several."""
    entries: list[AgentEntry] = []
    for value in values:
        if value.endswith((".yaml", ".yml")):
            entries += _load_yaml(Path(value))
        else:
            entries.append(AgentEntry(spec=value))
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"agent names must be unique, got {names}")
    return entries


def _load_yaml(path: Path) -> list[AgentEntry]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as problem:
        raise ValueError(f"{path}: cannot read agents ({type(problem).__name__}: {problem})") from None
    items = data.get("agents") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise ValueError(f"{path}: expected 'agents:' with a list of {{spec: ...}} entries")
    known = {f.name for f in dataclasses.fields(AgentEntry)} - {"agent"}
    entries = []
    for item in items:
        if isinstance(item, str):
            item = {"spec": item}
        if not isinstance(item, dict) or "spec" not in item or set(item) - known:
            raise ValueError(f"{path}: each agent needs 'spec' and only the keys {sorted(known)}; got {item!r}")
        try:
            entries.append(AgentEntry(**item))
        except TypeError as problem:
            raise ValueError(f"{path}: {problem}") from None
    return entries


def _import_object(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"python agents are named python:package.module:name, got python:{target}")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as problem:
        raise ValueError(f"cannot load the agent python:{target} ({type(problem).__name__}: {problem})") from None
    return obj


class _SeededRandom(RandomAgent):
    """Random agent reseeded per episode from (run seed, task): the same episode plays the same way on resume."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.seed = seed

    def reset(self, observation: Mapping[str, str], info: Mapping[str, Any]) -> None:
        self.rng = random.Random(f"{self.seed}/{info.get('task_id', '')}")


class LoadedAgent:
    """An entry with its model (if any) loaded once; :meth:`player` gives the runner one per suite and seed."""

    def __init__(self, entry: AgentEntry, step_timeout: float | None = 30.0) -> None:
        self.entry = entry
        self.step_timeout = entry.step_timeout if entry.step_timeout is not None else step_timeout
        self._backend: Any = None

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def is_chat_model(self) -> bool:
        return self.entry.inner.kind in ("openai", "hf", "smollm2", "vllm", "skill1to0") and self.entry.agent is None

    def env_kwargs(self, suite: Suite) -> dict[str, Any]:
        """Env arguments this agent needs on ``suite`` (the expert's, or the library agent's skill selection)."""
        kwargs: dict[str, Any] = {}
        if self.entry.inner.kind in ("expert", "oracle"):
            kwargs.update(suite.expert_kwargs)
        # A cut-off of this agent's own (cosine 0.05), not Skill1's (0.4 in its paper and released code): with a
        # small starter set a loose match still puts the nearest skill in context.
        if self.entry.uses_library:
            kwargs.update(selection="similarity", distillation="none", read_only=True, min_similarity=0.05)
        return kwargs

    def player(self, suite: Suite, seed: int, instructions: Any, width: int = 1) -> Any:
        """A fresh :class:`~agents.players.Player` for ``suite`` with ``seed``, over ``width`` envs."""
        from benchmarks.leaderboard.players import TimedAgentPlayer

        entry = self.entry.inner
        if self.entry.agent is not None:
            return TimedAgentPlayer(agent_factory(self.entry.agent), self.step_timeout)
        if entry.kind == "random":
            make = (lambda: suite.random(seed)) if suite.random is not None else (lambda: _SeededRandom(seed))
            return TimedAgentPlayer(make, self.step_timeout)
        if entry.kind in ("expert", "oracle"):
            if suite.expert is None:
                raise ValueError(f"suite {suite.name!r} has no expert")
            return TimedAgentPlayer(suite.expert, self.step_timeout)
        if entry.kind == "python":
            return TimedAgentPlayer(agent_factory(_import_object(entry.spec.split(":", 1)[1])), self.step_timeout)
        from agents.backends.base import SamplingConfig
        from agents.players import ChatPlayer
        from agents.prompts import PromptBuilder

        sampling = SamplingConfig(max_new_tokens=entry.max_new_tokens, temperature=entry.temperature, seed=seed)
        builder = PromptBuilder(instructions, history_length=entry.history_length)
        return ChatPlayer(self.backend(), builder, sampling, width, isolate_failures=True)

    def backend(self) -> Any:
        """The chat backend, made on first use and kept for every suite and seed."""
        if self._backend is None:
            self._backend = _make_backend(self.entry.inner, self.step_timeout)
        return self._backend

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None


def _make_backend(entry: AgentEntry, timeout: float | None) -> Any:
    kind, _, rest = entry.spec.partition(":")
    kind = kind.lower()
    if kind == "openai":
        from agents.backends.openai import OpenAIBackend

        model, at, url = rest.rpartition("@")
        if not at or not model or not url.startswith(("http://", "https://")):
            raise ValueError(f"OpenAI-compatible agents are named openai:MODEL@URL, got {entry.spec!r}")
        return OpenAIBackend(url, model=model, api_key=os.environ.get(entry.api_key_env, ""),
                             timeout=timeout or 60.0, max_retries=entry.max_retries)  # fmt: skip
    if kind == "skill1to0":
        from agents.backends.hf import TransformersBackend

        return TransformersBackend(*load_policy_or_checkpoint(str(two_stage_policy(Path(rest)))))
    if kind in ("hf", "smollm2"):
        from agents.backends.hf import TransformersBackend

        net, tokenizer = load_policy_or_checkpoint(rest or None)
        return TransformersBackend(net, tokenizer)
    if kind == "vllm":
        from agents.backends.vllm import VLLMBackend
        from agents.models import resolve_policy_model

        return VLLMBackend(resolve_policy_model(rest or None))
    raise ValueError(f"{entry.spec!r} is not a chat model spec")


def two_stage_policy(run_dir: Path) -> Path:
    """The folder of a finished two-stage run's final policy (its stage-2 run), or a ``ValueError`` saying why not."""
    stages_file = run_dir / "stages.json"
    try:
        stages = json.loads(stages_file.read_text())
    except (OSError, ValueError) as problem:
        raise ValueError(
            f"{run_dir} is not a two-stage run: {stages_file} is missing or unreadable ({problem})"
        ) from None
    if not isinstance(stages, dict) or "stage2" not in stages:
        raise ValueError(f"stage 2 of {run_dir} has not finished: resume it (skill-gym train skill1to0 --resume) first")
    return run_dir / "stage2"


def load_policy_or_checkpoint(model: str | None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a model id or folder, a training run folder, or one of its checkpoints."""
    from agents.backends.hf import load_policy

    path = Path(model) if model else None
    if path is not None and (path / "checkpoints").is_dir():  # a run folder: its latest checkpoint
        from agents.grpo.checkpoint import latest_checkpoint

        latest = latest_checkpoint(path)
        if latest is None:
            raise ValueError(f"{path} has no checkpoint yet (no complete checkpoints/step_* folder)")
        path = latest
    if path is None or not (path / "trainer_state.json").is_file():
        return load_policy(model)
    run_dir = path.parent.parent
    try:
        config = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError) as problem:
        raise ValueError(f"{run_dir}/config.json is missing or unreadable ({problem})") from None
    net, tokenizer = load_policy(config.get("model"))
    if (path / "adapter").is_dir():
        from peft import PeftModel

        return PeftModel.from_pretrained(net, path / "adapter"), tokenizer
    from agents.grpo.checkpoint import load_trained_weights

    return load_trained_weights(net, path), tokenizer


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
