"""The invented world of the embedded Search-QA knowledge base: its names, entities and their relations.

A world of countries, cities, organizations, people and works is generated from a world size and a
``random.Random``; every name and fact is invented, so no answer can be known without searching. Distractors are
built in: people share family and given names, many entities share years, cities and occupations, work titles
share words.

This module holds :class:`Entity`, :class:`World` and the words the world is made of (the tables below; those
its passages and questions phrase facts with too are public: :data:`WORK_VERBS`, :data:`WORK_CREATOR_ROLE`,
:data:`WORK_HOLDER_VERB`, :data:`INDUSTRIES`).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any

__all__ = ["INDUSTRIES", "WORK_CREATOR_ROLE", "WORK_HOLDER_VERB", "WORK_VERBS", "Entity", "World"]

# -- names ---------------------------------------------------------------------------------------------

_ONSETS = ["b", "br", "d", "dr", "f", "g", "h", "k", "kr", "l", "m", "n", "p", "r", "s", "st", "t", "th", "v", "z"]
_VOWELS = ["a", "e", "i", "o", "u", "ae", "ei", "ou"]
_CODAS = ["", "", "", "l", "n", "r", "s", "th", "m", "k", "v", "nd", "rk"]
_GIVEN_ENDINGS = ["", "a", "o", "en", "ia", "is", "et", "an"]
_FAMILY_ENDINGS = ["", "ov", "sen", "ric", "ane", "ell", "ik", "ow", "ard"]
_PLACE_ENDINGS = ["holm", "mere", "ford", "wick", "ana", "ora", "vik", "dale", "stad", "bury", "gate"]
_PLACE_PREFIXES = ["", "", "", "", "Port ", "New ", "Upper ", "Saint "]
_COUNTRY_ENDINGS = ["ia", "ara", "mark", "land", "ene", "avia", "oria"]

_ADJECTIVES = [
    "silent",
    "glass",
    "hollow",
    "amber",
    "bitter",
    "golden",
    "crimson",
    "quiet",
    "distant",
    "broken",
    "hidden",
    "northern",
    "southern",
    "pale",
    "iron",
    "wandering",
    "last",
    "secret",
    "silver",
    "burning",
    "frozen",
    "endless",
    "lonely",
    "scarlet",
    "violet",
    "salt",
    "copper",
    "gentle",
    "savage",
    "velvet",
    "paper",
    "stone",
    "winter",
    "summer",
    "autumn",
    "spring",
    "midnight",
    "early",
    "late",
    "open",
    "narrow",
    "green",
    "black",
    "white",
    "blue",
    "grey",
    "small",
    "great",
    "second",
    "third",
    "little",
    "ancient",
    "restless",
]
_NOUNS = [
    "orchard",
    "harbor",
    "river",
    "lantern",
    "garden",
    "mirror",
    "tower",
    "season",
    "archive",
    "bridge",
    "meadow",
    "island",
    "compass",
    "letter",
    "engine",
    "window",
    "voyage",
    "machine",
    "forest",
    "kingdom",
    "mountain",
    "chorus",
    "theory",
    "harvest",
    "symphony",
    "atlas",
    "citadel",
    "lighthouse",
    "cartographer",
    "ember",
    "tide",
    "station",
    "shadow",
    "circle",
    "feather",
    "crossing",
    "frontier",
    "chapel",
    "promise",
    "orchestra",
    "horizon",
    "signal",
    "ledger",
    "fountain",
    "labyrinth",
    "quarry",
    "empire",
    "pilgrim",
    "reservoir",
    "almanac",
    "carnival",
]
_TITLE_PATTERNS = ["The {A} {N}", "{A} {N}", "The {N} of {P}", "{A} {Ns}", "A {N} in {P}"]

_OCCUPATIONS = {
    "novelist": "novel",
    "film director": "film",
    "composer": "album",
    "painter": "painting",
    "physicist": "",
    "architect": "",
    "chemist": "",
    "economist": "",
    "diplomat": "",
    "botanist": "",
    "cartographer": "",
    "surgeon": "",
    "engineer": "",
    "historian": "",
    "mathematician": "",
    "journalist": "",
}
WORK_VERBS = {"novel": "written by", "film": "directed by", "album": "recorded by", "painting": "painted by"}
WORK_CREATOR_ROLE = {"novel": "author", "film": "director", "album": "composer", "painting": "painter"}
_WORK_GENRES = {
    "novel": ["mystery", "historical fiction", "science fiction", "satire", "romance", "fantasy", "thriller"],
    "film": ["drama", "comedy", "documentary", "western", "musical", "horror", "war"],
    "album": ["jazz", "folk", "chamber music", "ambient", "opera", "blues", "electronic"],
    "painting": ["landscape", "portrait", "still life", "abstract", "seascape", "allegory", "genre scene"],
}
_ORG_KINDS = {  # kind -> (name suffixes, what it does with works)
    "publisher": (["Press", "House", "Books", "Publishing"], "novel"),
    "film studio": (["Pictures", "Studios", "Films"], "film"),
    "record label": (["Records", "Music", "Sound"], "album"),
    "museum": (["Gallery", "Museum", "Collection"], "painting"),
    "company": (["Dynamics", "Industries", "Works", "Holdings", "Systems", "Foundry"], ""),
    "university": (["University", "Institute", "College"], ""),
}
_WORK_HOLDER = {"novel": "publisher", "film": "film studio", "album": "record label", "painting": "museum"}
WORK_HOLDER_VERB = {"novel": "published by", "film": "produced by", "album": "released by", "painting": "held by"}
_SUBJECTS = ["physics", "law", "history", "music", "medicine", "philosophy", "engineering", "literature", "botany"]
_LANGUAGES = ["Vellish", "Ordan", "Kestric", "Marune", "Thalic", "Sovren", "Ildic", "Braskan"]
_CURRENCIES = ["mark", "crown", "thaler", "florin", "ducat", "sol", "rand", "lira", "penge", "real"]
_FESTIVALS = ["lantern", "harvest", "river", "winter", "music", "kite", "salt", "book", "glass", "film"]
INDUSTRIES = ["shipbuilding", "textiles", "mining", "printing", "brewing", "software", "railways", "glassmaking"]


class _Names:
    """Unique invented names: every name in the world is different (similar ones are on purpose)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def _word(self, syllables: int) -> str:
        rng = self.rng
        parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)]
        return ("".join(parts) + rng.choice(_CODAS)).capitalize()

    def words(self, n: int, syllables: tuple[int, int], endings: list[str]) -> list[str]:
        out: list[str] = []
        while len(out) < n:
            word = self._word(self.rng.randint(*syllables)) + self.rng.choice(endings)
            if 4 <= len(word) <= 11 and word not in self.used:
                self.used.add(word)
                out.append(word)
        return out

    def claim(self, name: str) -> bool:
        """Reserve ``name``; ``False`` when it is taken."""
        if name in self.used:
            return False
        self.used.add(name)
        return True


