"""Scripted Search-QA baselines: an oracle that follows a question's evidence, and a random searcher.

This module holds:

* :class:`OracleSearcher` — one env's oracle: sends the well-formed query of each evidence hop of the
  question (privileged: read from the question file, by ``info["task_id"]``), checks that the passage it
  needs came back (the expected name, year or value in the ``<information>`` block), and answers the first
  golden answer if every hop found its evidence, else ``unknown``. So it scores 1.0 exactly where the
  retriever surfaces the evidence: a check of the retriever and the env, not of an answer key alone.
  Questions without evidence (upstream data) get one search of the question, then the golden answer;
* :class:`RandomSearcher` — one env's random baseline: searches random words of the question or answers a
  random span of what it last read, from its own seeded RNG;
* :class:`OracleAgent` and :class:`RandomAgent` — the same over a batch, ``act(observations, infos) -> actions``
  (one searcher per batch position, reset when its env starts an episode).

>>> from skill_gym.envs.searchqa.data import QATask
>>> task = QATask("t/x/1", "Who founded Acme?", ("Ada Vell",), "x", "direct_retrieval",
...               ({"query": "Acme founded by", "passage_id": "7", "expect": "Ada Vell"},))
>>> oracle = OracleSearcher([task])
>>> oracle.act({"observation": "Question: Who founded Acme?"}, {"task_id": "t/x/1", "step": 0})
'<think>Next piece of evidence: Acme founded by.</think>\\n<search> Acme founded by </search>'
>>> oracle.act({"observation": "<information>Doc 1(Title: Acme) founded by Ada Vell</information>"},
...            {"task_id": "t/x/1", "step": 1})
'<think>The evidence is in.</think>\\n<answer> Ada Vell </answer>'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from skill_gym.agent import BatchAgent
from skill_gym.envs.searchqa.data import QATask, load_tasks
from skill_gym.envs.searchqa.kb import embedded_kb_dir

__all__ = ["OracleAgent", "OracleSearcher", "RandomAgent", "RandomSearcher"]


def _embedded_tasks() -> list[QATask]:
    folder = embedded_kb_dir()
    return [task for split in ("train", "test") for task in load_tasks(folder, split)]


class OracleSearcher:
    """One env's oracle: the evidence queries of the question, then its golden answer if the evidence came back.

    ``tasks`` are the questions it may meet (default: the embedded knowledge base's train and test questions).
    """

    def __init__(self, tasks: Iterable[QATask] | None = None) -> None:
        self.tasks = {task.task_id: task for task in (_embedded_tasks() if tasks is None else tasks)}
        self.reset()

    def reset(self, observation: Mapping[str, str] | None = None, info: Mapping[str, Any] | None = None) -> None:
        """Forget the episode (call at every env reset)."""
        self.hop = 0
        self.missing: list[str] = []

    def act(self, observation: Mapping[str, str], info: Mapping[str, Any]) -> str:
        if info.get("step", 0) == 0:
            self.reset()
        task = self.tasks.get(str(info.get("task_id", "")))
        if task is None:
            return "<answer> unknown </answer>"
        hops = task.evidence or ({"query": task.question, "expect": ""},)
        if self.hop > 0:  # did the last search bring the evidence it was for?
            expected = str(hops[self.hop - 1].get("expect", ""))
            if expected not in observation.get("observation", ""):
                self.missing.append(expected)
        if self.hop < len(hops):
            query = hops[self.hop]["query"]
            self.hop += 1
            return f"<think>Next piece of evidence: {query}.</think>\n<search> {query} </search>"
        if self.missing:
            return f"<think>Evidence not found: {', '.join(self.missing)}.</think>\n<answer> unknown </answer>"
        return f"<think>The evidence is in.</think>\n<answer> {task.golden_answers[0]} </answer>"


class RandomSearcher:
    """One env's random baseline: a search of 1-3 random question words, or an answer of 1-3 words it read."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def reset(self, observation: Mapping[str, str] | None = None, info: Mapping[str, Any] | None = None) -> None:
        """Nothing to forget (kept for the searchers' common interface)."""

    def _span(self, text: str) -> str:
        words = text.replace("<", " ").replace(">", " ").split() or ["unknown"]
        start = int(self.rng.integers(len(words)))
        return " ".join(words[start : start + int(self.rng.integers(1, 4))])

    def act(self, observation: Mapping[str, str], info: Mapping[str, Any]) -> str:
        del info
        if self.rng.random() < 0.5:
            return f"<search> {self._span(observation.get('task', ''))} </search>"
        return f"<answer> {self._span(observation.get('observation', ''))} </answer>"


class OracleAgent(BatchAgent):
    """:class:`OracleSearcher` over a batch of envs (the questions are loaded once and shared)."""

    def __init__(self, tasks: Iterable[QATask] | None = None) -> None:
        super().__init__(lambda position: OracleSearcher(self.tasks))
        self.tasks = list(_embedded_tasks() if tasks is None else tasks)


class RandomAgent(BatchAgent):
    """:class:`RandomSearcher` over a batch of envs; position ``i`` draws from seed ``seed + i``."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(lambda position: RandomSearcher(seed + position))
        self.seed = seed
