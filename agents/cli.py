"""The learners' verbs of the ``skill-gym`` command, plugged in through the ``skill_gym.commands`` entry points.

This module holds the functions that add them (see :func:`skill_gym.cli.plugin_commands`):

* :func:`add_train_command` — ``skill-gym train grpo|skill1|skill0 ...``: every field of the learner's
  config dataclass is a flag (``env_id`` is also ``--env``), ``--preset cpu|paper`` picks the size limits,
  ``--recipe released|paper`` the algorithm switches, flags win over both (the precedence:
  :func:`agents.recipes.config_layers`); ``--nproc N`` (``--nnodes``) launches the run on N ranks with torchrun
  (:mod:`agents.train` on each);
* :func:`add_plan_command` — ``skill-gym plan grpo|skill1|skill0 ...``: per-GPU memory, tokens and time of a step
  of the config ``train`` would run, before renting GPUs (:mod:`agents.plan`);
* :func:`add_serve_target` — ``skill-gym serve policy``: an OpenAI-compatible chat server on 127.0.0.1.

``skill-gym demo`` (``make demo``) is the leaderboard's: :mod:`benchmarks.demo`.

Heavy imports (torch, transformers) happen when a verb runs, not when the parser is built.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
import typing
from collections.abc import Collection
from typing import Any

__all__ = [
    "LEARNERS",
    "RECIPE_CHOICES",
    "add_config_flags",
    "add_learner_parsers",
    "add_plan_command",
    "add_serve_target",
    "add_train_command",
    "config_class",
    "train_config",
]

LEARNERS: dict[str, tuple[str, str, str]] = {
    "grpo": ("agents.grpo.config:GRPOConfig", "agents.grpo.trainer:GRPOTrainer", "multi-turn GRPO"),
    "skill1": ("agents.skill1.config:Skill1Config", "agents.skill1.trainer:Skill1Trainer",
               "Skill1: select, use and distill skills with one policy"),
    "skill0": ("agents.skill0.config:Skill0Config", "agents.skill0.trainer:Skill0Trainer",
               "SKILL0: in-context skills withdrawn by a curriculum"),
    "skill1to0": ("agents.skill1to0.config:Skill1To0Config", "agents.skill1to0.trainer:Skill1To0Trainer",
                  "Skill1 builds a library, SKILL0's curriculum withdraws its exported skill files to zero"),
}  # fmt: skip
"""Learner name → (config class, trainer class, help), as ``module:attribute`` strings."""

RECIPE_CHOICES = ("released", "paper")
"""The names of :data:`agents.recipes.RECIPES`, known here without importing the learners."""


def _load(path: str) -> Any:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def config_class(learner: str) -> type:
    """The config dataclass of a learner of :data:`LEARNERS` (``GRPOConfig`` for ``"grpo"``)."""
    return _load(LEARNERS[learner][0])


def add_train_command(commands: Any) -> None:
    """``skill-gym train <learner>``."""
    train = commands.add_parser("train", help="train a policy with RL")
    add_learner_parsers(train.add_subparsers(title="learners"), launcher=True)


def add_learner_parsers(learners: Any, launcher: bool = False) -> None:
    """One parser per learner with every config flag; ``launcher`` adds ``--nproc``/``--nnodes`` (torchrun)."""
    for name, (_, _, help_text) in LEARNERS.items():
        sub = learners.add_parser(name, help=help_text)
        sub.add_argument("--preset", choices=["cpu", "paper"], default=None,
                         help="cpu: small limits that finish on a laptop; paper: the papers' values (Skill1, SKILL0, verl-agent) "
                              "(default: paper with CUDA, cpu without)")  # fmt: skip
        sub.add_argument("--recipe", choices=RECIPE_CHOICES, default=None,
                         help="released: the released code and launch scripts' algorithm (verl-agent, Skill1, SkillZero); "
                              "paper: the papers' text. Sets the algorithm switches; --preset keeps the size limits, "
                              "flags win over both (docs/recipes.md)")  # fmt: skip
        if launcher:
            _add_launcher_flags(sub)
        add_config_flags(sub, config_class(name), skip={"recipe"})
        sub.set_defaults(handler=_train, learner=name)


def _add_launcher_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("distributed training (torchrun; docs/distributed.md)")
    group.add_argument("--nproc", type=int, default=1,
                       help="ranks on this node (one per GPU); above 1, or with --nnodes, the run is launched with "
                            "torch.distributed.run and the policy is sharded with FSDP2")  # fmt: skip
    group.add_argument("--nnodes", type=int, default=1, help="nodes of the run (start the same command on each)")
    group.add_argument("--node-rank", type=int, default=0, help="this node's index (0 on the head node)")
    group.add_argument("--master-addr", default="127.0.0.1", help="the head node's address (several nodes)")
    group.add_argument("--master-port", type=int, default=29500, help="the head node's rendezvous port (several nodes)")


def add_config_flags(parser: argparse.ArgumentParser, cls: type, skip: Collection[str] = ()) -> None:
    """One flag per dataclass field but ``skip`` (``env_id`` is also ``--env``); JSON for dicts and lists."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        flag = "--" + field.name.replace("_", "-")
        names = [flag, "--env"] if field.name == "env_id" else [flag]
        kind = hints[field.name]
        origin = typing.get_origin(kind)
        help_text = field.metadata.get("help", "")
        if kind is bool:
            parser.add_argument(*names, dest=field.name, action=argparse.BooleanOptionalAction, default=None,
                                help=help_text)  # fmt: skip
        elif origin in (dict, list) or kind in (dict, list):
            parser.add_argument(*names, dest=field.name, type=json.loads, default=None, help=f"{help_text} (JSON)")
        elif origin is typing.Literal:
            parser.add_argument(*names, dest=field.name, choices=list(typing.get_args(kind)), default=None,
                                help=help_text)  # fmt: skip
        else:
            args = [a for a in typing.get_args(kind) if a is not type(None)] or [kind]
            parser.add_argument(*names, dest=field.name, type=args[0], default=None, help=help_text)


