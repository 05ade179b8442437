"""The ``skill-gym`` command line.

Subcommands:

* ``skill-gym library [--library PATH] stats|search|add|import|export`` — inspect and edit a
  skill library file;
* ``skill-gym train grpo --env ID --model PATH_OR_ID --backend transformers|vllm ...`` — train a
  policy (every field of :class:`agents.grpo.GRPOConfig` is a flag; ``--preset cpu|paper``);
* ``skill-gym serve`` — an OpenAI-compatible chat server (127.0.0.1) around the transformers policy;
* ``skill-gym doctor`` — check the installation (assets, optional engines, the ``agents`` name);
* ``skill-gym demo`` — the end-to-end demo that ``make demo`` runs.

Errors in user input print one line to stderr and exit with status 2; nothing is written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from skill_gym.library import SkillLibrary

__all__ = ["main"]

DEFAULT_LIBRARY = os.environ.get("SKILL_GYM_LIBRARY", "skill_library.sqlite")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skill-gym`` script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    from skill_gym.library import SkillValidationError, StoreError

    try:
        return int(args.handler(args) or 0)
    except (SkillValidationError, StoreError, ValueError, FileNotFoundError) as error:
        print(f"skill-gym: error: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skill-gym", description="Skill-augmented Gymnasium environments.")
    commands = parser.add_subparsers(title="commands")

    library = commands.add_parser("library", help="inspect and edit a skill library")
    library.add_argument("--library", default=DEFAULT_LIBRARY, help="library file (default: %(default)s)")
    actions = library.add_subparsers(title="actions")

    stats = actions.add_parser("stats", help="size, scopes, utilities")
    stats.set_defaults(handler=_stats)

    search = actions.add_parser("search", help="retrieve skills for a query")
    search.add_argument("query")
    search.add_argument("-k", type=int, default=5)
    search.add_argument("--min-similarity", type=float, default=0.0)
    search.add_argument("--env")
    search.add_argument("--task-type")
    search.set_defaults(handler=_search)

    add = actions.add_parser("add", help="admit one skill (merged with a near-duplicate if there is one)")
    add.add_argument("--description", required=True, help="when the skill applies (the retrieval key)")
    add.add_argument("--strategy", required=True, help="what to do")
    add.add_argument("--env", default="")
    add.add_argument("--task-type", default="")
    add.add_argument("--name", default="")
    add.set_defaults(handler=_add)

    load = actions.add_parser("import", help="import a skill file or folder")
    load.add_argument("path")
    load.add_argument("--format", choices=["native", "skill1", "skillrl", "skill0"])
    load.add_argument("--env", default="", help="env of records that name none")
    load.add_argument("--on-conflict", choices=["error", "skip", "replace"], default="skip")
    load.set_defaults(handler=_import)

    dump = actions.add_parser("export", help="export the library to a file or folder")
    dump.add_argument("path")
    dump.add_argument("--format", choices=["native", "skill1", "skillrl", "skill0"], default="native")
    dump.add_argument("--env")
    dump.set_defaults(handler=_export)

    train = commands.add_parser("train", help="train a policy with RL")
    learners = train.add_subparsers(title="learners")
    for name, (module, cls_name, help_text) in LEARNERS.items():
        sub = learners.add_parser(name, help=help_text)
        sub.add_argument("--preset", choices=["cpu", "paper"], default=None,
                         help="cpu: small limits that finish on a laptop; paper: REFERENCE.md values "
                              "(default: paper with CUDA, cpu without)")  # fmt: skip
        _add_config_flags(sub, _config_class(module, cls_name))
        sub.set_defaults(handler=_train, learner=name)

    serve = commands.add_parser("serve", help="OpenAI-compatible chat server on 127.0.0.1 around the policy")
    serve.add_argument("--model", default=None)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(handler=_serve)

    alfworld = commands.add_parser("alfworld", help="ALFWorld engine utilities")
    alfworld_actions = alfworld.add_subparsers(dest="action", required=True)
    precompute = alfworld_actions.add_parser(
        "precompute", help="write the PDDL->SAS translation records of the embedded games (fast first loads)"
    )
    precompute.add_argument("--split", action="append", default=None, help="only these splits (repeatable)")
    precompute.add_argument("--no-replan", action="store_true", help="skip the planner's optimized translation")
    precompute.set_defaults(handler=_precompute)

    doctor = commands.add_parser("doctor", help="check the installation")
    doctor.set_defaults(handler=_doctor)

    demo = commands.add_parser("demo", help="run the end-to-end demo on the embedded defaults")
    demo.add_argument("--workdir", default="runs/demo")
    demo.add_argument("--no-train", action="store_true", help="skip the one-step Skill1 training run")
    demo.set_defaults(handler=_demo)
    return parser


LEARNERS = {
    "grpo": ("agents.grpo.config", "GRPOConfig", "multi-turn GRPO"),
    "skill1": ("agents.skill1.config", "Skill1Config", "Skill1: select, use and distill skills with one policy"),
    "skill0": ("agents.skill0.config", "Skill0Config", "SKILL0: in-context skills withdrawn by a curriculum"),
}


def _config_class(module: str, name: str) -> type:
    import importlib

    return getattr(importlib.import_module(module), name)


def _add_config_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """One flag per dataclass field (``env_id`` is also ``--env``); JSON for dicts and lists."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
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
    import dataclasses

    import torch

    from skill_gym.doctor import agents_name_clash

    clash = agents_name_clash()
    if clash:
        raise ValueError(clash)
    module, cls_name, _ = LEARNERS[args.learner]
    cls = _config_class(module, cls_name)
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if getattr(args, f.name) is not None}
    preset = args.preset or ("paper" if torch.cuda.is_available() else "cpu")
    config = cls.cpu_defaults(**given) if preset == "cpu" else cls(**given)
    trainer_module, trainer_name = TRAINERS[args.learner]
    trainer = _config_class(trainer_module, trainer_name)(config)
    try:
        history = trainer.train()
    finally:
        trainer.close()
    last = history[-1] if history else {}
    print(json.dumps({k: v for k, v in last.items() if not k.startswith("perf/")}, indent=2))
    print(f"run directory: {config.run_dir}")
    return 0


