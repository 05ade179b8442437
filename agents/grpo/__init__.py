"""Multi-turn GRPO: config (``config.py``), advantages (``advantages.py``), loss (``loss.py``), the update
(``update.py``), checkpoints (``checkpoint.py``) and the trainer (``trainer.py``)."""

from agents.grpo.advantages import episode_return, group_advantages, group_normalize
from agents.grpo.config import GRPOConfig
from agents.grpo.loss import grpo_token_loss, low_var_kl, token_logprobs
from agents.grpo.trainer import GRPOTrainer, Sample

__all__ = [
    "GRPOConfig",
    "GRPOTrainer",
    "Sample",
    "episode_return",
    "group_advantages",
    "group_normalize",
    "grpo_token_loss",
    "low_var_kl",
    "token_logprobs",
]
