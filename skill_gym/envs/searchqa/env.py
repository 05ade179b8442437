"""``SearchQA-v0``: Search-R1's search-then-answer protocol over a retriever, as a Gymnasium env.

This module holds :class:`SearchQAEnv` and the env's three answer formats (:data:`SEARCH_R1_FORMAT`,
:data:`VERL_AGENT_FORMAT`, :data:`LENIENT_FORMAT`); the rules they read responses by are in :mod:`.turns`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, SupportsFloat

from skill_gym.envs.instructions import ResponseFormat
from skill_gym.envs.searchqa.corpus import format_passages
from skill_gym.envs.searchqa.data import QATask, find_corpus, load_tasks
from skill_gym.envs.searchqa.kb import SEARCH_R1_INSTRUCTION, embedded_kb_dir
from skill_gym.envs.searchqa.protocol import DEFAULT_TOPK, Retriever
from skill_gym.envs.searchqa.retriever import open_retriever
from skill_gym.envs.searchqa.scoring import em_check
from skill_gym.envs.searchqa.turns import Move, SearchAnswerFormat
from skill_gym.envs.text_env import TextEnv, coerce_action, sanitize_text

__all__ = ["INVALID_ACTION_MESSAGE", "LENIENT_FORMAT", "SEARCH_R1_FORMAT", "VERL_AGENT_FORMAT", "SearchQAEnv"]

INVALID_ACTION_MESSAGE = (
    "My previous action is invalid. If I want to search, I should put the query between <search> and </search>. "
    "If I want to give the final answer, I should put the answer between <answer> and </answer>. Let me try again."
)
"""Search-R1's observation after a response with neither a search nor an answer (``generation.py``)."""

VERL_AGENT_GUIDE = (
    "You should first conduct reasoning process. This process MUST be enclosed within <think> </think> tags. "
    "After completing your reasoning, choose only one of the following actions (do not perform both):\n"
    "(1) If you find you lack some knowledge, you can call a search engine to get more external information "
    "using format: <search> your query </search>.\n"
    "(2) If you have enough knowledge to answer the question confidently, provide your final answer within "
    "<answer> </answer> tags, without detailed illustrations. For example, <answer>Beijing</answer>."
)
"""verl-agent's wording of the protocol (``agent_system/environments/prompts/search.py``)."""

SEARCH_R1_FORMAT = SearchAnswerFormat(guide=SEARCH_R1_INSTRUCTION, rule="search-r1")
"""Search-R1's prompt, and its rollout's reading of a response (``search_r1/llm_agent/generation.py``)."""

VERL_AGENT_FORMAT = SearchAnswerFormat(guide=VERL_AGENT_GUIDE, rule="verl")
"""verl-agent's prompt, and its ``search_projection`` (SKILL0's released code uses both)."""

LENIENT_FORMAT = SearchAnswerFormat(guide=SEARCH_R1_INSTRUCTION, rule="lenient")
"""Search-R1's prompt, read leniently: the last search wins, tags in any case (this project's first rule)."""


def _show(action: object, limit: int = 60) -> str:
    text = sanitize_text(action if isinstance(action, str) else repr(action), 10 * limit).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


