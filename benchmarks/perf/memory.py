"""Peak memory of one training step, phase by phase, for GRPO, Skill1, SKILL0 and the one-stage Skill1 -> SKILL0
stage 2, side by side with TRL's GRPOTrainer.

Measured (each learner in its own child process, so one learner's memory never inflates another's):

* ``init`` — the process after building the trainer: model (SmolLM2-135M-Instruct, fp32, LoRA r=16),
  optimizer, rollout envs (``SkillAlfworld-v0``, the real engine), encoder and library. ``skill1to0_distill`` is
  the one-stage option's stage 2 (SKILL0's curriculum with Skill1's distill turn), on the starter skill files in
  place of an export and a fresh library;
* ``collect`` — the rollout: generation (KV cache, per-step scores), envs, prompts;
* ``update`` — old/reference log-probs, the loss, the backward pass, the optimizer step;
* ``checkpoint`` — weights, optimizer state and the library snapshot;
* ``after_step`` — what stays resident once the step is over.

Peaks are the kernel's own ``VmHWM`` (``/proc/self/status``), reset before each phase by writing ``5`` to
``/proc/self/clear_refs``. Tokens per second: generated tokens over generation time, and trained
(prompt + response) tokens over update time.

The anchor: TRL's ``GRPOTrainer`` (``trl``) on the same model with the same LoRA, the same number of
trained completions, prompt length (the learners' mean ALFWorld prompt) and completion length, one
optimizer step with its defaults (gradient checkpointing on), its peak measured the same way over
``trainer.train()``. A scaling run also gives the update's peak with 8, 16 and 32 samples (peak per
sample must not grow with the number of rollouts).

Targets: every learner's step peak <= 3 GB at the CPU preset; <= TRL's peak; update peak per sample
not growing with the number of samples.

Usage:
    python -m benchmarks.perf.memory [--learners grpo skill1 skill0 skill1to0_distill] [--no-trl] [--scaling 8 16 32]
                                     [--out benchmarks/results/memory.json]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.perf import common

LEARNERS = ("grpo", "skill1", "skill0", "skill1to0_distill")
GB = 1e6  # /proc reports kB


def peak_gb() -> tuple[float, float]:
    """``(VmHWM, VmRSS)`` of this process in GB."""
    fields = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(("VmHWM:", "VmRSS:")):
                fields[line.split(":")[0]] = int(line.split()[1]) / GB
    return round(fields["VmHWM"], 3), round(fields["VmRSS"], 3)


def reset_peak() -> None:
    """Start a new ``VmHWM`` window (Linux: ``echo 5 > /proc/self/clear_refs``)."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def _phase(name: str, phases: dict[str, Any], fn: Any) -> Any:
    """Run ``fn`` as one measured phase: peak RSS, RSS after, seconds, and peak GPU memory when there is a GPU."""
    import torch

    gpu = torch.cuda.is_available()
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    reset_peak()
    started = time.perf_counter()
    out = fn()
    hwm, rss = peak_gb()
    phases[name] = {"peak_gb": hwm, "rss_after_gb": rss, "seconds": round(time.perf_counter() - started, 2)}
    if gpu:
        phases[name]["cuda_max_allocated_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 3)
    return out


def learner_step(name: str, run_dir: str, device: str = "cpu") -> dict[str, Any]:
    """One CPU-preset step of ``name``, phase by phase (runs in a child process)."""
    import torch

    torch.set_num_threads(1)
    on_gpu = device.startswith("cuda")
    from agents.grpo import GRPOConfig, GRPOTrainer, Sample
    from agents.skill0 import Skill0Config, Skill0Trainer
    from agents.skill1 import Skill1Config, Skill1Trainer

    classes = {"grpo": (GRPOTrainer, GRPOConfig), "skill1": (Skill1Trainer, Skill1Config),
               "skill0": (Skill0Trainer, Skill0Config)}  # fmt: skip
    extra = {"test_freq": 0, "mode": "full"} if name == "skill0" else {}
    if on_gpu:
        extra.update(device=device, dtype="bfloat16")
    settings = dict(env_id="SkillAlfworld-v0", run_dir=run_dir, progress=False, **extra)
    if name == "skill1to0_distill":
        build, config = _distilling_stage2(settings)
    else:
        trainer_cls, config_cls = classes[name]
        config = config_cls.cpu_defaults(**settings)
        build = functools.partial(trainer_cls, config)
    phases: dict[str, Any] = {}
    trainer = _phase("init", phases, build)
    episodes, stats = _phase("collect", phases, trainer.collect)
    advantages = trainer.turn_advantages(episodes)
    samples = [Sample(t.prompt_ids, t.response_ids, float(a), t.phase)
               for e, per_turn in zip(episodes, advantages, strict=True)
               for t, a in zip(e.turns, per_turn, strict=True) if t.response_ids]  # fmt: skip
    _phase("update", phases, lambda: trainer.update(samples))
    trainer.step += 1
    _phase("checkpoint", phases, trainer.save_checkpoint)
    trainer.close()
    phases["after_step"] = {"rss_gb": peak_gb()[1]}
    trained = sum(len(s.prompt_ids) + len(s.response_ids) for s in samples)
    return {
        "phases": phases,
        "peak_gb": max(p["peak_gb"] for p in phases.values() if "peak_gb" in p),
        "samples": len(samples),
        "prompt_tokens_mean": round(sum(len(s.prompt_ids) for s in samples) / max(len(samples), 1), 1),
        "response_tokens_mean": round(sum(len(s.response_ids) for s in samples) / max(len(samples), 1), 1),
        "generate_tokens_per_s": round(stats.response_tokens / max(stats.generate_seconds, 1e-9), 2),
        "update_tokens_per_s": round(trained / max(phases["update"]["seconds"], 1e-9), 1),
        "settings": {k: getattr(config, k) for k in ("tasks_per_step", "group_size", "max_new_tokens",
                     "micro_batch_size", "micro_batch_tokens", "gradient_checkpointing", "lora_rank")},
    }  # fmt: skip


def _distilling_stage2(settings: dict[str, Any]) -> tuple[Any, Any]:
    """The one-stage option's stage-2 trainer (a builder) and its config: the CPU preset, ALFWorld's starter skill
    files standing in for stage 1's export, a fresh library for the distill turn."""
    from agents.skill1to0 import Skill1To0Config
    from agents.skill1to0.distilling import DistillingSkill0Trainer

    two_stage = Skill1To0Config.cpu_defaults(**settings, stage2_distill=True)
    config = two_stage.stage2_config("", two_stage.model)
    config.env_kwargs = {**config.env_kwargs, "library": str(Path(settings["run_dir"]) / "library.sqlite")}
    return lambda: DistillingSkill0Trainer(config, two_stage, two_stage.rules()), config


def update_scaling(n_samples: int, prompt_tokens: int, response_tokens: int, device: str = "cpu") -> dict[str, Any]:
    """The update's peak with ``n_samples`` samples of fixed lengths (CPU preset settings; child process)."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from agents.backends.hf import LoraSettings, load_policy
    from agents.grpo import GRPOConfig, Sample
    from agents.grpo.update import PolicyUpdate

    gpu = {"device": device, "dtype": "bfloat16"} if device.startswith("cuda") else {}
    config = GRPOConfig.cpu_defaults(**gpu)
    model, tokenizer = load_policy(None, lora=LoraSettings(rank=config.lora_rank, alpha=config.lora_alpha),
                                   dtype=config.dtype, device=config.device)  # fmt: skip
    update = PolicyUpdate(model, tokenizer, config)
    rng = np.random.default_rng(0)
    vocab = len(tokenizer)
    samples = [Sample(rng.integers(100, vocab, size=prompt_tokens).tolist(),
                      rng.integers(100, vocab, size=response_tokens).tolist(), float(rng.normal()))
               for _ in range(n_samples)]  # fmt: skip
    base = peak_gb()[1]
    phases: dict[str, Any] = {}
    _phase("update", phases, lambda: update(samples))
    peak = phases["update"]["peak_gb"]
    row = {"samples": n_samples, "base_gb": base, "peak_gb": peak, "peak_above_base_per_sample_mb":
           round((peak - base) * 1000 / n_samples, 1), "seconds": phases["update"]["seconds"]}  # fmt: skip
    if "cuda_max_allocated_gb" in phases["update"]:
        row["cuda_max_allocated_gb"] = phases["update"]["cuda_max_allocated_gb"]
        row["cuda_per_sample_mb"] = round(phases["update"]["cuda_max_allocated_gb"] * 1000 / n_samples, 1)
    return row


def trl_step(n_completions: int, group: int, prompt_tokens: int, completion_tokens: int, micro: int) -> dict[str, Any]:
    """One ``GRPOTrainer`` step of TRL on the same model and lengths (child process)."""
    import torch

    torch.set_num_threads(1)
    import trl
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from agents.backends.hf import LoraSettings
    from agents.models import resolve_policy_model

    path = resolve_policy_model()
    tokenizer = AutoTokenizer.from_pretrained(path)
    sentence = "You arrive at cabinet 3. On the cabinet 3, you see a mug 1, a knife 2 and a spatula 1. "
    words = (sentence * (prompt_tokens // 10 + 4)).split()
    text = " ".join(words)
    while len(tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=True,
                                            add_generation_prompt=True, return_dict=False)) > prompt_tokens:  # fmt: skip
        words = words[:-3]
        text = " ".join(words)
    prompts = [[{"role": "user", "content": f"Task {i}. {text}"}] for i in range(n_completions // group)]
    lora = LoraSettings()
    args = trl.GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-"), max_steps=1, per_device_train_batch_size=micro,
        gradient_accumulation_steps=max(n_completions // micro, 1), num_generations=group,
        max_completion_length=completion_tokens, use_cpu=True, report_to="none", save_strategy="no",
        logging_steps=1, learning_rate=1e-5, bf16=False, dataloader_num_workers=0,
    )  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    trainer = trl.GRPOTrainer(
        model=model, reward_funcs=lambda completions, **_: [float(len(c[0]["content"]) % 2) for c in completions],
        args=args, train_dataset=Dataset.from_dict({"prompt": prompts}), processing_class=tokenizer,
        peft_config=LoraConfig(r=lora.rank, lora_alpha=lora.alpha, target_modules=list(lora.target_modules)),
    )  # fmt: skip
    phases: dict[str, Any] = {"init": {"rss_gb": peak_gb()[1]}}
    _phase("step", phases, trainer.train)
    return {"phases": phases, "peak_gb": phases["step"]["peak_gb"], "completions": n_completions,
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "trl": trl.__version__,
            "gradient_checkpointing": args.gradient_checkpointing}  # fmt: skip


def _child(kind: str, *params: str) -> dict[str, Any]:
    """Run ``kind`` in a fresh interpreter; its JSON result."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = handle.name
    command = [sys.executable, "-m", "benchmarks.perf.memory", "--child", kind, *params, "--child-out", out]
    result = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    )
    if result.returncode != 0:
        return {"error": result.stderr[-3000:]}
    data = json.loads(Path(out).read_text())
    os.unlink(out)
    return data


