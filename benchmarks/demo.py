"""``skill-gym demo`` (``make demo``): the leaderboard over the embedded suites, offline, in minutes on a CPU.

Plays ALFWorld (out-of-distribution split), WebShop and Search-QA with

* the baselines — a random agent and each suite's expert/oracle — at the suites' own step limits, and
* SmolLM2-135M-Instruct (CPU), plain and as the library agent (similarity-selected starter skills in
  its prompt), on fewer episodes with a shorter step limit, named in the agent's row,

then prints the table (the papers' reported rows beside ours) and writes the Markdown/CSV/JSON tables,
the plots and the HTML page under ``--workdir``. Everything is the real leaderboard
(:mod:`benchmarks.leaderboard`): ``skill-gym leaderboard show --out WORKDIR`` reprints the table and
``skill-gym leaderboard run --out WORKDIR ...`` adds agents to it.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import time
from pathlib import Path
from typing import Any

__all__ = ["DemoPlan", "add_demo_command", "run_demo"]

SUITES = ("alfworld:eval_out_of_distribution", "webshop", "searchqa")
MODEL_STEP_LIMITS = {"alfworld": 3, "webshop": 3, "searchqa": 3}
"""Env step limits of the SmolLM2 rows (the baselines keep the suites' own: 50, 15, 4). On two CPU cores the 135M
model reads a few dozen prompt tokens per second per core, so each step of a few hundred tokens costs seconds: the
demo shows the model plugged in, not its score (``--model-episodes`` and ``skill-gym leaderboard run`` go further)."""


@dataclasses.dataclass(frozen=True)
class DemoPlan:
    """How much the demo plays."""

    baseline_episodes: int = 12
    """Episodes per suite for the random and expert agents (ALFWorld: two of each task type)."""
    model_episodes: int = 3
    """Episodes per suite for each SmolLM2 agent (0: no model rows)."""
    max_new_tokens: int = 32
    num_envs: int = 4


def add_demo_command(commands: Any) -> None:
    """``skill-gym demo`` (the ``skill_gym.commands`` entry point)."""
    demo = commands.add_parser("demo", help="the leaderboard over the embedded suites: baselines and SmolLM2 (CPU)")
    demo.add_argument("--workdir", default="runs/demo", help="where the tables, plots, page and transcripts go")
    demo.add_argument("--episodes", type=int, default=DemoPlan.baseline_episodes,
                      help="episodes per suite for the baselines")  # fmt: skip
    demo.add_argument("--model-episodes", type=int, default=DemoPlan.model_episodes,
                      help="episodes per suite for SmolLM2, plain and with the library (0: skip the model)")  # fmt: skip
    demo.add_argument("--resume", action="store_true", help="keep the transcripts already under --workdir")
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    if args.episodes < 1 or args.model_episodes < 0:
        raise ValueError("--episodes must be >= 1 and --model-episodes >= 0")
    plan = DemoPlan(baseline_episodes=args.episodes, model_episodes=args.model_episodes)
    return run_demo(Path(args.workdir), plan, resume=args.resume)


def run_demo(workdir: Path, plan: DemoPlan = DemoPlan(), resume: bool = False) -> int:
    """Play the demo's agents on the embedded suites and write the report; 0 when every agent ran."""
    from benchmarks.leaderboard.report import write_report
    from benchmarks.leaderboard.runner import RunConfig, run_leaderboard
    from benchmarks.leaderboard.specs import AgentEntry
    from benchmarks.leaderboard.suites import parse_suite

    started = time.perf_counter()
    if workdir.exists() and not resume:
        shutil.rmtree(workdir)
    suites = [parse_suite(s) for s in SUITES]
    errors: list[str] = []

    print(f"== baselines: random and expert, {plan.baseline_episodes} episodes per suite ==", flush=True)
    baselines = [AgentEntry("random"), AgentEntry("expert")]
    config = RunConfig(workdir, episodes=plan.baseline_episodes, num_envs=plan.num_envs, progress=True)
    errors += run_leaderboard(baselines, suites, config).errors

    if plan.model_episodes:
        print(f"\n== SmolLM2-135M-Instruct (CPU), plain and with the library, {plan.model_episodes} episodes per "
              "suite ==", flush=True)  # fmt: skip
        for suite in suites:
            limit = MODEL_STEP_LIMITS[suite.name]
            models = [
                AgentEntry("smollm2", name=f"smollm2 (≤{limit} steps)", max_new_tokens=plan.max_new_tokens),
                AgentEntry("library:smollm2", name=f"smollm2+library (≤{limit} steps)",
                           max_new_tokens=plan.max_new_tokens),
            ]  # fmt: skip
            config = RunConfig(workdir, episodes=plan.model_episodes, num_envs=plan.num_envs,
                               env_kwargs={"max_steps": limit}, progress=True)  # fmt: skip
            errors += run_leaderboard(models, [suite], config).errors

    written = write_report(workdir)
    print("\n" + written["markdown"].read_text())
    for problem in errors:
        print(f"not played: {problem}")
    print(f"demo finished in {time.perf_counter() - started:.0f} s")
    print(f"tables, plots and page: {written['html'].resolve()}  (reprint: skill-gym leaderboard show --out {workdir})")
    return 1 if errors else 0
