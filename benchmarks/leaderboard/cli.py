"""``skill-gym leaderboard run|show``, plugged into the one ``skill-gym`` command (entry point ``leaderboard``).

This module holds :func:`add_leaderboard_command` (the ``skill_gym.commands`` entry point; it builds the
parser only, nothing heavy is imported until a verb runs):

* ``skill-gym leaderboard run --agent SPEC ... --suite SUITE ... --episodes N --seeds K --out DIR`` plays what is
  not played yet under ``DIR``, then writes the tables, plots and page there and prints the table;
* ``skill-gym leaderboard show [--out DIR] [--format markdown|csv|json]`` prints the table recomputed from the
  transcripts under ``DIR``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_leaderboard_command"]

DEFAULT_OUT = "runs/leaderboard"


def add_leaderboard_command(commands: Any) -> None:
    """``skill-gym leaderboard``."""
    board = commands.add_parser("leaderboard", help="run agents on the suites; tables, plots and a page")
    verbs = board.add_subparsers(title="verbs")
    run = verbs.add_parser("run", help="play agents x suites x seeds (resumable) and write the tables")
    run.add_argument("--agent", action="append", required=True,
                     help="agent spec (random, expert, python:mod:name, openai:MODEL@URL, hf:MODEL, smollm2, "
                          "vllm:MODEL, library:SPEC) or a .yaml file of agents; repeat for several")  # fmt: skip
    run.add_argument(
        "--suite",
        action="append",
        default=None,
        help="suite[:split], e.g. alfworld:eval_out_of_distribution (default), keyword; repeat",
    )
    run.add_argument("--episodes", type=int, default=10, help="episodes per suite and seed (0: every task)")
    run.add_argument("--seeds", type=int, default=1, help="seeds 0..K-1 (mean ± std over them)")
    run.add_argument("--out", default=DEFAULT_OUT, help="folder of transcripts, tables, plots and the page")
    run.add_argument("--num-envs", type=int, default=4, help="episodes played side by side")
    run.add_argument(
        "--vectorization-mode",
        choices=["sync", "async", "ray"],
        default="sync",
        help="envs in this process, in worker processes, or in Ray actors (RAY_ADDRESS for a cluster)",
    )
    run.add_argument("--step-timeout", type=float, default=30.0, help="seconds per step for third-party agents")
    run.add_argument("--max-steps", type=int, default=None, help="env step limit for every suite")
    run.add_argument("--env-kwargs", type=json.loads, default=None, help="extra env arguments (JSON object)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.set_defaults(handler=_run)
    show = verbs.add_parser("show", help="print the table recomputed from the transcripts")
    show.add_argument("--out", default=DEFAULT_OUT)
    show.add_argument("--format", choices=["markdown", "csv", "json"], default="markdown")
    show.set_defaults(handler=_show)
    board.set_defaults(handler=lambda args: board.print_help() or 2)


def _run(args: argparse.Namespace) -> int:
    from benchmarks.leaderboard.report import write_report
    from benchmarks.leaderboard.runner import RunConfig, run_leaderboard
    from benchmarks.leaderboard.specs import parse_agents
    from benchmarks.leaderboard.suites import parse_suite

    if args.episodes < 0 or args.seeds < 1 or args.num_envs < 1 or args.step_timeout <= 0:
        raise ValueError("--episodes must be >= 0, --seeds and --num-envs >= 1, --step-timeout > 0")
    env_kwargs = dict(args.env_kwargs or {}) if isinstance(args.env_kwargs or {}, dict) else None
    if env_kwargs is None:
        raise ValueError("--env-kwargs must be a JSON object")
    if args.max_steps is not None:
        env_kwargs["max_steps"] = args.max_steps
    agents = parse_agents(args.agent)
    suites = [parse_suite(s) for s in (args.suite or ["alfworld"])]
    config = RunConfig(out=Path(args.out), episodes=args.episodes, seeds=args.seeds, num_envs=args.num_envs,
                       vectorization_mode=args.vectorization_mode, step_timeout=args.step_timeout,
                       env_kwargs=env_kwargs, progress=not args.no_progress)  # fmt: skip
    summary = run_leaderboard(agents, suites, config)
    written = write_report(config.out)
    print(written["markdown"].read_text())
    print(f"played {summary.played} episodes ({summary.failed} failed), {summary.skipped} already done, "
          f"in {summary.seconds:.0f} s")  # fmt: skip
    for problem in summary.errors:
        print(f"not played: {problem}")
    print(f"tables, plots and page: {written['html'].resolve()} (transcripts under {config.out / 'transcripts'})")
    return 1 if summary.errors else 0


def _show(args: argparse.Namespace) -> int:
    from benchmarks.leaderboard.tables import build_tables, to_csv, to_json, to_markdown

    out = Path(args.out)
    if not (out / "transcripts").is_dir():
        raise FileNotFoundError(f"no leaderboard run under {out} (no transcripts/ folder)")
    tables = build_tables(out)
    writer = {"markdown": to_markdown, "csv": to_csv, "json": to_json}[args.format]
    sys.stdout.write(writer(tables))
    for problem in tables["skipped"]:
        print(f"skipped: {problem}", file=sys.stderr)
    return 0
