"""skill-gym's learners: backends, prompts, the multi-turn rollout engine, evaluation, GRPO, Skill1 and SKILL0.

Note: the import name ``agents`` is also used by the OpenAI Agents SDK (``openai-agents``); do not
install both in one environment (``skill-gym doctor`` checks).
"""

__all__ = ["backends", "evaluation", "grpo", "prompts", "rollout", "skill0", "skill1"]
