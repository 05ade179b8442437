"""``GRPOConfig``: every setting of a GRPO run, with its help text and default.

Defaults follow the papers and released scripts of verl-agent / GiGPO (Feng et al., 2025), Skill1 and
SKILL0; ``GRPOConfig.cpu_defaults()`` gives the small settings that make a run finish on a laptop CPU. The CLI exposes every field as a flag.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Literal

from skill_gym.config_fields import check_choices, config_field

__all__ = ["GRPOConfig", "config_field"]

_field = config_field


@dataclasses.dataclass
class GRPOConfig:
    """Settings of a multi-turn GRPO run (TRL ``GRPOConfig`` style: each field documented)."""

    env_id: str = _field("SkillAlfworld-v0", "Gymnasium id of a skill_gym env.")
    env_kwargs: dict[str, Any] = dataclasses.field(
        default_factory=dict,
        metadata={"help": "Extra keyword arguments for gym.make (JSON on the CLI), e.g. the env's answer_format."},
    )
    eval_env_kwargs: dict[str, Any] = dataclasses.field(
        default_factory=dict, metadata={"help": "Overrides of env_kwargs for validation envs (e.g. another split)."}
    )
    vectorization_mode: Literal["sync", "async", "ray"] = _field(
        "sync",
        "Rollout envs in one process (sync), one worker process each (async; for slow envs), or in Ray actors "
        "(ray; on a Ray cluster when RAY_ADDRESS is set, see skill_gym.vector.RayVectorEnv).",
    )
    vector_kwargs: dict[str, Any] = dataclasses.field(
        default_factory=dict,
        metadata={
            "help": "Arguments of the vector env (JSON on the CLI), for rollout and validation envs alike: with "
            'ray, the pool\'s size and placement, e.g. {"num_workers": 4, "envs_per_worker": 8, "address": "auto", '
            '"worker_options": {"num_cpus": 1}}; with async, e.g. {"shared_memory": false}.'
        },
    )
    model: str | None = _field(None, "Policy model: HF id or local path (default SmolLM2-135M-Instruct, offline).")
    backend: Literal["transformers", "vllm"] = _field("transformers", "Rollout backend.")
    num_engines: int = _field(
        1,
        "Rollout engines: above 1, generation is split over that many Ray actors, each with its own engine (vllm: "
        'one per GPU with engine_options {"num_gpus": 1}; transformers: a copy of the policy each), weights synced '
        "through Ray (agents.backends.engine_pool; on a cluster when RAY_ADDRESS or vector_kwargs' address is set).",
    )
    engine_options: dict[str, Any] = dataclasses.field(
        default_factory=dict,
        metadata={
            "help": 'Ray actor options of each engine (JSON on the CLI), e.g. {"num_gpus": 1}; default no CPU reserved, spread over the nodes.'
        },
    )
    vllm_gpu_memory_utilization: float = _field(
        0.4, "vllm on a GPU shared with training: the engine's share of the GPU's memory (weights + KV cache)."
    )
    vllm_sleep_level: int = _field(
        0,
        "vllm on the training GPU: during each update the engine sleeps (vLLM sleep mode) and wakes for generation; "
        "1: KV cache freed, weights kept in CPU memory; 2: weights dropped too (full fine-tuning: the step's sync "
        "reloads them); 0: never (CUDA only).",
    )
    device: str = _field("cpu", "Training device (cpu, cuda).")
    dtype: Literal["float32", "bfloat16"] = _field("float32", "Parameter dtype (bfloat16 on GPU).")
    lora_rank: int = _field(
        16, "LoRA rank; 0 fine-tunes every weight (Skill1, SKILL0, verl-agent), with a frozen copy as KL reference."
    )
    lora_alpha: int = _field(32, "LoRA alpha.")
    learning_rate: float = _field(
        3e-5,
        "AdamW learning rate. 3e-5 moves the default LoRA adapter as far per update as full fine-tuning at 1e-6 "
        "(benchmarks/perf/lora_learning_rate.py; LoRA at 1e-6 moves it 25x less); the papers and released scripts "
        "fine-tune all weights at 1e-6 (--recipe released / paper set lora_rank 0 and 1e-6).",
    )
    weight_decay: float = _field(0.0, "AdamW weight decay (verl's actor optimizer: 0.01).")
    warmup_steps: int = _field(0, "Linear warm-up steps of the learning rate.")
    total_steps: int = _field(150, "Policy updates in the run.")
    tasks_per_step: int = _field(16, "Distinct tasks per update (ALFWorld: 16).")
    group_size: int = _field(8, "Rollouts per task: the GRPO group (G).")
    max_new_tokens: int = _field(512, "Token budget of one response.")
    temperature: float = _field(1.0, "Sampling temperature of training rollouts.")
    top_p: float = _field(1.0, "Nucleus sampling of training rollouts.")
    val_temperature: float = _field(0.4, "Sampling temperature of validation (0 = greedy).")
    history_length: int = _field(2, "Past steps shown in each prompt (verl-agent: 2).")
    max_turns: int = _field(64, "Safety cap on policy turns per episode (phases included).")
    reward_scale: float = _field(10.0, "Outcome reward on success (verl-agent: 10).")
    invalid_penalty: float = _field(0.1, "Penalty per invalid act turn (see invalid_kind, invalid_penalty_scope).")
    invalid_kind: Literal["format", "format_or_action"] = _field(
        "format_or_action",
        "What is penalized: a bad answer format only (verl-agent: <think> pair, an <action>, no CJK), or also an "
        "action the env refused (not admissible).",
    )
    invalid_penalty_scope: Literal["episode", "turn"] = _field(
        "episode",
        "episode: the episode's return loses invalid_penalty x #invalid turns, on every turn; turn: only the invalid "
        "turn's return is reduced (verl-agent's apply_invalid_action_penalty), before normalization.",
    )
    advantage: Literal["grpo", "gigpo"] = _field(
        "grpo", "grpo: group-normalized outcome; gigpo: plus GiGPO's step-level advantage over anchor observations."
    )
    group_stats: Literal["episode", "turn"] = _field(
        "episode",
        "Samples of the group mean/std: episode = one per rollout (population std; GRPO papers); turn = every turn "
        "of the task's rollouts (unbiased std, eps 1e-6, a lone sample keeps its value; verl-agent).",
    )
    norm_adv_by_std: bool = _field(
        True, "Divide group-centred returns by the group std (GRPO; GiGPO mean_std_norm); off = Dr.GRPO / mean_norm."
    )
    gigpo_step_weight: float = _field(1.0, "GiGPO: weight ω of the step-level advantage (verl-agent: 1.0).")
    gigpo_gamma: float = _field(0.95, "GiGPO: discount γ of the step returns (verl-agent's ALFWorld script: 0.95).")
    clip_low: float = _field(0.2, "Lower clip of the importance ratio.")
    clip_high: float = _field(0.2, "Upper clip of the importance ratio (0.28 for DAPO's clip-higher).")
    dual_clip: float = _field(
        3.0, "Dual-clip PPO: a negative-advantage token loses at most c x |A| (verl: c = 3); 0 turns it off."
    )
    loss_agg: Literal["token_mean", "micro_token_mean", "seq_mean_token_mean"] = _field(
        "token_mean",
        "Loss aggregation: token_mean over the mini-batch; micro_token_mean = mean of each micro-batch's token mean "
        "(verl, depends on micro_batch_size; its scripts use 32); seq_mean_token_mean = mean of per-response means.",
    )
    kl_coef: float = _field(0.01, "Low-variance KL to the reference (base model; LoRA adapter disabled).")
    entropy_coef: float = _field(0.001, "Entropy bonus.")
    ppo_epochs: int = _field(1, "Passes over each batch of rollouts.")
    mini_batch_size: int = _field(256, "Turns per optimizer step (gradient accumulation inside).")
    micro_batch_size: int = _field(8, "Turns per forward/backward pass.")
    micro_batch_tokens: int = _field(
        0, "Cap on padded tokens (turns x longest prompt+response) per forward/backward pass; 0: no cap."
    )
    gradient_checkpointing: bool = _field(
        False,
        "Recompute activations in the backward pass: the update's peak memory no longer grows with layers x tokens.",
    )
    max_grad_norm: float = _field(1.0, "Gradient clipping.")
    fsdp_offload: bool = _field(
        False,
        "Keep the policy's parameters, gradients and optimizer states in CPU memory (FSDP2 CPUOffloadPolicy; one "
        "process too, in a process group of one): the GPU holds one layer's full weights at a time, and generation "
        "an unsharded copy of the policy.",
    )
    dist_timeout_minutes: float = _field(
        60.0, "Distributed runs: how long a rank waits in a collective (e.g. while rank 0 validates alone)."
    )
    seed: int = _field(0, "Seed of task sampling, generation and initialization.")
    run_dir: str = _field("runs/grpo", "Run directory: config, metrics.jsonl, tensorboard, checkpoints.")
    save_every: int = _field(10, "Checkpoint every N steps (and at the end).")
    eval_every: int = _field(0, "Validate every N steps (0: never).")
    eval_tasks: int = _field(0, "Tasks per validation (0: all of the eval env).")
    eval_envs: int = _field(16, "Envs stepped together in validation.")
    keep_checkpoints: int = _field(2, "Checkpoints kept on disk.")
    resume: bool = _field(False, "Continue from the latest checkpoint in run_dir.")
    progress: bool = _field(True, "Show a progress bar.")
    wandb_project: str | None = _field(None, "Also log to Weights & Biases (when installed and configured).")
    library_service: bool = _field(
        False,
        "Skill envs: serve the run's library (<run_dir>/library.sqlite) from this process (rank 0) over HTTP and give "
        "the envs its URL, so Ray env workers and training ranks on other nodes share it (skill-gym serve library); "
        "checkpoints still copy the file. Always on in a distributed run.",
    )
    library_host: str = _field(
        "127.0.0.1",
        "Address the library service binds, and the envs reach it at: on a cluster, this node's address (then "
        "$SKILL_GYM_LIBRARY_TOKEN must hold a token, handed to the envs).",
    )
    recipe: str | None = _field(
        None, "Recipe the settings came from (released, paper; agents.recipes), recorded in config.json."
    )

    def __post_init__(self) -> None:
        if self.library_host in ("", "0.0.0.0", "::"):
            raise ValueError(f"library_host must be an address the env workers can reach, got {self.library_host!r}")
        if self.vllm_sleep_level not in (0, 1, 2):
            raise ValueError(f"vllm_sleep_level must be 0, 1 or 2; got {self.vllm_sleep_level!r}")
        for name in ("save_every", "keep_checkpoints", "tasks_per_step", "group_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        check_choices(self)

    @classmethod
    def cpu_defaults(cls, **overrides: Any) -> GRPOConfig:
        """Small settings for a CPU run with SmolLM2-135M (minutes, not hours).

        The learning rate is 1e-4: a CPU run has a few dozen steps, not hundreds, and a LoRA adapter at 1e-5
        moves the policy about a third as far per step as the papers' full fine-tuning at 1e-6
        (``benchmarks/perf/lora_learning_rate.py``); ``benchmarks/perf/learning_curve.py`` shows the curve.
        """
        small = dict(
            total_steps=2, tasks_per_step=2, group_size=2, max_new_tokens=48, learning_rate=1e-4,
            mini_batch_size=64, micro_batch_size=4, micro_batch_tokens=1024, gradient_checkpointing=True,
            max_turns=12, env_kwargs={"max_steps": 4},
        )  # fmt: skip
        small.update(overrides)
        return cls(**small)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> GRPOConfig:
        data = json.loads(Path(path).read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
