"""Skill1 then SKILL0: a library built by Skill1 (stage 1), exported as skill files, withdrawn by SKILL0's
curriculum (stage 2) until the policy works with none.

``config.py`` (one config for both stages, the export rules), ``recipes.py`` (Skill1's and SKILL0's recipe parts
composed), ``trainer.py`` (the stages, the export, resume, the final no-skill evaluation).
"""

from agents.skill1to0.config import Skill1To0Config
from agents.skill1to0.trainer import Skill1To0Trainer, save_policy

__all__ = ["Skill1To0Config", "Skill1To0Trainer", "save_policy"]
