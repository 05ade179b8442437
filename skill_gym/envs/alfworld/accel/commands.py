"""Command texts derived once per distinct input, found by a static walk of each command template.

At every step textworld derives the text of every applicable action (``go to [{r.name | ...}]`` becomes
``go to cabinet 3``), which is most of a step's time; the same texts come back step after step. A command
template's text is a function of a few inputs only, which :func:`analyse` finds by walking the template
through its nonterminals (every production, every condition), lists, ``given`` queries and evaluated
expressions:

* the bindings of the placeholders it reads (names in expressions, placeholders in queries);
* the set of all bound variables, when a query introduces a placeholder of its own (a new placeholder can
  not take a variable that is already bound);
* the facts of the predicates its queries and conditions read, when an action can change them;
* the entity infos (names, articles), which are fixed while a game is loaded.

:class:`CommandCache` keys derived texts by those inputs. A template is derived every time (not cached) when
an expression does more than read names, attributes and string constants joined with ``+``, or reads
``self`` or ``context``. The cache is per game and engine, bounded, and dropped when the entity infos change.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from textworld.envs.pddl.textgen import (
    ConditionalSymbol,
    EvalSymbol,
    ListSymbol,
    NonterminalSymbol,
    Symbol,
    TerminalSymbol,
)
from textworld.logic import Placeholder, Proposition

from skill_gym.envs.alfworld.accel.grammar import FastGrammar, parse_query, parse_symbols

__all__ = ["CommandCache", "TemplateReads", "analyse"]

MAX_COMMANDS = 100_000
"""Derived command texts kept per engine before the cache starts over."""

_SIMPLE_NODES = (ast.Expression, ast.Name, ast.Attribute, ast.Constant, ast.BinOp, ast.Add, ast.Load)


@dataclass(frozen=True)
class TemplateReads:
    """What a template's derivation can depend on, besides the entity infos."""

    names: frozenset[str]  # placeholder names read by expressions and queries
    query_placeholders: frozenset[Placeholder]  # placeholders of its queries and rule conditions
    predicates: frozenset[str]  # predicates its queries and rule conditions read
    cacheable: bool
    fluent_predicates: tuple[str, ...] = ()  # those of ``predicates`` some action changes (set by the cache)


def _expression_names(expression: str) -> frozenset[str] | None:
    """Names read by a simple expression (names, attributes, ``+`` of strings); ``None`` if not simple."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        return None
    nodes = list(ast.walk(tree))
    if not all(isinstance(node, _SIMPLE_NODES) for node in nodes):
        return None
    if any(isinstance(node, ast.Constant) and not isinstance(node.value, str) for node in nodes):
        return None
    names = frozenset(node.id for node in nodes if isinstance(node, ast.Name))
    return None if names & {"self", "context"} else names


def analyse(template: str, grammar: FastGrammar) -> TemplateReads:
    """Walk a template through the grammar and collect what its derived text depends on."""
    names: set[str] = set()
    placeholders: set[Placeholder] = set()
    predicates: set[str] = set()
    seen: set[str] = set()
    cacheable = True

    def read_query(text: str) -> None:
        for predicate in parse_query(text).preconditions:
            predicates.add(predicate.name)
            placeholders.update(predicate.parameters)
            names.update(ph.name for ph in predicate.parameters)

    def walk(symbols: Iterable[Symbol]) -> None:
        nonlocal cacheable
        for symbol in symbols:
            if isinstance(symbol, TerminalSymbol):
                continue
            if isinstance(symbol, NonterminalSymbol):
                name = str(symbol)
                if name in seen:
                    continue
                seen.add(name)
                for rule in grammar._rules.get(name, ()):
                    if rule.condition:
                        read_query(rule.condition)
                    walk(rule.rhs)
            elif isinstance(symbol, EvalSymbol):
                read = _expression_names(symbol.expression)
                if read is None:
                    cacheable = False
                else:
                    names.update(read)
            elif isinstance(symbol, ConditionalSymbol):
                if symbol.given:
                    read_query(symbol.given)
                walk([symbol.expression])
            elif isinstance(symbol, ListSymbol):
                walk([symbol.symbol])
            else:
                cacheable = False

    walk(parse_symbols(template))
    walk(
        [NonterminalSymbol("list_empty"), NonterminalSymbol("list_separator"), NonterminalSymbol("list_last_separator")]
    )
    return TemplateReads(frozenset(names), frozenset(placeholders), frozenset(predicates), cacheable)


def entity_fingerprint(entity_infos: Mapping[str, Any]) -> tuple:
    """Everything of the entity infos that an expression of the grammar may read."""
    return tuple((key, *(getattr(info, slot) for slot in info.__slots__)) for key, info in entity_infos.items())


class CommandCache:
    """Derived command texts of one game, keyed by exactly what each template's text depends on."""

    def __init__(self, grammar: FastGrammar, fluent_predicates: Iterable[str]) -> None:
        self.grammar = grammar
        self.fluent = frozenset(p.lower() for p in fluent_predicates)
        self._reads: dict[str, TemplateReads] = {}
        self._texts: dict[tuple, str] = {}
        self._keys: dict[tuple[str, int], tuple] = {}
        self._fingerprint: tuple | None = None
        self.hits = self.misses = 0

    def check_entities(self, entity_infos: Mapping[str, Any]) -> None:
        """Drop every derived text if the entity infos changed since the last check."""
        fingerprint = entity_fingerprint(entity_infos)
        if fingerprint != self._fingerprint:
            self._texts.clear()
            self._fingerprint = fingerprint

    def reads(self, template: str) -> TemplateReads:
        """The (memoized) analysis of a template."""
        found = self._reads.get(template)
        if found is None:
            found = analyse(template, self.grammar)
            fluent = tuple(sorted(p for p in found.predicates if self._fluent(p)))
            found = self._reads[template] = dataclasses.replace(found, fluent_predicates=fluent)
        return found

    def _fluent(self, predicate: str) -> bool:
        return predicate.lower().removeprefix("not_") in self.fluent

    def derive(
        self,
        template: str,
        mapping: Mapping[Placeholder, Any],
        context: Callable[[], dict[str, Any]],
        facts: Callable[[], Iterable[Proposition]],
        operator: int | None = None,
    ) -> str:
        """The text of ``template`` for an action's ``mapping``; ``context()`` and ``facts()`` are asked if needed.

        ``operator`` (the fast-downward operator id the mapping comes from, fixed per game) saves rebuilding
        the binding part of the key.
        """
        reads = self.reads(template)
        if not reads.cacheable:
            return self.grammar.derive(template, context())
        key = self._keys.get((template, operator)) if operator is not None else None
        if key is None:
            key = (
                template,
                tuple(sorted((ph.name, ph.type, v.name) for ph, v in mapping.items() if ph.name in reads.names)),
            )
            if not reads.query_placeholders <= mapping.keys():
                key += (frozenset(v.name for v in mapping.values()),)
            if operator is not None:
                self._keys[(template, operator)] = key
        fluent = reads.fluent_predicates
        if fluent:
            key += (frozenset(f for f in facts() if f.name in fluent),)
        text = self._texts.get(key)
        if text is None:
            self.misses += 1
            if len(self._texts) >= MAX_COMMANDS:
                self._texts.clear()
            text = self._texts[key] = self.grammar.derive(template, context())
        else:
            self.hits += 1
        return text
