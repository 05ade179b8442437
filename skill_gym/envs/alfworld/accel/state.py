"""A game state that is built from a cached translation, restarts in place and answers queries faster.

textworld's :class:`~textworld.envs.pddl.logic.PddlState` is rebuilt at every reset: two PDDL → SAS
translations, two SAS loads into fast-downward, and the initial facts re-derived from both. It also sorts
the facts of a signature again for every step of every query. :class:`FastPddlState` keeps upstream's
behaviour and data (it *is* a ``PddlState``) and changes how it gets there:

* the translation comes from :class:`~skill_gym.envs.alfworld.accel.translation.Translations`, and the
  optimized translation, used only by the planner, is translated and loaded on the first :meth:`replan`;
* :meth:`restart` returns to the initial state in place: fast-downward's current state is set back to the
  initial state id (the SAS stays loaded) and the initial facts are replayed in upstream's order;
* the facts of each signature are kept sorted until a fact of that signature is added or removed;
* what each fast-downward operator id stands for (action name, placeholder mapping, templates) is worked out
  once; a new action object is still made per applicable operator and step, as upstream does.

fast-downward keeps every state it has reached in a registry, so a state that is restarted instead of
rebuilt grows that registry across episodes; past :data:`MAX_REGISTERED_STATES` the SAS is reloaded at the
next restart, which empties it (a state takes a few dozen bytes there).
"""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

import fast_downward
import textworld.logic
from textworld.envs.pddl.logic import Atom, GameLogic, PddlState
from textworld.logic import Placeholder, Proposition, Rule, Signature, Variable

from skill_gym.envs.alfworld.accel.translation import Translation

__all__ = ["MAX_REGISTERED_STATES", "FastPddlState", "LoadedSas"]

MAX_REGISTERED_STATES = 50_000
"""States fast-downward may register for one game before its SAS is reloaded at a restart."""


class LoadedSas:
    """What one copy of fast-downward's library has loaded (a library copy serves one env at a time)."""

    def __init__(self) -> None:
        self.sas: str | None = None
        self.replan_sas: str | None = None
        self.initial_state_id = 0


