"""The questions a world of the embedded Search-QA knowledge base supports, of SKILL0's four types.

* ``direct_retrieval`` — one fact, phrased freely (Natural Questions style): "Who founded Kestrel Dynamics?";
* ``entity_attribute_lookup`` — one attribute of a named entity (PopQA style): "What is Ilse Varrow's occupation?";
* ``multi_hop_reasoning`` — an attribute of a related entity, two searches: "In which city was the author of
  The Glass Orchard born?";
* ``comparison`` — the same attribute of two entities, compared: "Which person was born first, A or B?".

A question is ``{"key", "question", "answers", "evidence"}``: ``key`` names its template and subject (a pool
keeps one question per key), ``evidence`` per search hop a well-formed query, the id of the passage that answers it and
the string it must show. This module holds :data:`QUESTION_TYPES` and :func:`question_pool`; the passages the
evidence points at are :func:`~skill_gym.envs.searchqa.passages.build_corpus`'s.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from skill_gym.envs.searchqa.world import WORK_CREATOR_ROLE, WORK_HOLDER_VERB, WORK_VERBS, Entity, World

__all__ = ["QUESTION_TYPES", "question_pool"]

QUESTION_TYPES = ("direct_retrieval", "entity_attribute_lookup", "multi_hop_reasoning", "comparison")


def question_pool(world: World, kind: str, rng: random.Random) -> list[dict[str, Any]]:
    """Every question of ``kind`` that ``world`` supports, once each, ready to deal out in order.

    Questions whose answer shows in the question are left out (comparisons name both candidates on purpose);
    the rest are shuffled within each template and dealt round-robin over the templates.
    """
    if kind == "comparison":
        items = _comparison(world, rng)
    else:
        makers: dict[str, Callable[[World], list[dict[str, Any]]]] = {
            "direct_retrieval": _direct,
            "entity_attribute_lookup": _lookup,
            "multi_hop_reasoning": _multi_hop,
        }
        items = [item for item in makers[kind](world) if not _leaks(item)]
    return _interleave(items, rng)


def _q(key: str, question: str, answers: list[str], *hops: tuple[str, Entity, str, str]) -> dict[str, Any]:
    evidence = [{"query": q, "passage_id": e.passages[s], "expect": x} for q, e, s, x in hops]
    return {"key": key, "question": question, "answers": answers, "evidence": evidence}


def _direct(world: World) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for o in world.orgs:
        out.append(_q(f"founder/{o.name}", f"Who founded {o.name}?", o.facts["founder"].answers,
                      (f"{o.name} founded by", o, "overview", o.facts["founder"].name)))  # fmt: skip
        out.append(_q(f"founded/{o.name}", f"When was {o.name} founded?", [str(o.facts["founded"])],
                      (f"{o.name} founded", o, "overview", str(o.facts["founded"]))))  # fmt: skip
    for w in world.works:
        year = str(w.facts["year"])
        out.append(_q(f"year/{w.name}", f"In what year did the {w.facts['type']} {w.name} come out?", [year],
                      (f"{w.name} {w.facts['type']}", w, "overview", year)))  # fmt: skip
    for c in world.cities:
        river = c.facts["river"]
        out.append(_q(f"river/{c.name}", f"Which river flows through {c.name}?", [river, river[: -len(" River")]],
                      (f"{c.name} river flows", c, "geography", river)))  # fmt: skip
        out.append(_q(f"mayor/{c.name}", f"Who is the mayor of {c.name}?", c.facts["mayor"].answers,
                      (f"mayor of {c.name}", c, "government", c.facts["mayor"].name)))  # fmt: skip
    for p in world.people:
        year = p.facts["award_year"]
        out.append(_q(f"award/{p.name}", f"Which prize did {p.name} receive in {year}?", [p.facts["award"]],
                      (f"{p.name} received prize {year}", p, "honors", p.facts["award"])))  # fmt: skip
        if "spouse" in p.facts:
            out.append(_q(f"spouse/{p.name}", f"Who did {p.name} marry?", p.facts["spouse"].answers,
                          (f"{p.name} married", p, "personal_life", p.facts["spouse"].name)))  # fmt: skip
    for k in world.countries:
        out.append(_q(f"currency/{k.name}", f"What is the currency of {k.name}?", [k.facts["currency"]],
                      (f"{k.name} currency", k, "overview", k.facts["currency"])))  # fmt: skip
    return out


def _lookup(world: World) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in world.people:
        out.append(_q(f"occupation/{p.name}", f"What is {p.name}'s occupation?", [p.facts["occupation"]],
                      (f"{p.name} born", p, "early_life", p.facts["occupation"])))  # fmt: skip
        out.append(_q(f"birthplace/{p.name}", f"In what city was {p.name} born?", p.facts["birthplace"].answers,
                      (f"{p.name} born", p, "early_life", p.facts["birthplace"].name)))  # fmt: skip
        out.append(_q(f"country/{p.name}", f"What country is {p.name} from?", p.facts["country"].answers,
                      (f"{p.name} born", p, "early_life", p.facts["country"].name)))  # fmt: skip
    for w in world.works:
        role = WORK_CREATOR_ROLE[w.facts["type"]]
        out.append(_q(f"genre/{w.name}", f"What genre is {w.name}?", [w.facts["genre"]],
                      (f"{w.name} {w.facts['type']}", w, "overview", w.facts["genre"])))  # fmt: skip
        out.append(_q(f"creator/{w.name}", f"Who is the {role} of {w.name}?", w.facts["creator"].answers,
                      (f"{w.name} {WORK_VERBS[w.facts['type']]}", w, "overview", w.facts["creator"].name)))  # fmt: skip
    for c in world.cities:
        out.append(_q(f"city_country/{c.name}", f"In what country is {c.name}?", c.facts["country"].answers,
                      (f"{c.name} city", c, "overview", c.facts["country"].name)))  # fmt: skip
    for k in world.countries:
        out.append(_q(f"capital/{k.name}", f"What is the capital of {k.name}?", k.facts["capital"].answers,
                      (f"{k.name} capital", k, "overview", k.facts["capital"].name)))  # fmt: skip
    return out


def _multi_hop(world: World) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for w in world.works:
        creator, role, verb = w.facts["creator"], WORK_CREATOR_ROLE[w.facts["type"]], WORK_VERBS[w.facts["type"]]
        city = creator.facts["birthplace"]
        out.append(_q(f"creator_birthplace/{w.name}", f"In which city was the {role} of {w.name} born?",
                      city.answers, (f"{w.name} {verb}", w, "overview", creator.name),
                      (f"{creator.name} born", creator, "early_life", city.name)))  # fmt: skip
        holder = w.facts["holder"]
        out.append(_q(f"holder_founder/{w.name}", f"Who founded the {holder.facts['type']} that "
                      f"{WORK_HOLDER_VERB[w.facts['type']].split()[0]} {w.name}?", holder.facts["founder"].answers,
                      (f"{w.name} {WORK_HOLDER_VERB[w.facts['type']]}", w, "production", holder.name),
                      (f"{holder.name} founded by", holder, "overview", holder.facts["founder"].name)))  # fmt: skip
    for p in world.people:
        city, employer = p.facts["birthplace"], p.facts["employer"]
        river = city.facts["river"]
        out.append(_q(f"birthplace_river/{p.name}", f"Which river flows through the birthplace of {p.name}?",
                      [river, river[: -len(" River")]], (f"{p.name} born", p, "early_life", city.name),
                      (f"{city.name} river flows", city, "geography", river)))  # fmt: skip
        out.append(_q(f"employer_founded/{p.name}", f"In what year was the employer of {p.name} founded?",
                      [str(employer.facts["founded"])], (f"{p.name} employed by", p, "career", employer.name),
                      (f"{employer.name} founded", employer, "overview", str(employer.facts["founded"]))))  # fmt: skip
    for o in world.orgs:
        city = o.facts["hq"]
        out.append(_q(f"hq_mayor/{o.name}", f"Who is the mayor of the city where {o.name} is headquartered?",
                      city.facts["mayor"].answers, (f"{o.name} headquartered", o, "overview", city.name),
                      (f"mayor of {city.name}", city, "government", city.facts["mayor"].name)))  # fmt: skip
    for c in world.cities:
        country = c.facts["country"]
        out.append(_q(f"country_capital/{c.name}", f"What is the capital of the country where {c.name} is?",
                      country.facts["capital"].answers, (f"{c.name} city", c, "overview", country.name),
                      (f"{country.name} capital", country, "overview", country.facts["capital"].name)))  # fmt: skip
    return out


def _comparison(world: World, rng: random.Random) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def pairs(items: list[Entity], value: Callable[[Entity], int], group: Callable[[Entity], str]) -> list:
        by_group: dict[str, list[Entity]] = {}
        for item in items:
            by_group.setdefault(group(item), []).append(item)
        found = []
        for members in by_group.values():  # confusable pairs first: same family name, same kind
            for a, b in zip(members[::2], members[1::2], strict=False):
                if value(a) != value(b):
                    found.append((a, b))
        shuffled = items[:]
        rng.shuffle(shuffled)
        found += [(a, b) for a, b in zip(shuffled[::2], shuffled[1::2], strict=False) if value(a) != value(b)]
        return found

    def add(key: str, question: str, a: Entity, b: Entity, winner: Entity, query: Callable, section: str, show):
        hops = [(query(x), x, section, show(x)) for x in (a, b)]
        out.append(_q(f"{key}/{a.name}/{b.name}", question, winner.answers, *hops))

    def born(p: Entity) -> int:
        return p.facts["born"]

    for a, b in pairs(world.people, born, lambda p: p.name.split()[-1]):
        add("born_first", f"Which person was born first, {a.name} or {b.name}?", a, b,
            min(a, b, key=born), lambda x: f"{x.name} born", "early_life", lambda x: str(born(x)))  # fmt: skip
    for a, b in pairs(world.orgs, lambda o: o.facts["founded"], lambda o: o.facts["type"]):
        add("founded_first", f"Which organization was founded earlier, {a.name} or {b.name}?", a, b,
            min(a, b, key=lambda o: o.facts["founded"]), lambda x: f"{x.name} founded", "overview",
            lambda x: str(x.facts["founded"]))  # fmt: skip
    for a, b in pairs(world.cities, lambda c: c.facts["population"], lambda c: c.facts["country"].name):
        add("larger_city", f"Which city has the larger population, {a.name} or {b.name}?", a, b,
            max(a, b, key=lambda c: c.facts["population"]), lambda x: f"{x.name} city population", "overview",
            lambda x: f"{x.facts['population']:,}")  # fmt: skip
    for a, b in pairs(world.works, lambda w: w.facts["year"], lambda w: w.facts["type"]):
        kind = a.facts["type"] if a.facts["type"] == b.facts["type"] else "work"
        add("newer_work", f"Which {kind} came out more recently, {a.name} or {b.name}?", a, b,
            max(a, b, key=lambda w: w.facts["year"]), lambda x: f"{x.name} {x.facts['type']}", "overview",
            lambda x: str(x.facts["year"]))  # fmt: skip
    return out


def _words(text: str) -> str:
    return " " + " ".join("".join(ch if ch.isalnum() else " " for ch in text.lower()).split()) + " "


def _leaks(item: dict[str, Any]) -> bool:
    """Whether an answer appears, as whole words, in the question (a title naming a city can give it away)."""
    question = _words(item["question"])
    return any(_words(answer) in question for answer in item["answers"])


def _interleave(items: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """``items`` without duplicate keys, shuffled within each template and dealt round-robin over templates."""
    by_template: dict[str, list[dict[str, Any]]] = {}
    for item in {item["key"]: item for item in items}.values():
        by_template.setdefault(item["key"].split("/", 1)[0], []).append(item)
    for group in by_template.values():
        rng.shuffle(group)
    longest = max(len(group) for group in by_template.values())
    return [group[i] for i in range(longest) for group in by_template.values() if i < len(group)]
