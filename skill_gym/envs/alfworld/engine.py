"""The ALFWorld game engine: textworld's PDDL environment with alfworld's naming, loaded once and reset cheaply.

A game is run exactly as ``alfworld``'s ``AlfredTWEnv`` runs it — textworld's ``PddlEnv`` wrapped in
alfworld's ``AlfredDemangler`` (so ``Cabinet_bar__plus_00_dot_68...`` reads ``cabinet 3``) — minus the work
that does not change between episodes:

* the PDDL → SAS translation, which textworld redoes (twice) at every reset, is computed once per game;
* the text of each admissible command, which textworld re-derives with its grammar parser at every step, is
  derived once per (template, arguments) when the templates only read facts no action changes.

This module holds :class:`StepResult`, :class:`GameEngine` (load, reset, step, admissible commands, won,
planner expert) and :class:`EnginePool` with :data:`ENGINE_POOL` (a process-wide LRU of idle engines).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from skill_gym.envs.alfworld import _upstream

__all__ = ["ENGINE_POOL", "EnginePool", "GameEngine", "StepResult"]

_TRANSLATIONS: OrderedDict[str, Any] = OrderedDict()
_TRANSLATIONS_MAX = 32  # translated games kept in memory (a big kitchen takes a few MB)
_translate_lock = threading.RLock()  # re-entrant: engine loads and closes may nest
_FREE_LIBS: list[Any] = []  # fast-downward library copies of closed engines, cleaned up and ready for reuse


@dataclass(frozen=True)
class StepResult:
    """What the engine says after a reset or a step."""

    feedback: str
    admissible_commands: tuple[str, ...]
    won: bool


@contextlib.contextmanager
def _reused_translation() -> Iterator[None]:
    """Make fast-downward's ``pddl2sas`` reuse earlier translations of the same domain and problem."""
    import fast_downward

    translate = fast_downward.pddl2sas

    def cached(domain: str, problem: str, verbose: bool = False, optimize: bool = False) -> Any:
        # textworld also asks for an optimized translation, used only by its planner (``replan``); the full
        # translation serves both, which halves the load time and keeps ``replan`` correct (if slower).
        key = hashlib.sha256(f"{domain}\0{problem}".encode()).hexdigest()
        if key in _TRANSLATIONS:
            _TRANSLATIONS.move_to_end(key)
        else:
            _TRANSLATIONS[key] = translate(domain, problem, verbose=verbose, optimize=False)
            while len(_TRANSLATIONS) > _TRANSLATIONS_MAX:
                _TRANSLATIONS.popitem(last=False)
        return _TRANSLATIONS[key]

    with _translate_lock, _upstream.preserve_argv():
        fast_downward.pddl2sas = cached
        try:
            yield
        finally:
            fast_downward.pddl2sas = translate


@contextlib.contextmanager
def _recycled_downward_lib() -> Iterator[None]:
    """Hand a new ``PddlEnv`` the library copy of a closed engine instead of loading (and leaking) a new one.

    textworld's ``PddlEnv`` loads a private copy of ``libdownward.so`` per instance and fast-downward's
    ``close_lib`` ``dlclose``-s it; after a few such unloads a later load or the interpreter's exit crashes
    (SIGSEGV). Recycling keeps at most as many copies as engines ever alive at once and never unloads one.
    """
    import fast_downward

    load = fast_downward.load_lib

    def recycled() -> Any:
        return _FREE_LIBS.pop() if _FREE_LIBS else load()

    with _translate_lock:
        fast_downward.load_lib = recycled
        try:
            yield
        finally:
            fast_downward.load_lib = load


class _StaticCommandText:
    """A memo for the grammar's ``derive`` on command templates whose text depends on static facts only.

    The key is the template plus the arguments of the placeholders the template names, so ``go to cabinet 1``
    is derived once, whatever the location the agent comes from.
    """

    def __init__(self, derive: Callable[[str, dict], str], templates: set[str]) -> None:
        self._derive = derive
        self._words = {t: frozenset(re.findall(r"[A-Za-z_]\w*", t)) for t in templates}
        self._memo: dict[tuple, str] = {}

    def __call__(self, text: str, context: dict) -> str:
        words = self._words.get(text)
        if words is None:
            return self._derive(text, context)
        key = (text, tuple(sorted((ph.name, var.name) for ph, var in context["mapping"].items() if ph.name in words)))
        derived = self._memo.get(key)
        if derived is None:
            derived = self._memo[key] = self._derive(text, context)
        return derived


def _fluent_predicates(pddl_state: Any) -> set[str]:
    """Predicates that some action of the translated task changes."""
    return {eff.literal.predicate.lower() for action in pddl_state.task.actions for eff in action.effects}


