"""The ``skill-gym`` command line: the environments' verbs, plus the verbs that installed packages plug in.

Verbs of this package:

* ``skill-gym library [--library PATH] stats|search|add|import|export`` — inspect and edit a
  skill library file;
* ``skill-gym alfworld precompute`` — write the ALFWorld engine's translation records;
* ``skill-gym doctor`` — check the installation (assets, optional engines, the ``agents`` name);
* ``skill-gym serve TARGET`` — run a server on 127.0.0.1; the env targets are registered in
  :data:`SERVE_TARGETS` (one module per env, each with an ``add_serve_target(targets)`` function).

Other packages add verbs through the entry-point group ``skill_gym.commands`` (:data:`PLUGIN_GROUP`):
each entry point names a function that takes the ``argparse`` sub-parsers and adds its commands
(the learners add ``train`` and ``demo`` this way), so one ``skill-gym`` command serves every layer
while this package imports none of them. Serve targets plug in the same way through
:data:`SERVE_GROUP` (the learners add ``serve policy``), and env families through :data:`FAMILY_GROUP`.

Errors in user input print one line to stderr and exit with status 2; nothing is written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skill_gym.library import SkillLibrary

__all__ = ["FAMILY_GROUP", "PLUGIN_GROUP", "build_parser", "main", "plugin_commands"]

PLUGIN_GROUP = "skill_gym.commands"
"""Entry-point group of the verbs other packages add to ``skill-gym``."""

SERVE_GROUP = "skill_gym.serve_targets"
FAMILY_GROUP = "skill_gym.env_families"
"""Entry-point group of env families installed by other packages: each entry is a function with no arguments that
calls :func:`~skill_gym.families.register_family`, run before any verb, so ``skill-gym leaderboard run --suite
NAME`` plays a family that lives outside this repository."""
"""Entry-point group of the targets other packages add to ``skill-gym serve``."""

SERVE_TARGETS: tuple[str, ...] = (
    "skill_gym.envs.searchqa.server",
    "skill_gym.envs.webshop.serve",
    "skill_gym.library.service",
)
"""Modules of this package whose ``add_serve_target(targets)`` adds a ``skill-gym serve`` target (imported
when the parser is built: keep their top level light)."""

DEFAULT_LIBRARY = os.environ.get("SKILL_GYM_LIBRARY", "skill_library.sqlite")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skill-gym`` script; returns the exit status."""
    for register in plugin_commands(FAMILY_GROUP):
        try:
            register()
        except Exception as error:  # one broken plug-in must not take the other verbs down
            print(f"skill-gym: the env family of {register.__module__} is unavailable: {error}", file=sys.stderr)
    parser = build_parser()
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


def plugin_commands(group: str = PLUGIN_GROUP) -> list[Callable[[Any], None]]:
    """The command-adding functions installed under the entry-point ``group``, in name order.

    A plug-in that cannot be imported is reported on stderr and left out; the other verbs still work.
    """
    found = []
    for point in sorted(entry_points(group=group), key=lambda p: p.name):
        try:
            found.append(point.load())
        except Exception as error:  # a broken optional install must not take the whole CLI down
            print(f"skill-gym: the {point.name!r} commands are unavailable: {error}", file=sys.stderr)
    return found


def build_parser() -> argparse.ArgumentParser:
    """The whole `skill-gym` parser: this package's verbs and every plugged-in one."""
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

    dump = actions.add_parser(
        "export", help="export the library to a file or folder, or (--to skill0) distil it into SKILL0 curriculum files"
    )
    dump.add_argument("paths", nargs="+", metavar="[LIBRARY] PATH",
                      help="where to write (a library file before it replaces --library)")  # fmt: skip
    dump.add_argument("--format", choices=["native", "skill1", "skillrl", "skill0"], default="native")
    dump.add_argument("--env")
    dump.add_argument("--to", choices=["skill0"], help="skill0: the best-supported skills as SKILL0 curriculum files")
    # Their defaults are CurriculumRules' (skill_gym.library.curriculum), applied where the flag is not given.
    dump.add_argument("--min-selected", type=int, help="support a skill needs: times the policy selected it")
    dump.add_argument("--dedup-similarity", type=float, help="description cosine at which skills count as one")
    dump.add_argument("--max-skills", type=int, help="items per curriculum file")
    dump.add_argument("--max-tokens", type=int, help="tokens per curriculum file")
    dump.add_argument("--tokenizer", help="count tokens with this Hugging Face tokenizer (default: 4 chars a token)")
    dump.set_defaults(handler=_export)

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

    serve = commands.add_parser("serve", help="run a server on 127.0.0.1 (an env's web site, a retriever, a policy)")
    targets = serve.add_subparsers(title="targets", dest="target", required=True)
    for module in SERVE_TARGETS:
        import_module(module).add_serve_target(targets)
    for add_target in plugin_commands(SERVE_GROUP):
        add_target(targets)

    for command in plugin_commands():
        command(commands)
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

    if len(args.paths) > 2:
        raise ValueError(f"export takes [LIBRARY] PATH, got {len(args.paths)} paths")
    if len(args.paths) == 2:
        args.library = args.paths[0]
    out = args.paths[-1]
    if args.to == "skill0":
        return _export_curriculum(args, out)
    with _open(args) as lib:
        skills = lib.skills(env=args.env)
    path = dump_skills(skills, out, args.format)
    print(f"exported {len(skills)} skills to {path} ({args.format})")
    return 0


def _export_curriculum(args: argparse.Namespace, out: str) -> int:
    from skill_gym.library.curriculum import CurriculumRules, approx_tokens, build_curriculum, write_curriculum

    given = {name: getattr(args, name) for name in ("min_selected", "dedup_similarity", "max_skills", "max_tokens")}
    rules = CurriculumRules(**{name: value for name, value in given.items() if value is not None})
    count = approx_tokens
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
        count = lambda text: len(tokenizer.encode(text, add_special_tokens=False))  # noqa: E731
    with _open(args) as lib:
        curriculum = build_curriculum(lib.skills(env=args.env), lib.embed, rules, count)
    source = {"library": str(Path(args.library).resolve()), "env": args.env or "",
              "tokens": args.tokenizer or "approx (4 chars a token)"}  # fmt: skip
    folder = write_curriculum(curriculum, out, source, rules)
    for key, skills in curriculum.files.items():
        print(f"{folder / key}.md: {len(skills)} skills")
    left = ", ".join(f"{n} {why}" for why, n in curriculum.left_out.items() if n)
    print(f"wrote {len(curriculum.files)} files to {folder}" + (f" (left out: {left})" if left else ""))
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


if __name__ == "__main__":
    raise SystemExit(main())