class SearchQAEnv(TextEnv):
    """Search-QA (Search-R1, Jin et al., 2025): answer a question, searching a corpus as often as the turns allow.

    ## Description
    Each episode is one question. The agent either searches, ``<search> query </search>``, and sees the top
    ``topk`` passages as Search-R1 shows them (``<information>Doc 1(Title: ...) text ...</information>``), or
    answers, ``<answer> text </answer>``, which ends the episode. Questions and corpus come from the embedded
    knowledge base (:mod:`~skill_gym.envs.searchqa.kb`: a generated fictional world, about 12,600 passages,
    2,000 train and 400 test questions of four types) or, with ``data_dir=``, from Search-R1's parquet files
    and wiki-18 corpus. Task types (SKILL0's): ``direct_retrieval``, ``entity_attribute_lookup``,
    ``multi_hop_reasoning``, ``comparison``.

    ## Action Space
    One string: the agent's response (or what :attr:`instructions` parses out of it), read by the rule of
    ``answer_format`` (:mod:`~skill_gym.envs.searchqa.turns`). ``"search-r1"`` (the default) reads it as
    Search-R1's rollout does: cut after the first ``</search>`` (else the first ``</answer>``), then the first
    ``<search>`` or ``<answer>`` pair, tags spelled exactly so; an empty search searches for ``""``.
    ``"verl"`` reads it as verl-agent's ``search_projection``: the same cut, the first ``<search>`` pair, else
    the first ``<answer>`` pair, tags in any case; it acts on that, but ``info["action_valid"]`` is ``False``
    when the response opens both tags, or one twice. ``"lenient"``: the last non-empty ``<search>`` pair, else
    the last ``<answer>`` pair, tags in any case. A response without a move (or anything that is not a string)
    gets Search-R1's "My previous action is invalid..." observation, ``info["action_valid"] = False``, and
    uses up a turn.

    ## Observation Space
    ``Dict`` of ``Text``: ``observation`` (the question at reset, then the search results, or a message),
    ``task`` (the question) and ``admissible_actions`` (always empty: free text).

    ## Rewards
    1.0 when the answer exactly matches a golden answer after Search-R1's normalization
    (:func:`~skill_gym.envs.searchqa.scoring.em_check`), else 0.0. Only the agent's own answer is scored:
    upstream's ``compute_score_em`` scores prompt plus response and needs two ``<answer>`` matches.

    ## Starting State
    A question drawn with ``self.np_random``, or pinned with ``reset(options={"task_id": ...})``
    (:attr:`task_ids`; ids are ``"<split>/<data_source>/<id>"``).

    ## Episode End
    ``terminated`` on an answer; ``truncated`` after ``max_steps`` turns without one (verl-agent's limit: 4).

    ## Info
    ``won``, ``score``, ``task_id``, ``task_type``, ``data_source``, ``golden_answers``, ``action_valid``,
    ``step``, ``answer`` (the answer given, ``""`` before) and ``retriever_error`` (``True`` on a turn whose
    search failed: the retriever was down or refused; the observation says so and the episode goes on).

    ## Arguments
    ``split`` (``"train"``, ``"test"``), ``data_dir`` (a folder with ``<split>.parquet`` and a corpus; default
    the embedded knowledge base), ``corpus`` (a wiki-18 jsonl path, overriding the folder's), ``retriever``
    (``"bm25"``, ``"dense"``, ``"dense:<model>"``, a server URL such as ``http://127.0.0.1:8000/retrieve``, or a
    :class:`~skill_gym.envs.searchqa.protocol.Retriever`), ``topk`` (3), ``max_steps`` (4), ``task_types``,
    ``timeout`` and ``retries`` (for a URL), ``render_mode`` (``"ansi"``), ``answer_format`` (``"search-r1"``:
    Search-R1's prompt and rule; ``"verl"``: verl-agent's prompt and rule; ``"lenient"``: Search-R1's prompt,
    the lenient rule).

    ## Version History
    * v0: initial version (Search-R1 protocol, verl-agent's 4 turns, embedded knowledge base v4). Its answer
      formats ``"tagged"`` and ``"verl_agent"`` (both read by the lenient rule) became ``"search-r1"`` (the
      default), ``"verl"`` and ``"lenient"``, each reading responses by its own rule.

    >>> import gymnasium as gym, skill_gym
    >>> env = gym.make("SearchQA-v0", split="test")
    >>> obs, info = env.reset(seed=0)
    >>> obs["observation"].startswith("Question: "), info["task_id"] in env.unwrapped.task_ids
    (True, True)
    >>> obs, reward, terminated, truncated, info = env.step("<search> Zakurmark capital </search>")
    >>> obs["observation"].startswith("<information>Doc 1(Title: "), terminated
    (True, False)
    """

    intro = "Answer the given question. A search engine over a corpus of encyclopedia passages is available."
    answer_formats: ClassVar[Mapping[str, ResponseFormat]] = {
        "search-r1": SEARCH_R1_FORMAT,
        "verl": VERL_AGENT_FORMAT,
        "lenient": LENIENT_FORMAT,
    }

    def __init__(
        self,
        split: str = "train",
        data_dir: str | os.PathLike[str] | None = None,
        corpus: str | os.PathLike[str] | None = None,
        retriever: str | Retriever = "bm25",
        topk: int = DEFAULT_TOPK,
        max_steps: int = 4,
        task_types: Iterable[str] | None = None,
        timeout: float = 10.0,
        retries: int = 2,
        render_mode: str | None = None,
        answer_format: str | None = None,
    ) -> None:
        super().__init__(render_mode=render_mode, answer_format=answer_format)
        if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
        if not isinstance(topk, int) or isinstance(topk, bool) or topk < 1:
            raise ValueError(f"topk must be a positive int, got {topk!r}")
        folder = Path(data_dir) if data_dir is not None else embedded_kb_dir()
        tasks = load_tasks(folder, split)
        if task_types is not None:
            wanted = {task_types} if isinstance(task_types, str) else set(task_types)
            tasks = [task for task in tasks if task.task_type in wanted]
            if not tasks:
                raise ValueError(f"no {split!r} questions of types {sorted(wanted)} in {folder}")
        self.split, self.topk, self.max_steps = split, topk, max_steps
        self.tasks: list[QATask] = tasks
        self._format: SearchAnswerFormat = self.answer_formats[self.answer_format]  # type: ignore[assignment]
        self._by_id = {task.task_id: task for task in tasks}
        if isinstance(retriever, str):
            remote = retriever.startswith(("http://", "https://"))
            source = None if remote else (Path(corpus) if corpus is not None else find_corpus(folder))
            options = {"timeout": timeout, "retries": retries} if remote else {}
            retriever = open_retriever(retriever, source, **options)
        elif not isinstance(retriever, Retriever):
            raise ValueError(f"retriever must be a spec string or a Retriever, got {type(retriever).__name__}")
        self.retriever: Retriever = retriever
        self._task = tasks[0]
        self._steps = 0
        self._answer = ""
        self._done = False

    @property
    def task_ids(self) -> list[str]:
        """The ids of this split's questions, in file order; pass one as ``options={"task_id": id}``."""
        return [task.task_id for task in self.tasks]

    @property
    def task(self) -> QATask:
        """The current question (with its golden answers and, for embedded questions, evidence)."""
        return self._task

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, str], dict]:
        super().reset(seed=seed)
        task_id = self.take_pending_options(options).get("task_id")
        if task_id is None:
            self._task = self.tasks[int(self.np_random.integers(len(self.tasks)))]
        elif isinstance(task_id, str) and task_id in self._by_id:
            self._task = self._by_id[task_id]
        else:
            raise ValueError(f"unknown task_id {task_id!r} for split {self.split!r}; see env.unwrapped.task_ids")
        self._steps, self._answer, self._done = 0, "", False
        obs = self._observe(None, observation=f"Question: {self._task.question}", task=self._task.question)
        return obs, self._info(action_valid=True, retriever_error=False)

    def step(self, action: str) -> tuple[dict[str, str], SupportsFloat, bool, bool, dict[str, Any]]:
        if self._done:
            obs = self._obs(action, "The episode is over; call reset() to start a new one.")
            return obs, 0.0, True, False, self._info(action_valid=False, retriever_error=False)
        self._steps += 1
        text, problem = coerce_action(action)
        move = self._format.move(text) if text is not None else Move(None, problem=problem)
        reward, terminated, retriever_error = 0.0, False, False
        if move.kind == "search":
            feedback, retriever_error = self._search(move.content)
        elif move.kind == "answer":
            self._answer, terminated = move.content, True
            reward = float(em_check(move.content, self._task.golden_answers))
            feedback = f"Your answer: {move.content}. " + ("It is correct." if reward else "It is not correct.")
        else:
            feedback = INVALID_ACTION_MESSAGE + (f" ({move.problem}.)" if move.problem else "")
        truncated = not terminated and self._steps >= self.max_steps
        if truncated:
            feedback += f"\nNo turns left ({self.max_steps} used) without an answer."
        self._done = terminated or truncated
        obs = self._obs(text if text is not None else action, feedback)
        return obs, reward, terminated, truncated, self._info(action_valid=move.valid, retriever_error=retriever_error)

    def _search(self, query: str) -> tuple[str, bool]:
        """The ``<information>`` block for ``query``, or a message saying the search engine failed."""
        try:
            hits = self.retriever.search([query], self.topk)[0]
        except Exception as error:  # a dead server or a broken index must not end the run
            reason = sanitize_text(str(error) or type(error).__name__, 300)
            return f"The search engine is unavailable ({reason}); no results. Search again or answer.", True
        return f"<information>{format_passages(hits).strip()}</information>", False

    def _obs(self, action: object, feedback: str) -> dict[str, str]:
        return self._observe(_show(action, 200), observation=feedback, task=self._task.question)

    def _info(self, action_valid: bool, retriever_error: bool) -> dict[str, Any]:
        won = bool(self._answer) and bool(em_check(self._answer, self._task.golden_answers))
        return {
            "won": won,
            "score": float(won),
            "task_id": self._task.task_id,
            "task_type": self._task.task_type,
            "data_source": self._task.data_source,
            "golden_answers": list(self._task.golden_answers),
            "action_valid": action_valid,
            "step": self._steps,
            "answer": self._answer,
            "retriever_error": retriever_error,
        }
