"""The passages of the embedded Search-QA knowledge base: each entity of a world in wiki-18's corpus format.

An entity becomes 3-6 passages titled with its name, one per section (biography, career, works, geography, ...):
``{"id": "0", "contents": "\\"Title\\"\\ntext"}``, ids counting up from ``"0"``. This module holds
:func:`build_corpus`.
"""

from __future__ import annotations

import random

from skill_gym.envs.searchqa.world import INDUSTRIES, WORK_HOLDER_VERB, WORK_VERBS, Entity, World

__all__ = ["build_corpus"]


def build_corpus(world: World, rng: random.Random) -> list[dict[str, str]]:
    """The passages of every entity of ``world``, in order; each entity's ``passages`` maps its sections to ids.

    ``rng`` picks the industry of a city no organization is based in.
    """
    based_in: dict[str, list[Entity]] = {}
    staff: dict[str, list[Entity]] = {}
    for org in world.orgs:
        based_in.setdefault(org.facts["hq"].name, []).append(org)
    for person in world.people:
        staff.setdefault(person.facts["employer"].name, []).append(person)
    corpus: list[dict[str, str]] = []
    for entity in world.entities:
        for section, text in _sections(entity, based_in, staff, rng).items():
            entity.passages[section] = str(len(corpus))
            corpus.append({"id": entity.passages[section], "contents": f'"{entity.name}"\n{text}'})
    return corpus


def _a(phrase: str) -> str:
    """``phrase`` with its indefinite article."""
    return f"{'an' if phrase[0] in 'aeio' else 'a'} {phrase}"


def _sections(
    e: Entity, based_in: dict[str, list[Entity]], staff: dict[str, list[Entity]], rng: random.Random
) -> dict[str, str]:
    """The texts of ``e``'s passages by section, in order; ``based_in`` and ``staff`` list organizations by city
    and people by employer (names)."""
    f = e.facts
    s: dict[str, str] = {}
    if e.kind == "country":
        s["overview"] = (f"{e.name} is a country whose capital is {f['capital'].name}. Its official "
                         f"language is {f['language']} and its currency is the {f['currency']}.")  # fmt: skip
        s["history"] = (f"{e.name} became independent in {f['independence']}. The first president "
                        f"of {e.name} was {f['first_president'].name}, who served two terms.")  # fmt: skip
        s["geography"] = (f"The longest river of {e.name} is the {f['longest_river']}. Much of "
                          f"{e.name} is covered by farmland, forest and low hills.")  # fmt: skip
    elif e.kind == "city":
        pop = f"{f['population']:,}"
        s["overview"] = (f"{e.name} is a city in {f['country'].name} with a population of {pop}. "
                         f"{e.name} was founded in {f['founded']}.")  # fmt: skip
        s["geography"] = (f"{e.name} lies on the {f['river']}, which flows through {e.name}, at an "
                          f"elevation of {f['elevation']} metres above sea level.")  # fmt: skip
        s["government"] = (f"The mayor of {e.name} is {f['mayor'].name}. Every year {e.name} hosts "
                           f"the {e.name} {f['festival']} festival.")  # fmt: skip
        employers = [o.name for o in based_in.get(e.name, [])][:3]
        s["economy"] = f"Employers based in {e.name} include {', '.join(employers)}." if employers else (
            f"The economy of {e.name} rests on {rng.choice(INDUSTRIES)} and trade.")  # fmt: skip
    elif e.kind == "organization":
        what = _a(f"{f['industry']} company" if f["type"] == "company" else f["type"])
        s["overview"] = (f"{e.name} is {what} founded in {f['founded']} by {f['founder'].name}. "
                         f"{e.name} is headquartered in {f['hq'].name}.")  # fmt: skip
        s["leadership"] = (f"Since {f['leader_since']}, {e.name} has been led by {f['leader'].name}. "
                           f"Its headquarters stand in the old quarter of {f['hq'].name}.")  # fmt: skip
        people = [p.name for p in staff.get(e.name, [])][:3]
        if people:
            s["staff"] = f"Notable people who worked for {e.name} include {', '.join(people)}."
    elif e.kind == "person":
        he, his = f["gender"], "his" if f["gender"] == "he" else "her"
        s["early_life"] = (f"{e.name} (born {f['born']}) is {_a(f['occupation'])} from "
                           f"{f['country'].name}. {he.capitalize()} was born in {f['birthplace'].name} in "
                           f"{f['born']}.")  # fmt: skip
        s["education"] = (f"{e.name} studied {f['subject']} at {f['university'].name}, where "
                          f"{he} met several later collaborators.")  # fmt: skip
        s["career"] = (f"{e.name} was employed by {f['employer'].name} as {_a(f['occupation'])} "
                       f"from {f['career_start']}. {he.capitalize()} later moved to {f['residence'].name}.")  # fmt: skip
        if f["works"]:
            listed = ", ".join(f"{w.name} ({w.facts['year']})" for w in f["works"][:4])
            s["works"] = f"The works of {e.name} include {listed}."
        s["honors"] = (f"In {f['award_year']}, {e.name} received the {f['award']} for {his} work "
                       f"as {_a(f['occupation'])}.")  # fmt: skip
        married = f"married {f['spouse'].name} in {f['married_year']} and " if "spouse" in f else ""
        s["personal_life"] = f"{e.name} {married}lives in {f['residence'].name}."
    elif e.kind == "work":
        kind = f["type"]
        s["overview"] = (f"{e.name} is a {f['year']} {f['genre']} {kind} {WORK_VERBS[kind]} "
                         f"{f['creator'].name}.")  # fmt: skip
        place = "It depicts" if kind == "painting" else "It is set in"
        s["production"] = (f"{e.name} was {WORK_HOLDER_VERB[kind]} {f['holder'].name}. {place} "
                           f"{f['setting'].name}.")  # fmt: skip
        sold = {"painting": "drew {:,} visitors", "film": "sold {:,} tickets"}.get(kind, "sold {:,} copies")
        s["reception"] = (f"{e.name} {sold.format(f['copies'])} in its first decade and made "
                          f"{f['creator'].name} widely known.")  # fmt: skip
    return s
