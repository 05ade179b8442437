"""The ``skill-gym`` command line.

Subcommands:

* ``skill-gym library [--library PATH] stats|search|add|import|export`` — inspect and edit a
  skill library file;
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

    doctor = commands.add_parser("doctor", help="check the installation")
    doctor.set_defaults(handler=_doctor)

    demo = commands.add_parser("demo", help="run the end-to-end demo on the embedded defaults")
    demo.add_argument("--workdir", default="runs/demo")
    demo.set_defaults(handler=_demo)
    return parser


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


def _demo(args: argparse.Namespace) -> int:
    from skill_gym.demo import run_demo

    return run_demo(Path(args.workdir))


if __name__ == "__main__":
    raise SystemExit(main())
