"""The accelerated ALFWorld engine: upstream's text, commands, scores and plans, 50-200x faster per step.

A profile of the stock engine (alfworld 0.4.2, textworld 1.7.0, fast-downward-textworld 20.6.4) shows where
the time goes: deriving the text of every applicable command through the grammar at every step (TatSu
re-parsing the same templates and queries, deep copies of derivation contexts, re-sorting facts per query),
and at every reset translating the PDDL problem to SAS twice and rebuilding the state. Each mechanism that
removes that work has a module of its own:

* :mod:`.grammar` — text derivation without re-parses and deep copies (same text);
* :mod:`.state` — a game state over a cached translation that restarts in place and keeps facts sorted;
* :mod:`.translation` — PDDL → SAS once per game and process, the planner's translation on first use;
* :mod:`.commands` — command texts cached by exactly the inputs a static walk of each template finds;
* :mod:`.pddl_env` — textworld's ``PddlEnv`` subclassed to use them (no upstream class is modified);
* :mod:`.versions` — the version guard: on other upstream versions the stock engine runs, with a warning.

Outputs identical to the stock engine's (observation text, ordered admissible commands, score, done, won,
facts, the planner's plan) are checked over every embedded game by ``tests/test_alfworld_accel.py``.
Nothing is patched globally: the accelerated classes are used by the engines that ask for them.
"""

from skill_gym.envs.alfworld.accel.versions import PINNED, accelerator_available, accelerator_problem

__all__ = ["PINNED", "accelerator_available", "accelerator_problem"]