class GameEngine:
    """One ALFWorld game on the real engine: ``reset`` and ``step`` return :class:`StepResult`.

    ``game`` is the content of a ``game.tw-pddl`` file: ``pddl_domain``, ``grammar`` (goal filled in) and
    ``pddl_problem``. ``help`` is left out of the admissible commands; their order is upstream's (sorted).
    """

    def __init__(self, game: Mapping[str, Any], key: str = "", facts: bool = False) -> None:
        _upstream.alfworld()
        import textworld
        from alfworld.agents.environment.alfred_tw_env import AlfredDemangler
        from textworld.envs import PddlEnv

        self.key = key
        data = {k: game[k] for k in ("pddl_domain", "grammar", "pddl_problem")}
        infos = textworld.EnvInfos(admissible_commands=True, won=True, facts=facts)
        with _recycled_downward_lib():
            self._env = AlfredDemangler(PddlEnv(infos), shuffle=False)
        with _reused_translation():
            self._env.load(data)
        self._pddl = self._env.unwrapped
        logic = self._pddl._logic
        templates = {action.template for action in logic.actions.values()}
        read = {p.lower() for t in templates for p in re.findall(r"(\w+)\(", t)}
        if not read & _fluent_predicates(self._pddl._pddl_state):
            logic.grammar.derive = _StaticCommandText(logic.grammar.derive, templates)
        self.last: StepResult | None = None
        self.raw: Any = None  # textworld's game state after the last reset or step

    @property
    def facts(self) -> bool:
        """Whether game states carry human-readable facts (the hand-coded expert needs them; they cost time)."""
        return bool(self._pddl.request_infos.facts)

    @facts.setter
    def facts(self, value: bool) -> None:
        self._pddl.request_infos.facts = value

    def _result(self, state: Any) -> StepResult:
        self.raw = state
        commands = tuple(c for c in state["admissible_commands"] if c != "help")
        self.last = StepResult(str(state["feedback"]), commands, bool(state["won"]))
        return self.last

    def reset(self) -> StepResult:
        """Start a new episode from the initial state; the feedback is the intro text with the task."""
        with _reused_translation():
            return self._result(self._env.reset())

    def step(self, command: str) -> StepResult:
        """Apply one command (an admissible one; anything else answers ``Nothing happens.``)."""
        state, _, _ = self._env.step(command)
        return self._result(state)

    def expert_plan(self) -> list[str]:
        """The planner's optimal command sequence from the current state (empty when unreachable or won)."""
        with _upstream.preserve_argv():
            return list(self._pddl._pddl_state.replan(self._pddl._entity_infos))

    def close(self) -> None:
        """Release the engine's copy of fast-downward's library for the next engine (never unloaded)."""
        lib, self._pddl.downward_lib = getattr(self._pddl, "downward_lib", None), None
        if lib is not None:
            with _translate_lock:
                lib.cleanup()
                _FREE_LIBS.append(lib)


class EnginePool:
    """Loaded engines shared by the envs of a process; an engine is used by one env at a time.

    :meth:`acquire` hands out an idle engine of the requested game or loads a new one; :meth:`release` puts it
    back. At most ``max_idle`` idle engines are kept (least recently used first out); engines in use are not
    counted. Loading a big kitchen takes about a second, so keep ``max_idle`` at least the number of distinct
    games an env cycles through if you want resets to stay cheap.
    """

    def __init__(self, max_idle: int = 16) -> None:
        self.max_idle = max_idle
        self._idle: OrderedDict[int, GameEngine] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, key: str, load: Callable[[], Mapping[str, Any]]) -> GameEngine:
        """An engine for game ``key``; ``load`` returns its ``game.tw-pddl`` content if one must be loaded."""
        with self._lock:
            for ident, engine in reversed(self._idle.items()):
                if engine.key == key:
                    del self._idle[ident]
                    return engine
        return GameEngine(load(), key=key)

    def release(self, engine: GameEngine) -> None:
        """Return an engine to the pool (evicting the least recently used idle engines beyond ``max_idle``)."""
        evicted = []
        with self._lock:
            self._idle[id(engine)] = engine
            while len(self._idle) > self.max_idle:
                evicted.append(self._idle.popitem(last=False)[1])
        for old in evicted:
            old.close()

    def clear(self) -> None:
        """Close and forget every idle engine."""
        with self._lock:
            engines, self._idle = list(self._idle.values()), OrderedDict()
        for engine in engines:
            engine.close()


ENGINE_POOL = EnginePool()
"""The process-wide pool used by :class:`~skill_gym.envs.alfworld.env.AlfworldEnv` (16 idle engines)."""
