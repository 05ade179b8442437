"""The suites of the leaderboard: which env and split, the papers' columns, the task order and the expert.

This module holds :class:`Suite`, the registry :data:`SUITES` (``alfworld``, ``webshop``, ``searchqa`` and the
tiny ``keyword``), :func:`parse_suite` (``"alfworld:eval_out_of_distribution"``), :func:`task_types` and
:class:`PerEpisode` (the suites' own one-env baselines — WebShop's shoppers, Search-QA's searchers — behind the
plug-in protocol).
Episode ``i`` of a suite always plays the same task (:meth:`Suite.tasks` interleaves the task types, so the
first N episodes cover every type), whatever the agent and the seed: seeds vary the agents' randomness.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from benchmarks.leaderboard.protocol import Agent, FunctionAgent, InfoActionAgent

__all__ = ["SUITES", "Suite", "parse_suite"]


class PerEpisode:
    """A one-env baseline made afresh for each episode, seeded from (run seed, task): replays exactly on resume.

    ``make(seed)`` builds the inner agent (the suites' own shoppers and searchers, whose ``reset`` takes no
    arguments); ``seed`` is ``None`` for agents without randomness.
    """

    def __init__(self, make: Callable[[int | None], Any], seed: int | None = None) -> None:
        self.make, self.seed = make, seed
        self.inner = make(seed)

    def reset(self, observation: Mapping[str, str], info: Mapping[str, Any]) -> None:
        key = f"{self.seed}/{info.get('task_id', '')}"
        self.inner = self.make(None if self.seed is None else zlib.crc32(key.encode()))

    def act(self, observation: Mapping[str, str], info: Mapping[str, Any]) -> str:
        return self.inner.act(observation, info)


def _keyword_oracle() -> Agent:
    from skill_gym.envs.keyword import TASKS

    answers = {t["task_id"]: t["answer"] for t in TASKS}
    return FunctionAgent(lambda observation, info: answers.get(str(info.get("task_id")), ""))


@dataclasses.dataclass(frozen=True)
class Suite:
    """One suite: an env (and its skill env) on one split, with the columns its paper tables use."""

    name: str
    base_id: str
    skill_id: str
    env_name: str
    """The skill env's ``env_name`` (which starter skills and library entries belong to it)."""
    split: str = ""
    columns: tuple[tuple[str, str], ...] = ()
    """``(task_type, column label)`` in the papers' order; the mean over all episodes is added as the last."""
    metric: str = "success"
    """``success`` (won rate per type), ``score`` (WebShop: mean score and success) or ``em`` (exact match)."""
    all_label: str = "All"
    expert_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Env arguments the expert needs (ALFWorld: ``expert_action=True``)."""
    expert: Callable[[], Agent] | None = None
    """The suite's expert or oracle, one per env."""
    random: Callable[[int], Agent] | None = None
    """The suite's random baseline for a seed (default: a random admissible action)."""

    @property
    def key(self) -> str:
        """``name`` or ``name:split`` — how runs and tables name the suite."""
        return f"{self.name}:{self.split}" if self.split else self.name

    def env_id(self, library: bool = False) -> str:
        return self.skill_id if library else self.base_id

    def env_kwargs(self) -> dict[str, Any]:
        return {"split": self.split} if self.split else {}

    def task_type_of(self, task_id: str) -> str:
        """The task type named in ``task_id`` ('' when none of the columns' types is)."""
        return next((t for t, _ in self.columns if t in task_id), "")

    def tasks(self, task_ids: list[str], episodes: int = 0, types: Mapping[str, str] | None = None) -> list[str]:
        """The first ``episodes`` tasks (all with 0), one type after the other, round robin.

        ``types`` maps task ids to task types (see :func:`task_types`); ids missing there are typed by name.

        >>> SUITES["keyword"].tasks(["opposite/a", "opposite/b", "plural/c", "echo/d"], 3)
        ['opposite/a', 'plural/c', 'echo/d']
        """
        queues: dict[str, list[str]] = {}
        for task_id in task_ids:
            kind = (types or {}).get(task_id) or self.task_type_of(task_id)
            queues.setdefault(kind, []).append(task_id)
        ordered: list[str] = []
        while any(queues.values()):
            for queue in queues.values():
                if queue:
                    ordered.append(queue.pop(0))
        return ordered[:episodes] if episodes > 0 else ordered


