"""Multi-turn GRPO: config (``config.py``), advantages (``advantages.py``: GRPO and GiGPO), loss (``loss.py``),
the update (``update.py``), checkpoints (``checkpoint.py``) and the trainer (``trainer.py``)."""

from agents.grpo.advantages import (
    episode_return,
    gigpo_step_advantages,
    gigpo_turn_advantages,
    group_advantages,
    group_normalize,
    grpo_turn_advantages,
    turn_returns,
)
from agents.grpo.config import GRPOConfig
from agents.grpo.loss import grpo_token_loss, low_var_kl, token_logprobs, token_weights
from agents.grpo.trainer import GRPOTrainer, Sample

__all__ = [
    "GRPOConfig",
    "GRPOTrainer",
    "Sample",
    "episode_return",
    "gigpo_step_advantages",
    "gigpo_turn_advantages",
    "group_advantages",
    "group_normalize",
    "grpo_token_loss",
    "grpo_turn_advantages",
    "low_var_kl",
    "token_logprobs",
    "token_weights",
    "turn_returns",
]