class FastPddlState(PddlState):
    """A ``PddlState`` over a cached :class:`Translation`, with in-place :meth:`restart` and sorted-fact caches."""

    def __init__(self, downward_lib: Any, translation: Translation, logic: GameLogic, loaded: LoadedSas) -> None:
        # Not calling PddlState.__init__: it translates twice; this does the same set-up from the cache.
        self._logic = logic
        self.downward_lib = downward_lib
        self.pddl_problem = translation.problem
        self.task, self.sas = translation.task, translation.sas
        self._translation = translation
        self._loaded = loaded
        self._actions = {a.name: a for a in self.task.actions}
        for type_ in self.task.types:
            with contextlib.suppress(ValueError):  # already known (upstream ignores it the same way)
                self._logic.types.add(textworld.logic.Type(type_.name, list(type_.supertype_names)))
        self.name2type = {o.name: o.type_name for o in self.task.objects}
        self._sorted: dict[Signature, list[Proposition]] = {}
        self._signatures: dict[Signature, list[Signature]] = {}
        self._initial_facts: list[Proposition] | None = None
        self._operator_actions: dict[int, tuple[str, str, dict[Placeholder, Variable], str, str]] = {}
        self.restart()

    @property
    def sas_replan(self) -> str:
        """The optimized translation the planner uses (translated on first use)."""
        return self._translation.replan_sas()

    # -- restarting --------------------------------------------------------------------------------

    def _load_sas(self) -> None:
        self.downward_lib.load_sas(self.sas.encode("utf-8"))
        self._loaded.sas, self._loaded.replan_sas = self.sas, None
        self._loaded.initial_state_id = self.downward_lib.get_state_id()

    def restart(self) -> None:
        """Back to the initial state: the same facts, in the same order, as a freshly built state."""
        loaded = self._loaded
        if loaded.sas is not self.sas or self.downward_lib.get_state_id() > MAX_REGISTERED_STATES:
            self._load_sas()
        else:
            self.downward_lib.set_state_id(loaded.initial_state_id)
        self._facts = defaultdict(set)
        self._vars_by_name = {}
        self._vars_by_type = defaultdict(set)
        self._var_counts = Counter()
        self._sorted.clear()
        if self._initial_facts is None:
            self._initial_facts = self._read_initial_facts()
        self.add_facts(self._initial_facts)

    def _read_initial_facts(self) -> list[Proposition]:
        """Upstream's two passes: the task's initial atoms, then the SAS initial state (negations left out)."""
        types = self.name2type
        facts = [Proposition(name, [Variable(arg, types[arg]) for arg in args]) for name, args in self.task.init]
        atoms = (Atom * self.downward_lib.get_state_size())()
        self.downward_lib.get_state(atoms)
        state_facts = (atom.get_fact(self.name2type) for atom in atoms)
        return facts + [fact for fact in state_facts if not fact.is_negation]

    def all_applicable_actions(self) -> list[textworld.logic.Action]:
        """Upstream's actions of the applicable operators; what an operator id maps to is worked out once."""
        count = self.downward_lib.get_applicable_operators_count()
        operators = (fast_downward.Operator * count)()
        self.downward_lib.get_applicable_operators(operators)
        self._operators = {op.id: op for op in operators}
        actions, seen = [], set()
        for op in operators:
            known = self._operator_actions.get(op.id)
            if known is None:
                known = self._operator_actions[op.id] = self._operator_action(op.name)
            op_name, name, mapping, template, feedback_rule = known
            if op_name in seen:
                continue
            seen.add(op_name)
            action = textworld.logic.Action(name=name, preconditions=[], postconditions=[])
            action.id = op.id
            action.mapping = dict(mapping)
            action.command_template = template
            action.feedback_rule = feedback_rule
            actions.append(action)
        return actions

    def _operator_action(self, op_name: str) -> tuple[str, str, dict[Placeholder, Variable], str, str]:
        name, *arguments = op_name.split()
        parameters = self._actions[name].parameters
        mapping = {
            Placeholder(p.name.strip("?"), p.type_name): Variable(arg, p.type_name)
            for p, arg in zip(parameters, arguments, strict=False)
        }
        logic_action = self._logic.actions[name]
        return op_name, name, mapping, logic_action.template, logic_action.feedback_rule

    def replan(self, infos: Any) -> list[str]:
        if self._loaded.replan_sas is not self.sas_replan:
            self.downward_lib.load_sas_replan(self.sas_replan.encode("utf-8"))
            self._loaded.replan_sas = self.sas_replan
        return super().replan(infos)

    # -- facts, sorted per signature -------------------------------------------------------------

    def add_fact(self, prop: Proposition) -> None:
        self._sorted.pop(prop.signature, None)
        super().add_fact(prop)

    def remove_fact(self, prop: Proposition) -> None:
        self._sorted.pop(prop.signature, None)
        super().remove_fact(prop)

    def sorted_facts(self, signature: Signature) -> list[Proposition]:
        """``sorted(self.facts_with_signature(signature))``, kept until that signature's facts change."""
        facts = self._sorted.get(signature)
        if facts is None:
            facts = self._sorted[signature] = sorted(self.facts_with_signature(signature))
        return facts

    def _matching_signatures(self, signature: Signature) -> list[Signature]:
        found = self._signatures.get(signature)
        if found is None:
            types = [self._logic.types.get(t) for t in signature.types]
            found = [
                Signature(signature.name, [t.name for t in subtypes])
                for subtypes in self._logic.types.multi_subtypes(types)
            ]
            self._signatures[signature] = found
        return found

    def _all_applicable_assignments(
        self,
        rule: Rule,
        mapping: dict[Placeholder, Variable | None],
        used_vars: set[Variable],
        new_phs_by_depth: list[list[Placeholder]],
        depth: int,
    ) -> Iterator[Mapping[Placeholder, Variable | None]]:
        # Upstream's search, line for line, with the sorted facts and subtype signatures looked up, not rebuilt.
        new_phs = new_phs_by_depth[depth]
        if depth >= len(rule.preconditions):
            yield from self._all_assignments(new_phs, mapping, used_vars, False)
            return
        pred = rule.preconditions[depth]
        for signature in self._matching_signatures(pred.signature):
            for prop in self.sorted_facts(signature):
                for ph, var in zip(pred.parameters, prop.arguments, strict=False):
                    existing = mapping.get(ph)
                    if existing is None:
                        if var in used_vars:
                            break
                        mapping[ph] = var
                        used_vars.add(var)
                    elif existing != var:
                        break
                else:
                    yield from self._all_applicable_assignments(rule, mapping, used_vars, new_phs_by_depth, depth + 1)
                for ph in new_phs:
                    var = mapping.pop(ph, None)
                    used_vars.discard(var)