def task_types(env: Any) -> dict[str, str]:
    """Task id → task type, from an env's task list (``tasks`` or ``games`` items) where it has one."""
    out = {}
    for item in getattr(env, "tasks", None) or getattr(env, "games", None) or []:
        get = item.get if isinstance(item, dict) else lambda key, item=item: getattr(item, key, None)
        task_id, task_type = get("task_id"), get("task_type")
        if isinstance(task_id, str) and isinstance(task_type, str):
            out[task_id] = task_type
    return out


def _webshop(role: str) -> Callable[..., Agent]:
    def make(seed: int | None = None) -> Agent:
        from skill_gym.envs.webshop.oracle import OracleShopper, RandomShopper

        if role == "expert":
            return PerEpisode(lambda _: OracleShopper())
        return PerEpisode(lambda s: RandomShopper(s), seed)

    return make


def _searchqa(role: str) -> Callable[..., Agent]:
    def make(seed: int | None = None) -> Agent:
        from skill_gym.envs.searchqa.oracle import OracleSearcher, RandomSearcher

        if role == "expert":
            searcher = OracleSearcher()  # loads the questions once; reset per episode
            return PerEpisode(lambda _: (searcher.reset(), searcher)[1])
        return PerEpisode(lambda s: RandomSearcher(s), seed)

    return make


SUITES: dict[str, Suite] = {
    "alfworld": Suite(
        name="alfworld", base_id="Alfworld-v0", skill_id="SkillAlfworld-v0", env_name="alfworld",
        split="eval_out_of_distribution",
        columns=(("pick_and_place_simple", "Pick"), ("look_at_obj_in_light", "Look"),
                 ("pick_clean_then_place_in_recep", "Clean"), ("pick_heat_then_place_in_recep", "Heat"),
                 ("pick_cool_then_place_in_recep", "Cool"), ("pick_two_obj_and_place", "Pick2")),
        expert_kwargs={"expert_action": True}, expert=lambda: InfoActionAgent("expert_action"),
    ),
    "keyword": Suite(
        name="keyword", base_id="Keyword-v0", skill_id="SkillKeyword-v0", env_name="keyword",
        columns=(("opposite", "Opposite"), ("plural", "Plural"), ("echo", "Echo")), expert=_keyword_oracle,
    ),
    "webshop": Suite(
        name="webshop", base_id="WebShop-v0", skill_id="SkillWebShop-v0", env_name="webshop", split="test",
        metric="score", expert=_webshop("expert"), random=_webshop("random"),
    ),
    "searchqa": Suite(
        name="searchqa", base_id="SearchQA-v0", skill_id="SkillSearchQA-v0", env_name="searchqa", split="test",
        columns=(("direct_retrieval", "Direct"), ("entity_attribute_lookup", "Attribute"),
                 ("multi_hop_reasoning", "Multi-hop"), ("comparison", "Comparison")),
        metric="em", all_label="Avg", expert=_searchqa("expert"), random=_searchqa("random"),
    ),
}  # fmt: skip
"""Suite name → its default split and columns."""

_SPLITS = {
    "alfworld": ("train", "eval_in_distribution", "eval_out_of_distribution"),
    "webshop": ("train", "test"),
    "searchqa": ("train", "test"),
}


def parse_suite(text: str) -> Suite:
    """A suite from ``name`` or ``name:split``.

    >>> parse_suite("alfworld:eval_in_distribution").key
    'alfworld:eval_in_distribution'
    >>> parse_suite("keyword").base_id
    'Keyword-v0'
    """
    name, _, split = str(text).strip().partition(":")
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; known: {', '.join(sorted(SUITES))}")
    suite = SUITES[name]
    if not split:
        return suite
    known = _SPLITS.get(name)
    if known is None or split not in known:
        raise ValueError(f"suite {name!r} has no split {split!r}; splits: {', '.join(known or ('(none)',))}")
    return dataclasses.replace(suite, split=split)