# -- the world -----------------------------------------------------------------------------------------


@dataclasses.dataclass
class Entity:
    """One thing in the world: its name, kind, facts, other names, and its passage ids by section."""

    name: str
    kind: str
    facts: dict[str, Any]
    aliases: list[str] = dataclasses.field(default_factory=list)
    passages: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def answers(self) -> list[str]:
        return [self.name, *self.aliases]


class World:
    """Countries, cities, organizations, people and works (about ``n_entities`` in all), drawn from ``rng``.

    Facts that name another entity hold it (a person's ``birthplace`` is a city :class:`Entity`), and the world
    stays consistent in time: spouses, founders, leaders, mayors and first presidents are of fitting ages.
    """

    def __init__(self, n_entities: int, rng: random.Random) -> None:
        if not isinstance(n_entities, int) or n_entities < 200:
            raise ValueError(f"n_entities must be an int >= 200, got {n_entities!r}")
        self._rng = rng
        self.names = _Names(rng)
        n = n_entities
        self.countries = [self._country(name) for name in self._country_names(max(8, n // 100))]
        self.cities = [self._city() for _ in range(max(20, n // 10))]
        for country in self.countries:
            country.facts["capital"] = self._pick(self.cities, lambda c, k=country: c.facts["country"] is k)
        self.orgs = [self._org() for _ in range(max(30, n // 6))]
        given = self.names.words(max(60, n // 16), (1, 2), _GIVEN_ENDINGS)
        family = self.names.words(max(40, n // 6), (1, 2), _FAMILY_ENDINGS)
        self.people = [self._person(given, family) for _ in range(max(60, n // 2))]
        self.works = [self._work() for _ in range(max(40, n - len(self.people) - len(self.orgs) - len(self.cities)))]
        self._relate()

    @property
    def entities(self) -> list[Entity]:
        """Every entity, in the order they were made: countries, cities, organizations, people, works."""
        return [*self.countries, *self.cities, *self.orgs, *self.people, *self.works]

    def _country_names(self, n: int) -> list[str]:
        return self.names.words(n, (1, 2), _COUNTRY_ENDINGS)

    def _country(self, name: str) -> Entity:
        rng = self._rng
        facts = {
            "language": rng.choice(_LANGUAGES),
            "currency": f"{self.names.words(1, (1, 1), [''])[0]} {rng.choice(_CURRENCIES)}",
            "independence": rng.randint(1830, 1990),
        }
        return Entity(name, "country", facts)

    def _city(self) -> Entity:
        rng = self._rng
        while True:
            base = self.names.words(1, (1, 2), _PLACE_ENDINGS)[0]
            name = rng.choice(_PLACE_PREFIXES) + base
            if name == base or self.names.claim(name):
                break
        aliases = [base] if name != base else []
        river = self.names.words(1, (1, 2), ["", "a", "e"])[0] + " River"
        facts = {
            "country": rng.choice(self.countries),
            "population": rng.randrange(8_000, 2_400_000, 100),
            "founded": rng.randint(900, 1890),
            "river": river,
            "elevation": rng.randint(2, 1900),
            "festival": rng.choice(_FESTIVALS),
        }
        return Entity(name, "city", facts, aliases)

    def _org(self) -> Entity:
        rng = self._rng
        kind = rng.choice(list(_ORG_KINDS))
        while True:
            root = rng.choice([*self.names.words(1, (1, 2), ["", "a", "on"]), rng.choice(_ADJECTIVES).capitalize()])
            name = f"{root} {rng.choice(_ORG_KINDS[kind][0])}"
            if self.names.claim(name):
                break
        facts = {
            "type": kind,
            "founded": rng.randint(1815, 1995),
            "hq": rng.choice(self.cities),
            "industry": rng.choice(INDUSTRIES) if kind == "company" else "",
        }
        return Entity(name, "organization", facts)

    def _person(self, given: list[str], family: list[str]) -> Entity:
        rng = self._rng
        while True:
            first, last = rng.choice(given), rng.choice(family)
            name = f"{first} {last}"
            if self.names.claim(name):
                break
        middle = rng.choice("ABCDEFGHJKLMNPRSTW")
        occupation = rng.choice(list(_OCCUPATIONS))
        birthplace = rng.choice(self.cities)
        born = rng.randint(1790, 1985)
        kind_wanted = _WORK_HOLDER.get(_OCCUPATIONS[occupation], "")
        kinds = (kind_wanted,) if kind_wanted else ("company", "university")
        employer = self._pick(self.orgs, lambda o: o.facts["type"] in kinds and o.facts["founded"] < born + 30)
        facts = {
            "gender": rng.choice(["he", "she"]),
            "born": born,
            "birthplace": birthplace,
            "country": birthplace.facts["country"],
            "occupation": occupation,
            "university": self._pick(self.orgs, lambda o: o.facts["type"] == "university"),
            "subject": rng.choice(_SUBJECTS),
            "employer": employer,
            "career_start": born + rng.randint(20, 30),
            "residence": rng.choice(self.cities),
            "award_year": min(born + rng.randint(30, 60), 2024),
            "works": [],
        }
        return Entity(name, "person", facts, [f"{first} {middle}. {last}"])

    def _work(self) -> Entity:
        rng = self._rng
        creator = self._pick(self.people, lambda p: bool(_OCCUPATIONS[p.facts["occupation"]]))
        kind = _OCCUPATIONS[creator.facts["occupation"]]
        while True:
            pattern, noun = rng.choice(_TITLE_PATTERNS), rng.choice(_NOUNS).capitalize()
            title = pattern.format(
                A=rng.choice(_ADJECTIVES).capitalize(),
                N=noun,
                Ns=noun[:-1] + "ies" if noun.endswith("y") else noun + ("es" if noun.endswith(("s", "ch")) else "s"),
                P=rng.choice(self.cities).name,
            )
            if self.names.claim(title):
                break
        year = min(creator.facts["born"] + rng.randint(22, 70), 2024)
        facts = {
            "type": kind,
            "creator": creator,
            "year": year,
            "genre": rng.choice(_WORK_GENRES[kind]),
            "holder": self._pick(self.orgs, lambda o: o.facts["type"] == _WORK_HOLDER[kind]),
            "setting": rng.choice(self.cities),
            "copies": rng.randrange(2_000, 900_000, 500),
        }
        aliases = [title[4:]] if title.startswith("The ") else []
        return Entity(title, "work", facts, aliases)

    def _relate(self) -> None:
        rng = self._rng
        for work in self.works:
            work.facts["creator"].facts["works"].append(work)
        for person in self.people:  # relations between people of fitting ages: the world stays consistent
            if "spouse" not in person.facts:
                born = person.facts["born"]
                spouse = self._pick(self.people, lambda p, b=born, me=person: p is not me and "spouse" not in
                                    p.facts and abs(p.facts["born"] - b) <= 12)  # fmt: skip
                if "spouse" not in spouse.facts and spouse is not person:
                    year = max(born, spouse.facts["born"]) + rng.randint(22, 35)
                    person.facts |= {"spouse": spouse, "married_year": year}
                    spouse.facts |= {"spouse": person, "married_year": year}
            person.facts["award"] = f"{rng.choice(self.countries).name} {rng.choice(['Prize', 'Medal', 'Award'])}"
        for org in self.orgs:
            born_in = range(org.facts["founded"] - 70, org.facts["founded"] - 19)
            org.facts["founder"] = self._pick(self.people, lambda p, years=born_in: p.facts["born"] in years)
            since = org.facts["leader_since"] = rng.randint(max(org.facts["founded"], 1900), 2020)
            org.facts["leader"] = self._pick(self.people, lambda p, y=since: 30 <= y - p.facts["born"] <= 65)
        for city in self.cities:
            city.facts["mayor"] = self._pick(self.people, lambda p: 1940 <= p.facts["born"] <= 1985)
        for country in self.countries:
            year = country.facts["independence"]
            country.facts["first_president"] = self._pick(
                self.people, lambda p, y=year: 35 <= y - p.facts["born"] <= 75
            )
            country.facts["longest_river"] = rng.choice(self.cities).facts["river"]

    def _pick(self, items: list[Entity], fits: Callable[[Entity], bool], tries: int = 400) -> Entity:
        """A random item that ``fits`` (rejection sampling keeps generation linear), else any item."""
        for _ in range(tries):
            item = self._rng.choice(items)
            if fits(item):
                return item
        return self._rng.choice(items)
