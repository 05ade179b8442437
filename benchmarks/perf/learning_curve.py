"""Proof that the default CPU recipe learns: GRPO with SmolLM2-135M on ``SkillKeyword-v0``, default vs lr 1e-6.

Trains the policy with ``GRPOConfig.cpu_defaults`` (LoRA r16, its CPU learning rate, KL 0.01, temperature 1.0)
on the ``train`` split of ``SkillKeyword-v0`` (12 tasks: 4 words of each rule) with the skill phases off, the
plain answer format and one try per episode, and beside it the same run at learning rate 1e-6 (the papers'
value; the anchor that barely moves a LoRA adapter), same seeds and tasks. Before and after training both are
evaluated on the held-out ``test`` split (6 unseen words of the same rules): greedy, and sampled at the
training temperature (``--eval-samples`` episodes per task). Reported per run: the training curve (success
and valid-action rate of each step's rollouts) and the held-out success and valid-action rate before and
after with 95 % Wilson intervals over episodes, and each held-out task's success (the sampled episodes of one
task are not independent draws: with 6 tasks, read the per-task rates beside the intervals); the ratio of the
default's held-out gain to the anchor's.

    python -m benchmarks.perf.learning_curve [--steps 32] [--tasks-per-step 4] [--group-size 4]
        [--eval-samples 16] [--out benchmarks/results/learning_curve.json]

The defaults take about 50 minutes on a quiet 2-core machine (~37 s a step).

Writes the JSON and a PNG plot (``--plot``).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.perf import common
from skill_gym.stats import wilson

PACKAGES = ("torch", "transformers", "peft", "skill-gym")
ENV_ID = "SkillKeyword-v0"
ENV_KWARGS = {"selection": "none", "distillation": "none", "answer_format": "plain", "max_steps": 1, "split": "train"}
"""The base task alone (no skill turns), answered with the bare word, one try: one turn per episode."""
ANCHOR_LR = 1e-6


@dataclasses.dataclass
class Args:
    """Benchmark settings; each field is a ``--flag`` (underscores as dashes)."""

    steps: int = dataclasses.field(default=32, metadata={"help": "GRPO steps per run"})
    tasks_per_step: int = dataclasses.field(default=4, metadata={"help": "distinct tasks per step"})
    group_size: int = dataclasses.field(default=4, metadata={"help": "rollouts per task (the GRPO group)"})
    max_new_tokens: int = dataclasses.field(default=8, metadata={"help": "token budget of one response"})
    learning_rate: float = dataclasses.field(
        default=0.0, metadata={"help": "learning rate of the default run; 0: GRPOConfig.cpu_defaults()'s"}
    )
    eval_samples: int = dataclasses.field(default=16, metadata={"help": "sampled held-out episodes per task"})
    seed: int = dataclasses.field(default=0, metadata={"help": "seed of both runs"})
    threads: int = dataclasses.field(default=2, metadata={"help": "torch intra-op threads"})
    out: str = dataclasses.field(default="benchmarks/results/learning_curve.json", metadata={"help": "JSON path"})
    plot: str = dataclasses.field(default="benchmarks/results/learning_curve.png", metadata={"help": "PNG path"})


def rate(successes: int, n: int) -> dict[str, Any]:
    """``{"rate", "ci95", "n"}`` of ``successes`` out of ``n``."""
    return {"rate": successes / max(n, 1), "ci95": list(wilson(successes, n)), "n": n}


def held_out(trainer: Any, args: Args) -> dict[str, Any]:
    """Success and valid-action rate on the ``test`` split: greedy (one episode a task) and sampled."""
    from agents.evaluation import evaluate

    kwargs = {**trainer.env_kwargs, "split": "test"}
    out = {}
    for name, temperature, per_task in (("greedy", 0.0, 1), ("sampled", trainer.config.temperature, args.eval_samples)):
        result = evaluate(
            trainer.backend, ENV_ID, env_kwargs=kwargs, episodes_per_task=per_task, num_envs=48,
            temperature=temperature, max_new_tokens=args.max_new_tokens, max_turns=4, seed=args.seed + 1,
        )  # fmt: skip
        turns = [t for e in result.episodes for t in e.turns if t.phase == "act"]
        by_task: dict[str, list[bool]] = {}
        for e in result.episodes:
            by_task.setdefault(e.task_id, []).append(e.won)
        out[name] = {
            "success": rate(sum(e.won for e in result.episodes), len(result.episodes)),
            "valid_action": rate(sum(t.action_valid for t in turns), len(turns)),
            "per_task_success": {task: sum(won) / len(won) for task, won in sorted(by_task.items())},
            "examples": [t.text for t in turns[:6]],
        }
    return out


def run(args: Args, learning_rate: float | None, root: Path, before: dict[str, Any] | None = None) -> dict[str, Any]:
    """One training run: held-out evaluation (``before``, when given, is it: a fresh LoRA adapter is the base
    model, so every run starts from the same policy), ``args.steps`` GRPO steps, held-out evaluation."""
    from agents.grpo import GRPOConfig, GRPOTrainer

    overrides: dict[str, Any] = dict(
        env_id=ENV_ID, env_kwargs=dict(ENV_KWARGS), total_steps=args.steps, tasks_per_step=args.tasks_per_step,
        group_size=args.group_size, max_new_tokens=args.max_new_tokens, max_turns=4, seed=args.seed,
        save_every=10**6, progress=False, run_dir=str(root / f"lr{learning_rate}"),
    )  # fmt: skip
    if learning_rate is not None:
        overrides["learning_rate"] = learning_rate
    config = GRPOConfig.cpu_defaults(**overrides)
    trainer = GRPOTrainer(config)
    try:
        before = before or held_out(trainer, args)
        steps = []
        for _ in range(args.steps):
            m = trainer.train_step()
            steps.append({"step": m["step"], "success": m["success/all"], "valid_action": 1 - m["turns/invalid_action"],
                          "reward": m["reward/mean"], "step_s": m["perf/step_seconds"]})  # fmt: skip
            print(f"lr {config.learning_rate:g} step {m['step']}: success {m['success/all']:.2f} "
                  f"valid {1 - m['turns/invalid_action']:.2f} ({m['perf/step_seconds']:.0f} s)", flush=True)  # fmt: skip
        after = held_out(trainer, args)
    finally:
        trainer.close()
    return {"learning_rate": config.learning_rate, "config": dataclasses.asdict(config), "steps": steps,
            "held_out_before": before, "held_out_after": after}  # fmt: skip


def _window(steps: Sequence[dict[str, Any]], key: str, first: bool) -> float:
    part = steps[: max(len(steps) // 4, 1)] if first else steps[-max(len(steps) // 4, 1) :]
    return sum(s[key] for s in part) / len(part)


def plot(result: dict[str, Any], path: str) -> None:
    """Training curves (success, valid-action rate) and held-out rates before/after with their intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for name, run_ in result["runs"].items():
        x = [s["step"] for s in run_["steps"]]
        for ax, key in zip(axes[:2], ("success", "valid_action"), strict=True):
            ax.plot(
                x, [s[key] for s in run_["steps"]], marker="o", ms=3, label=f"{name} (lr {run_['learning_rate']:g})"
            )
    for ax, title in zip(axes[:2], ("training rollouts: success", "training rollouts: valid action"), strict=True):
        ax.set(title=title, xlabel="GRPO step", ylim=(-0.02, 1.02))
        ax.legend()
    labels, ticks = [], []
    for i, (name, run_) in enumerate(result["runs"].items()):
        for j, (when, key) in enumerate((("before", "held_out_before"), ("after", "held_out_after"))):
            for k, metric in enumerate(("success", "valid_action")):
                if not run_.get(key):
                    continue  # not measured (a run cut short)
                r = run_[key]["sampled"][metric]
                x = i * 5 + j * 2 + k * 0.8
                axes[2].bar(x, r["rate"], width=0.7, color=f"C{k}", alpha=0.45 if when == "before" else 0.9)
                axes[2].errorbar(x, r["rate"], yerr=[[r["rate"] - r["ci95"][0]], [r["ci95"][1] - r["rate"]]],
                                 color="k", capsize=3)  # fmt: skip
            ticks.append(i * 5 + j * 2 + 0.4)
            labels.append(f"{name}\n{when}")
    axes[2].set_xticks(ticks, labels, fontsize=8)
    axes[2].set(title="held-out tasks, sampled: success (blue), valid (orange)", ylim=(0, 1.02))
    fig.suptitle(f"GRPO, SmolLM2-135M, {ENV_ID} (plain, one try), CPU; bars: 95% Wilson intervals")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(args: Args) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    job = common.Job("learning_curve", args, PACKAGES)
    root = Path(tempfile.mkdtemp(prefix="learning-curve-"))
    try:
        default = run(args, args.learning_rate or None, root)
        common.write_json(args.out, {"partial": "the anchor run has not finished", "runs": {"default": default}})
        runs = {"default": default, "anchor": run(args, ANCHOR_LR, root, before=default["held_out_before"])}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    summary = {}
    for name, r in runs.items():
        summary[name] = {
            "learning_rate": r["learning_rate"],
            "train_success_first_quarter": _window(r["steps"], "success", True),
            "train_success_last_quarter": _window(r["steps"], "success", False),
            "train_valid_first_quarter": _window(r["steps"], "valid_action", True),
            "train_valid_last_quarter": _window(r["steps"], "valid_action", False),
            **{f"held_out_{when}_{mode}_{metric}": r[f"held_out_{when}"][mode][metric]["rate"]
               for when in ("before", "after") for mode in ("greedy", "sampled") for metric in ("success", "valid_action")},
            "step_s_median": sorted(s["step_s"] for s in r["steps"])[len(r["steps"]) // 2],
        }  # fmt: skip
    gain = {n: s["held_out_after_sampled_success"] - s["held_out_before_sampled_success"] for n, s in summary.items()}
    after, anchor = runs["default"]["held_out_after"]["sampled"]["success"], runs["anchor"]["held_out_after"]["sampled"]
    checks = {
        "default: held-out success rose, intervals apart": after["ci95"][0]
        > runs["default"]["held_out_before"]["sampled"]["success"]["ci95"][1],
        "default beats the lr-1e-6 anchor after training, intervals apart": after["ci95"][0]
        > anchor["success"]["ci95"][1],
    }
    common.print_table(
        ["run", "lr", "train succ first/last", "train valid first/last", "held-out succ before/after (sampled)",
         "held-out valid before/after", "step s"],
        [[n, f"{s['learning_rate']:g}", f"{s['train_success_first_quarter']:.2f} / {s['train_success_last_quarter']:.2f}",
          f"{s['train_valid_first_quarter']:.2f} / {s['train_valid_last_quarter']:.2f}",
          f"{s['held_out_before_sampled_success']:.2f} / {s['held_out_after_sampled_success']:.2f}",
          f"{s['held_out_before_sampled_valid_action']:.2f} / {s['held_out_after_sampled_valid_action']:.2f}",
          f"{s['step_s_median']:.0f}"] for n, s in summary.items()],
    )  # fmt: skip
    result = job.finish(
        {
            "env": {"id": ENV_ID, "kwargs": ENV_KWARGS, "held_out": "split=test (6 tasks)"},
            "summary": summary,
            "held_out_success_gain": gain,
            "gain_ratio_default_over_anchor": gain["default"] / gain["anchor"] if gain["anchor"] else None,
            "targets": common.check_targets(checks),
            "runs": runs,
        }
    )
    plot(result, args.plot)
    print(f"wrote {args.plot}")
    return result


if __name__ == "__main__":
    main(common.parse_settings(Args, None, __doc__))