TRAINERS = {
    "grpo": ("agents.grpo.trainer", "GRPOTrainer"),
    "skill1": ("agents.skill1.trainer", "Skill1Trainer"),
    "skill0": ("agents.skill0.trainer", "Skill0Trainer"),
}


def _serve(args: argparse.Namespace) -> int:
    from agents.serve import main as serve_main

    serve_main(args.model, args.host, args.port)
    return 0


def _open(args: argparse.Namespace, must_exist: bool = True) -> SkillLibrary:
    from skill_gym.library import SkillLibrary

    if must_exist and not Path(args.library).is_file():
        raise FileNotFoundError(f"no library at {args.library} (create one with `skill-gym library add` or `import`)")
    return SkillLibrary(args.library)


def _stats(args: argparse.Namespace) -> int:
    with _open(args) as lib:
        print(json.dumps(lib.stats(), indent=2))
    return 0


def _search(args: argparse.Namespace) -> int:
    with _open(args) as lib:
        hits = lib.retrieve(
            args.query, k=args.k, min_similarity=args.min_similarity, env=args.env, task_type=args.task_type
        )
        for rank, hit in enumerate(hits, start=1):
            s = hit.skill
            print(f"{rank}. [{hit.similarity:.3f}] {s.id} ({s.env or '-'}/{s.task_type or '-'}, U={s.utility:.3f})")
            print(f"   when: {s.description}\n   do:   {s.strategy}")
        if not hits:
            print("no skills above the similarity cutoff")
    return 0


def _add(args: argparse.Namespace) -> int:
    from skill_gym.library import Skill

    skill = Skill(
        description=args.description, strategy=args.strategy, env=args.env, task_type=args.task_type, name=args.name
    )
    with _open(args, must_exist=False) as lib:
        result = lib.admit(skill)
    print(f"{result.status}: {result.skill_id} {result.reason}".rstrip())
    return 0 if result.status != "rejected" else 2


def _import(args: argparse.Namespace) -> int:
    from skill_gym.library import load_skills

    skills = load_skills(args.path, args.format, env=args.env)
    with _open(args, must_exist=False) as lib:
        written = lib.add(skills, on_conflict=args.on_conflict)
    print(f"imported {len(written)} of {len(skills)} skills from {args.path} into {args.library}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from skill_gym.library import dump_skills

    with _open(args) as lib:
        skills = lib.skills(env=args.env)
    path = dump_skills(skills, args.path, args.format)
    print(f"exported {len(skills)} skills to {path} ({args.format})")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from skill_gym.doctor import run_doctor

    return run_doctor()


def _precompute(args: argparse.Namespace) -> int:
    from skill_gym.envs.alfworld.accel.translation import TRANSLATIONS
    from skill_gym.envs.alfworld.suite import game_files, load_suite

    if TRANSLATIONS.folder is None:
        print("translation records are off (SKILL_GYM_ALFWORLD_DISK_TRANSLATIONS=0); nothing to do")
        return 1
    games = [g for g in load_suite()["games"] if args.split is None or g["split"] in args.split]
    for i, record in enumerate(games, 1):
        data = game_files(record)[1]
        TRANSLATIONS.clear()  # from disk or translated anew, so a record is written even if memory held it
        TRANSLATIONS.get(data["pddl_domain"], data["pddl_problem"], replan=not args.no_replan)
        print(f"\r{i}/{len(games)} {record['task_id']}", end="", flush=True)
    TRANSLATIONS.clear()  # keep memory flat; the records stay on disk
    print(f"\nwrote {len(games)} translation records to {TRANSLATIONS.folder}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from skill_gym.demo import run_demo

    return run_demo(Path(args.workdir), train=not args.no_train)


if __name__ == "__main__":
    raise SystemExit(main())