def _run_child(args: argparse.Namespace) -> None:
    kind, params = args.child, args.params
    if kind in LEARNERS:
        data = learner_step(kind, params[0], params[1])
    elif kind == "scaling":
        data = update_scaling(*(int(p) for p in params[:3]), params[3])
    else:
        data = trl_step(*(int(p) for p in params))
    Path(args.child_out).write_text(json.dumps(data))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--learners", nargs="*", default=list(LEARNERS), choices=LEARNERS)
    parser.add_argument("--no-trl", action="store_true", help="skip TRL's GRPOTrainer")
    parser.add_argument("--scaling", nargs="*", type=int, default=[8, 16, 32], help="update sizes (samples)")
    parser.add_argument("--scaling-lengths", nargs=2, type=int, default=[300, 48], metavar=("PROMPT", "RESPONSE"))
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (bf16; GPU peaks from torch.cuda)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/memory.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    parser.add_argument("params", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _run_child(args)
        return {}
    settings = {k: v for k, v in vars(args).items() if not k.startswith("child") and k != "params"}
    title = "Peak memory of one training step, per phase, vs TRL GRPOTrainer"
    job = common.Job(title, settings, ["torch", "transformers", "peft", "trl"], out=args.out, load=False)
    learners: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as root:
        for name in args.learners:
            learners[name] = _child(name, str(Path(root) / name), args.device)
            print(f"{name}: {json.dumps(learners[name].get('phases', learners[name]))}", flush=True)
    measured = [v for v in learners.values() if "samples" in v]
    trl_result: dict[str, Any] = {}
    if not args.no_trl and measured:
        ref = max(measured, key=lambda v: v["samples"])
        n = ref["samples"] - ref["samples"] % 2 or 2
        micro = ref["settings"]["micro_batch_size"]
        trl_result = _child("trl", str(n), "2", str(int(ref["prompt_tokens_mean"])),
                            str(ref["settings"]["max_new_tokens"]), str(micro))  # fmt: skip
        print(f"trl: {json.dumps(trl_result.get('phases', trl_result))}", flush=True)
    scaling = [_child("scaling", str(n), *map(str, args.scaling_lengths), args.device) for n in args.scaling]
    for row in scaling:
        print(f"scaling: {row}", flush=True)
    peaks = {k: v.get("peak_gb") for k, v in learners.items()}
    per_sample = [r["peak_above_base_per_sample_mb"] for r in scaling if "peak_gb" in r]
    targets = {
        "step_peak_le_3gb": all(p is not None and p <= 3.0 for p in peaks.values()),
        "update_peak_per_sample_not_growing": all(b <= a * 1.05 for a, b in itertools.pairwise(per_sample)),
    }
    if not args.no_trl:  # a skipped anchor is no failed target
        targets["step_peak_le_trl"] = bool(trl_result.get("peak_gb")) and all(
            p is not None and p <= trl_result["peak_gb"] for p in peaks.values())  # fmt: skip
    table = [[name, v.get("peak_gb", "-"), *(v.get("phases", {}).get(p, {}).get("peak_gb", "-")
              for p in ("init", "collect", "update", "checkpoint")), v.get("update_tokens_per_s", "-")]
             for name, v in [*learners.items(), ("trl", trl_result)]]  # fmt: skip
    common.print_table(["system", "step peak GB", "init", "collect", "update", "checkpoint", "update tok/s"], table)
    return job.finish({"learners": learners, "trl": trl_result, "update_scaling": scaling}, targets=targets)


if __name__ == "__main__":
    main()
