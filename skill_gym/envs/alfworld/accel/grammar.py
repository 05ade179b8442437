"""Text derivation for textworld's context-sensitive grammar, without the copies and re-parses.

textworld's :class:`~textworld.envs.pddl.textgen.ContextSensitiveGrammar` derives a text by walking a stack
of symbol objects, each carrying its own deep copy of the derivation context, and it re-parses (with TatSu)
every template text and every rule condition each time it meets one. :class:`FastGrammar` derives the same
text from the same rules with three changes, none of which changes the output:

* template texts and conjunctive queries are parsed once (process-wide memo, bounded) and the parsed symbols
  are never mutated, so no copy of them is needed;
* the stack holds ``(symbol, context)`` pairs; a context is never mutated after it is made (a query makes a
  new one), so contexts are shared instead of deep-copied — their values (entity infos, variables) are
  only read during a derivation;
* ``replace`` stops at the first production rule whose condition holds (upstream tests every rule, then
  takes the first that holds).

Evaluated expressions (``{o.name}``) run exactly as upstream runs them: ``eval`` of the grammar's own text,
in the namespace of textworld's textgen module with the context's variables as locals.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from textworld.envs.pddl import textgen
from textworld.envs.pddl.textgen import (
    ConditionalSymbol,
    ContextSensitiveGrammar,
    CSGUnknownSymbolError,
    EvalSymbol,
    ListSymbol,
    NonterminalSymbol,
    Symbol,
    TerminalSymbol,
)
from textworld.logic import Rule

__all__ = ["FastGrammar", "parse_query", "parse_symbols"]

Context = Mapping[str, Any]

_MEMO_SIZE = 8192  # distinct template texts / queries kept parsed (a game uses a few hundred)
_LIST_EMPTY = NonterminalSymbol("list_empty")
_LIST_SEPARATOR = NonterminalSymbol("list_separator")
_LIST_LAST_SEPARATOR = NonterminalSymbol("list_last_separator")


@functools.lru_cache(maxsize=_MEMO_SIZE)
def parse_symbols(text: str) -> tuple[Symbol, ...]:
    """The symbols of a template text, parsed once (shared: never mutate them)."""
    return tuple(textgen._parse_and_convert(text, rule_name="symbols"))


@functools.lru_cache(maxsize=_MEMO_SIZE)
def parse_query(expression: str) -> Rule:
    """A conjunctive query (``holds(a:agent, o:object) & ...``) as a rule, parsed once (read-only)."""
    return Rule.parse_conjunctive_query(expression)


@functools.lru_cache(maxsize=_MEMO_SIZE)
def _compiled(expression: str) -> Any:
    return compile(expression, "<grammar>", "eval")


def holds(query: str, context: Context) -> bool:
    """Whether the query has at least one assignment in the context's state, given its mapping."""
    assignments = context["state"].all_assignments(parse_query(query), context["mapping"])
    return next(iter(assignments), None) is not None


def query_contexts(query: str, context: Context) -> list[dict[str, Any]]:
    """One new context per assignment of the query (upstream's ``textgen.query``)."""
    infos = context["entity_infos"]
    contexts = []
    for mapping in context["state"].all_assignments(parse_query(query), context["mapping"]):
        contexts.append(
            {
                **context,
                "variables": {**context["variables"], **{ph.name: infos[var.name] for ph, var in mapping.items()}},
                "mapping": {**context["mapping"], **mapping},
            }
        )
    return contexts


def expand(symbol: Symbol, context: Context) -> list[tuple[Symbol, Context]]:
    """What upstream's ``symbol.derive()`` returns for a conditional, evaluated or list symbol."""
    if isinstance(symbol, ConditionalSymbol):
        contexts = query_contexts(symbol.given, context) if symbol.given else [context]
        return [(symbol.expression, c) for c in contexts]
    if isinstance(symbol, EvalSymbol):
        local_names = {"self": symbol, "context": context, **context["variables"]}
        value = eval(_compiled(symbol.expression), vars(textgen), local_names)  # the game's own grammar text
        return [(TerminalSymbol(value), context)]
    if isinstance(symbol, ListSymbol):
        items = expand(symbol.symbol, context)
        if len(items) <= 1:
            return items or [(_LIST_EMPTY, context)]
        joined: list[tuple[Symbol, Context]] = []
        for item in items[:-2]:
            joined += [item, (_LIST_SEPARATOR, context)]
        return [*joined, items[-2], (_LIST_LAST_SEPARATOR, context), items[-1]]
    raise NotImplementedError(f"Unknown symbol: {type(symbol)}")


class FastGrammar(ContextSensitiveGrammar):
    """A :class:`ContextSensitiveGrammar` whose :meth:`derive` gives upstream's text much faster."""

    @classmethod
    def from_rules(cls, rules: Mapping[str, Iterable[Any]]) -> FastGrammar:
        """A grammar over production rules parsed elsewhere (shared, read-only)."""
        grammar = cls()
        for name, productions in rules.items():
            grammar._rules[name].extend(productions)
        return grammar

    def production(self, symbol: NonterminalSymbol, context: Context) -> tuple[Symbol, ...]:
        """The right-hand side of the first rule for ``symbol`` whose condition holds in ``context``."""
        rules = self._rules.get(str(symbol))
        if not rules:
            raise CSGUnknownSymbolError(symbol)
        for rule in rules:
            if not rule.condition or holds(rule.condition, context):
                return rule.rhs
        raise IndexError(f"no production rule of '#{symbol}#' applies")  # upstream: rules[0] of an empty list

    def derive(self, start: str, context: Context | None = None) -> str:
        """The text derived from ``start`` (a template with ``#symbols#``, ``{expressions}`` and ``[lists]``)."""
        context = dict(context or {})
        stack = [(symbol, context) for symbol in reversed(parse_symbols(start))]
        derived: list[str] = []
        while stack:
            symbol, ctx = stack.pop()
            if isinstance(symbol, TerminalSymbol):
                derived.append(str(symbol))
            elif isinstance(symbol, NonterminalSymbol):
                stack += [(s, ctx) for s in reversed(self.production(symbol, ctx))]
            else:
                stack += reversed(expand(symbol, ctx))
        return "".join(derived)