def _train(args: argparse.Namespace) -> int:
    if getattr(args, "nproc", 1) > 1 or getattr(args, "nnodes", 1) > 1:
        return _launch(args)
    import torch

    from skill_gym.doctor import agents_name_clash

    clash = agents_name_clash()
    if clash:
        raise ValueError(clash)
    preset = args.preset or ("paper" if torch.cuda.is_available() else "cpu")
    config = train_config(args, preset)
    trainer = _load(LEARNERS[args.learner][1])(config)
    try:
        history = trainer.train()
    finally:
        trainer.close()
    import torch.distributed as dist

    if dist.is_initialized():  # several ranks, or one sharding onto the CPU
        dist.destroy_process_group()
    if trainer.world.main:
        last = history[-1] if history else {}
        print(json.dumps({k: v for k, v in last.items() if not k.startswith("perf/")}, indent=2))
        print(f"run directory: {config.run_dir}")
    return 0


def _launch(args: argparse.Namespace) -> int:
    """Start ``python -m agents.train`` on ``--nproc`` ranks with torch's own launcher (torchrun); a rank that dies
    ends the run with a message naming it."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    if args.nnodes > 1:
        where = ["--nnodes", str(args.nnodes), "--node-rank", str(args.node_rank), "--master-addr", args.master_addr,
                 "--master-port", str(args.master_port)]  # fmt: skip
    else:
        where = ["--standalone"]
    launch = [*where, "--nproc-per-node", str(args.nproc), "-m", "agents.train", args.learner, *_learner_argv(args)]
    try:
        run(get_args_parser().parse_args(launch))
    except ChildFailedError as failed:
        dead = "; ".join(f"rank {rank}: {_failure(f)}" for rank, f in sorted(failed.failures.items()))
        run_dir = args.run_dir or config_class(args.learner)().run_dir
        print(f"skill-gym train: the run stopped because a rank failed ({dead}). Its last checkpoint is in "
              f"{run_dir}/checkpoints: run the same command with --resume to continue.", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _failure(failure: Any) -> str:
    if failure.exitcode is not None and failure.exitcode < 0:
        return f"killed by {failure.signal_name()}"
    return f"exit code {failure.exitcode}" + (f" ({failure.message})" if getattr(failure, "message", "") else "")


def _learner_argv(args: argparse.Namespace) -> list[str]:
    """The learner's flags back as command-line words (what each rank parses again)."""
    cls = config_class(args.learner)
    out = [f"--{name}={value}" for name in ("preset", "recipe") if (value := getattr(args, name)) is not None]
    for field in dataclasses.fields(cls):
        value = getattr(args, field.name, None)
        if value is None or field.name == "recipe":
            continue
        flag = "--" + field.name.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + field.name.replace("_", "-"))
        elif isinstance(value, (dict, list)):
            out.append(f"{flag}={json.dumps(value)}")
        else:
            out.append(f"{flag}={value}")
    return out


def train_config(args: argparse.Namespace, preset: str) -> Any:
    """The learner's config from parsed ``train`` arguments: ``preset`` (cpu or paper), ``--recipe`` and the flags."""
    from agents.recipes import resolve_config

    cls = config_class(args.learner)
    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(cls)
        if f.name != "recipe" and getattr(args, f.name, None) is not None
    }
    return resolve_config(args.learner, cls, preset, args.recipe, given)


def add_plan_command(commands: Any) -> None:
    """``skill-gym plan <learner>``: the learner's config flags (as ``train``) plus the hardware (:mod:`agents.plan`)."""
    from agents.plan import add_arguments

    plan = commands.add_parser("plan", help="per-GPU memory and time of a training step, before renting GPUs")
    learners = plan.add_subparsers(title="learners")
    for name, (_, _, help_text) in LEARNERS.items():
        sub = learners.add_parser(name, help=help_text)
        sub.add_argument("--preset", choices=["cpu", "paper"], default="paper", help="size limits (default: paper)")
        sub.add_argument("--recipe", choices=RECIPE_CHOICES, default=None, help="released or paper (docs/recipes.md)")
        add_arguments(sub)
        add_config_flags(sub, config_class(name), skip={"recipe"})
        sub.set_defaults(handler=_plan, learner=name)


def _plan(args: argparse.Namespace) -> int:
    from agents.plan import run

    recipe = f" --recipe {args.recipe}" if args.recipe else ""
    return run(train_config(args, args.preset), args, title=f"skill-gym plan {args.learner}{recipe}")


def add_serve_target(targets: Any) -> None:
    """``skill-gym serve policy``."""
    serve = targets.add_parser("policy", help="OpenAI-compatible chat server on 127.0.0.1 around the policy")
    serve.add_argument("--model", default=None)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from agents.serve import main as serve_main

    serve_main(args.model, args.host, args.port)
    return 0
