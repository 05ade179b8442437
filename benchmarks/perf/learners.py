"""Step cost of the learners on one setting: GRPO vs Skill1, and SKILL0 with full skills vs none.

Skill1 reports 1.3–1.7× the step time of GRPO on GPU (Skill1, arXiv 2605.06130); SKILL0's point is that the
context cost of skills goes away once the curriculum has withdrawn them. This script trains each
learner for a few steps on ``SkillAlfworld-v0`` with the same model, seeds and limits, one learner after
the other (each closed and its memory handed back before the next starts, so none inflates another's
peak), and reports per step: wall time, generation time, prompt (context) and response tokens, turns,
the learner's peak RSS — and the ratios.

    python -m benchmarks.perf.learners [--steps 2] [--model PATH_OR_ID] [--out benchmarks/results/learners.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agents.grpo.update import release_freed_memory
from benchmarks.perf import common
from benchmarks.perf.memory import peak_gb, reset_peak

# Distributions whose versions the JSON records (``machine.versions``).
PACKAGES = ("torch", "transformers", "peft", "skill-gym")


@dataclasses.dataclass
class Args:
    """Benchmark settings; each field is a ``--flag`` (underscores as dashes)."""

    steps: int = dataclasses.field(default=2, metadata={"help": "training steps per learner (after one warm-up step)"})
    model: str | None = dataclasses.field(
        default=None,
        metadata={"help": "policy model, a path or hub id; SmolLM2-135M-Instruct from the offline package when unset"},
    )
    tasks_per_step: int = dataclasses.field(default=2, metadata={"help": "distinct tasks per training step"})
    group_size: int = dataclasses.field(default=2, metadata={"help": "rollouts per task (the GRPO group)"})
    max_new_tokens: int = dataclasses.field(default=32, metadata={"help": "token budget of one response"})
    max_steps: int = dataclasses.field(default=4, metadata={"help": "ALFWorld act steps per episode"})
    threads: int = dataclasses.field(default=2, metadata={"help": "torch intra-op threads"})
    out: str = dataclasses.field(
        default="benchmarks/results/learners.json", metadata={"help": "where to write the JSON results"}
    )


def _trainers(args: Args, root: Path) -> dict[str, Callable[[], Any]]:
    from agents.grpo import GRPOConfig, GRPOTrainer
    from agents.skill0 import Skill0Config, Skill0Trainer
    from agents.skill1 import Skill1Config, Skill1Trainer
    from skill_gym.library import SkillLibrary, load_skills
    from skill_gym.skill_env import starter_skills_dir

    shared = dict(
        env_id="SkillAlfworld-v0", model=args.model, total_steps=10_000, tasks_per_step=args.tasks_per_step,
        group_size=args.group_size, max_new_tokens=args.max_new_tokens, micro_batch_size=4, mini_batch_size=256,
        max_turns=args.max_steps + 4, learning_rate=1e-5, progress=False, save_every=10_000, seed=0,
    )  # fmt: skip
    env = {"max_steps": args.max_steps}
    library = root / "skill1" / "library.sqlite"
    library.parent.mkdir(parents=True)
    with SkillLibrary(library) as lib:  # a library mid-training: the starter skills
        lib.add(load_skills(starter_skills_dir("alfworld"), env="alfworld"))
    base = {"selection": "none", "distillation": "none"}

    def skill0(run_dir: str, mode: str) -> Skill0Trainer:
        config = Skill0Config(
            run_dir=str(root / run_dir), env_kwargs=dict(env), mode=mode, test_freq=0, **{**shared, "kl_coef": 0.01}
        )
        return Skill0Trainer(config)

    return {  # factories: each learner is built only when its turn comes
        "grpo": lambda: GRPOTrainer(GRPOConfig(run_dir=str(root / "grpo"), env_kwargs={**env, **base}, **shared)),
        "skill1": lambda: Skill1Trainer(Skill1Config(run_dir=str(root / "skill1"), env_kwargs=env, top_k=3, **shared)),
        "skill0_full": lambda: skill0("s0full", "full"),
        "skill0_empty": lambda: skill0("s0none", "none"),
    }


def main(args: Args) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp(prefix="learners-bench-"))
    started = time.perf_counter()
    try:
        factories = _trainers(args, root)
        rows: dict[str, list[dict[str, float]]] = {name: [] for name in factories}
        for name, make in factories.items():
            gc.collect()
            release_freed_memory()
            reset_peak()
            trainer = make()
            for rep in range(args.steps + 1):
                metrics = trainer.train_step()
                if rep == 0:
                    continue  # warm-up: first loads of games, encoder, allocator
                rows[name].append(
                    {
                        "step_s": metrics["perf/step_seconds"],
                        "generate_s": metrics["perf/generate_seconds"],
                        "env_s": metrics["perf/env_seconds"],
                        "prompt_tokens": metrics["perf/prompt_tokens"],
                        "response_tokens": metrics["perf/response_tokens"],
                        "act_turns_per_episode": metrics["turns/act_per_episode"],
                        "peak_rss_gb": peak_gb()[0],
                    }
                )
            trainer.close()
            del trainer
    finally:
        shutil.rmtree(root, ignore_errors=True)
    summary = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in rows.items()}
    ratios = {
        "skill1_over_grpo_step_time": summary["skill1"]["step_s"] / summary["grpo"]["step_s"],
        "skill1_over_grpo_tokens": (summary["skill1"]["prompt_tokens"] + summary["skill1"]["response_tokens"])
        / (summary["grpo"]["prompt_tokens"] + summary["grpo"]["response_tokens"]),
        "skill0_full_over_empty_context_tokens": summary["skill0_full"]["prompt_tokens"]
        / summary["skill0_empty"]["prompt_tokens"],
        "skill0_full_over_empty_step_time": summary["skill0_full"]["step_s"] / summary["skill0_empty"]["step_s"],
    }
    common.print_table(
        ["learner", "step s", "gen s", "prompt tok", "resp tok", "act/ep", "peak GB"],
        [[name, f"{r['step_s']:.1f}", f"{r['generate_s']:.1f}", f"{r['prompt_tokens']:.0f}",
          f"{r['response_tokens']:.0f}", f"{r['act_turns_per_episode']:.2f}", f"{r['peak_rss_gb']:.2f}"]
         for name, r in summary.items()],
    )  # fmt: skip
    for key, value in ratios.items():
        print(f"{key}: {value:.2f}")
    result = {
        "benchmark": "learners",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "wall_s": time.perf_counter() - started,
        "args": dataclasses.asdict(args),
        "machine": common.machine_info(PACKAGES),
        "per_step_median": summary,
        "per_step": rows,
        "ratios": ratios,
        "anchor": "Skill1 paper: 387-494 s vs GRPO ~290 s per step on 8xH800 (1.3-1.7x)",
    }
    common.write_json(args.out, result)
    print(f"wrote {args.out}")
    return result


def _parse(argv: Sequence[str] | None = None) -> Args:
    """Command-line flags, one per :class:`Args` field."""
    parser = common.settings_parser(Args, __doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    return Args(**vars(parser.parse_args(argv)))


if __name__ == "__main__":
    main(_parse())
