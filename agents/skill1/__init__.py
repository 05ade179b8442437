"""Skill1: one policy co-evolving skill selection, utilization and distillation from one outcome reward.

``config.py`` (switches, paper defaults), ``advantages.py`` (per-phase credit assignment),
``trainer.py`` (the learner on top of :class:`agents.grpo.GRPOTrainer`).
"""

from agents.skill1.advantages import skill1_turn_advantages
from agents.skill1.config import Skill1Config
from agents.skill1.trainer import Skill1Trainer

__all__ = ["Skill1Config", "Skill1Trainer", "skill1_turn_advantages"]
