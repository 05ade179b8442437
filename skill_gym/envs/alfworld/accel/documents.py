"""Game documents (action templates + text grammar) parsed once per shape, not once per game.

A game's ``grammar`` field is a textworld logic document: ``action`` blocks (template, feedback rule, PDDL)
and ``grammar :: \"\"\"{json}\"\"\"`` blocks. textworld parses the whole document with TatSu at every load, then
every rule's right-hand side again. ALFWorld games share one document and differ only inside the
triple-quoted blocks (the goal text), so :func:`parse_document` parses the document's *skeleton* — the text
with each block's content replaced by its index — once per skeleton, puts the real blocks back, and reads
the JSON grammar with the right-hand sides parsed once per text (:func:`~.grammar.parse_symbols`). The
result is what upstream's ``_ModelConverter`` builds from the same text. If the skeleton does not parse,
or its blocks are not the ones found, the whole document is parsed the upstream way.
"""

from __future__ import annotations

import functools
import json
import re
import textwrap
import threading
from collections import OrderedDict
from typing import Any

import textworld
from textworld.envs.pddl import logic as pddl_logic
from textworld.envs.pddl.logic import model
from textworld.envs.pddl.textgen import ProductionRule

from skill_gym.envs.alfworld.accel.grammar import FastGrammar, parse_symbols

__all__ = ["DOCUMENTS", "GameDocuments", "parse_document"]

Parsed = tuple[dict[str, Any], dict[str, list[ProductionRule]]]  # actions by name, production rules by symbol

_BLOCK = re.compile(r'"""(?:.|\n)*?"""')  # the grammar's own strBlock pattern
_MARK = re.compile(r'^"""@@(\d+)@@"""$')


@functools.lru_cache(maxsize=8)
def _skeleton_model(skeleton: str) -> Any:
    return pddl_logic._PARSER.parse(skeleton, rule_name="pddlStart")


def _rules(grammar: dict[str, Any]) -> dict[str, list[ProductionRule]]:
    """``ContextSensitiveGrammar.parse`` of the merged JSON grammar, right-hand sides parsed once per text."""
    return {
        name: [
            ProductionRule(
                lhs=name,
                rhs=list(parse_symbols(rule["rhs"])),
                weight=rule.get("weight", 1),
                condition=rule.get("condition", ""),
            )
            for rule in rules
        ]
        for name, rules in grammar.items()
    }


def _from_skeleton(text: str) -> Parsed | None:
    blocks = _BLOCK.findall(text)
    counter = iter(range(len(blocks)))
    parsed = _skeleton_model(_BLOCK.sub(lambda _: f'"""@@{next(counter)}@@"""', text))
    used: list[int] = []

    def block(code: str) -> str:  # upstream's _unescape_block of the real block
        index = int(_MARK.match(code).group(1))  # type: ignore[union-attr]
        used.append(index)
        return textwrap.dedent(blocks[index][3:-3])

    actions: dict[str, Any] = {}
    grammar: dict[str, Any] = {}
    for part in parsed.parts:
        if isinstance(part, model.ActionTypeNode):
            action = pddl_logic.Action(
                name=part.name,
                template=part.template.template[1:-1],
                feedback_rule=part.feedback.name[1:-1],
                pddl=block(part.pddl.code) if part.pddl else "",
                grammar=block(part.grammar.code) if part.grammar else "{}",
            )
            actions[action.name.lower()] = action
            lines = (line for line in action.grammar.split("\n") if not line.lstrip().startswith("#"))
            grammar.update(json.loads("\n".join(lines)))
        elif isinstance(part, model.ActionGrammarNode):
            grammar.update(json.loads(block(part.code)))
    if sorted(used) != list(range(len(blocks))):
        return None
    return actions, _rules(grammar)


def parse_document(text: str) -> Parsed:
    """Action templates and production rules of a logic document (as upstream's parse gives them)."""
    try:
        found = _from_skeleton(text)
    except Exception:  # any surprise in the shortcut: parse the upstream way
        found = None
    if found is None:
        actions, grammar = pddl_logic._parse_and_convert(text, rule_name="pddlStart")
        found = dict(actions), {name: list(rules) for name, rules in grammar._rules.items()}
    return found


class GameDocuments:
    """Parsed game documents by text: bounded, least recently used first out, thread-safe."""

    def __init__(self, max_size: int = 32) -> None:
        self.max_size = max_size
        self._items: OrderedDict[str, Parsed] = OrderedDict()
        self._lock = threading.Lock()

    def logic(self, domain: str, grammar: str) -> pddl_logic.GameLogic:
        """A new ``GameLogic`` (own type hierarchy) over the shared, read-only parse of ``grammar``."""
        with self._lock:
            parsed = self._items.get(grammar)
            if parsed is not None:
                self._items.move_to_end(grammar)
        if parsed is None:
            parsed = parse_document(grammar)
            with self._lock:
                self._items[grammar] = parsed
                while len(self._items) > self.max_size:
                    self._items.popitem(last=False)
        logic = pddl_logic.GameLogic.__new__(pddl_logic.GameLogic)  # its __init__ would parse the text again
        logic.domain = domain
        logic.actions = dict(parsed[0])
        logic.grammar = FastGrammar.from_rules(parsed[1])
        logic.types = textworld.logic.TypeHierarchy()
        return logic

    def clear(self) -> None:
        """Forget every parsed document."""
        with self._lock:
            self._items.clear()


DOCUMENTS = GameDocuments()
"""The parsed game documents of this process."""
