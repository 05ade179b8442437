"""The leaderboard: any agent on every suite, tables and plots beside the papers' reported numbers.

Modules, one idea each:

* :mod:`~benchmarks.leaderboard.protocol` — the plug-in agent protocol and the adapters that need no learner
  code (a plain callable, random, an expert that reads the env's info); a third party imports only this;
* :mod:`~benchmarks.leaderboard.suites` — the suites: the env families of :mod:`skill_gym.families`, each on a
  split (ids, the papers' columns, expert), and the task order;
* :mod:`~benchmarks.leaderboard.players` — how the runner asks agents for actions: guarded third-party agents
  (per-step timeout, failures isolated) and chat backends (our policies, OpenAI-compatible endpoints);
* :mod:`~benchmarks.leaderboard.specs` — agents named by spec strings (``random``, ``openai:MODEL@URL``,
  ``hf:PATH``, ``library:SPEC``, ``python:module:attr``) or a small YAML file;
* :mod:`~benchmarks.leaderboard.transcripts` — one JSONL transcript per episode, written atomically;
* :mod:`~benchmarks.leaderboard.runner` — agents x suites x seeds over vector envs, resumable;
* :mod:`~benchmarks.leaderboard.tables` — tables recomputed from the transcripts, beside ``reported.json``;
* :mod:`~benchmarks.leaderboard.report` — Markdown, CSV, JSON, PNG plots and one static HTML page;
* :mod:`~benchmarks.leaderboard.cli` — ``skill-gym leaderboard run|show``.

This package imports nothing at import time, so ``import benchmarks.leaderboard.protocol`` stays cheap.
"""
