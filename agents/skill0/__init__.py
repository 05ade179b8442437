"""SKILL0: skills in context during RL, withdrawn by a helpfulness-driven curriculum.

``curriculum.py`` (budget schedule, per-file Δ, active-set choice), ``config.py``, ``trainer.py``.
"""

from agents.skill0.config import Skill0Config
from agents.skill0.curriculum import Curriculum, budget_at, choose_active, file_deltas
from agents.skill0.trainer import Skill0Trainer

__all__ = ["Curriculum", "Skill0Config", "Skill0Trainer", "budget_at", "choose_active", "file_deltas"]
