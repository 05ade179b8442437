"""The skill library on real embeddings and real SQLite files."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skill_gym.library import Skill, SkillLibrary, SkillValidationError, StoreError

SKILLS = {
    "heat": ("Heating an object in the microwave before putting it somewhere.",
             "Take the object, go to microwave 1, heat it, then go to the target and put it there."),
    "cool": ("Chilling an object in the fridge before placing it.",
             "Take the object to fridge 1, cool it, then place it in or on the target."),
    "clean": ("Washing an object in the sink basin before placing it.",
              "Take the object to sinkbasin 1, clean it, then put it in the target receptacle."),
    "look": ("Examining an object under a desk lamp or floor lamp.",
             "Find and take the object, go to a lamp, turn the lamp on while holding the object."),
    "two": ("Putting two objects of the same kind into one receptacle.",
            "Find the first object, place it, then search for the second one and place it too."),
    "shop": ("Buying clothing in a specific size and color under a price limit online.",
             "Search with the key attributes, open the best match, select size and color, buy now."),
    "search": ("Answering a question about who founded a company using web search.",
               "Search for the company's founder, read the top documents, answer with the name."),
}  # fmt: skip

QUERIES = {
    "heat": "How do I warm up a mug with the microwave and then place it?",
    "cool": "put a cold tomato in the fridge then on the countertop",
    "clean": "rinse the apple in the sink and then put it on the table",
    "look": "look at the book under the desklamp",
    "two": "place two pencils in the drawer",
    "shop": "find me a red t-shirt in size large for less than 30 dollars",
    "search": "who started the company Microsoft?",
}


def _skill(key: str, **extra: object) -> Skill:
    description, strategy = SKILLS[key]
    return Skill(description=description, strategy=strategy, task_type=key, **extra)


@pytest.fixture
def library(tmp_path, encoder):
    lib = SkillLibrary(tmp_path / "lib.sqlite", encoder=encoder)
    yield lib
    lib.close()


def _offline_library(path, capacity: int = 5000) -> SkillLibrary:
    """A library on precomputed vectors: the encoder is named but never loaded."""
    return SkillLibrary(path, encoder="all-MiniLM-L6-v2", dim=384, capacity=capacity)


def _unit(rng: np.random.Generator, n: int, dim: int = 384) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_query_finds_the_skill_written_for_it(library):
    ids = {key: library.admit(_skill(key)).skill_id for key in SKILLS}
    for key, query in QUERIES.items():
        hits = library.retrieve(query, k=3, min_similarity=0.0)
        assert hits[0].skill.id == ids[key], (query, [h.skill.task_type for h in hits])
        assert hits[0].similarity > hits[-1].similarity


def test_similarity_cutoff_drops_unrelated_skills(library):
    for key in SKILLS:
        library.admit(_skill(key))
    assert library.retrieve("the quarterly tax report of a bakery in 1987", k=5, min_similarity=0.4) == []
    assert len(library.retrieve(QUERIES["heat"], k=5, min_similarity=0.4)) >= 1
    assert all(h.similarity >= 0.4 for h in library.retrieve(QUERIES["heat"], k=5, min_similarity=0.4))


def test_filters_by_env_and_task_type(library):
    library.admit(_skill("heat", env="alfworld"))
    library.admit(_skill("shop", env="webshop"))
    hits = library.retrieve(QUERIES["shop"], k=5, min_similarity=0.0, env="alfworld")
    assert [h.skill.env for h in hits] == ["alfworld"]
    assert library.retrieve(QUERIES["shop"], k=5, min_similarity=0.0, task_type="nothing") == []


def test_ucb_and_utility_ordering(tmp_path):
    lib = _offline_library(tmp_path / "lib.sqlite")
    query = np.zeros(384, dtype=np.float32)
    query[0] = 1.0
    vectors = np.zeros((3, 384), dtype=np.float32)
    for i, sim in enumerate([0.9, 0.8, 0.7]):
        vectors[i, 0], vectors[i, 1] = sim, math.sqrt(1 - sim * sim)
    skills = [
        Skill(description=f"d{i}", strategy=f"s{i}", id=f"s{i}", utility=u, n_retrieved=n)
        for i, (u, n) in enumerate([(0.1, 50), (0.9, 50), (0.5, 0)])
    ]
    lib.add(skills, embeddings=vectors)
    by_relevance = lib.retrieve(query, k=3, min_similarity=0.0, relevance_weight=1.0)
    assert [h.skill.id for h in by_relevance] == ["s0", "s1", "s2"]
    assert by_relevance[0].similarity == pytest.approx(0.9, abs=1e-5)
    greedy = lib.retrieve(query, k=3, min_similarity=0.0, relevance_weight=0.6)
    assert [h.skill.id for h in greedy] == ["s1", "s2", "s0"]
    assert greedy[0].score == pytest.approx(0.6 * 0.8 + 0.4 * 0.9, abs=1e-5)
    ucb = lib.retrieve(query, k=3, min_similarity=0.0, relevance_weight=0.6, ucb=True, ucb_c=1.0)
    total = 51 + 51 + 1
    bonus = {s.id: math.sqrt(math.log(total) / (s.n_retrieved + 1)) for s in skills}
    expected = {
        s.id: 0.6 * sim + 0.4 * (s.utility + bonus[s.id]) for s, sim in zip(skills, [0.9, 0.8, 0.7], strict=True)
    }
    assert [h.skill.id for h in ucb] == ["s2", "s1", "s0"]  # the never-tried skill is explored first
    for hit in ucb:
        assert hit.score == pytest.approx(expected[hit.skill.id], abs=1e-5)
    lib.close()


def test_merge_of_near_duplicates(library):
    first = library.admit(_skill("heat", env="alfworld", utility=0.9, n_retrieved=3, n_selected=2))
    same_text = library.admit(
        Skill(description="Something else entirely about boats.", strategy=SKILLS["heat"][1].upper(), env="alfworld")
    )
    assert same_text.status == "merged" and same_text.skill_id == first.skill_id
    paraphrase = library.admit(
        Skill(description="Heating an object in a microwave before putting it somewhere.",
              strategy="A different strategy text.", env="alfworld", utility=0.5, n_selected=1)
    )  # fmt: skip
    assert paraphrase.status == "merged"
    merged = library.get(first.skill_id)
    assert len(library) == 1
    assert merged.n_selected == 3
    assert merged.n_retrieved == 3
    # utilities averaged with weights n_retrieved + 1: (0.9*4 + 0.5*1)/5, then with a weight of 1 more
    assert merged.utility == pytest.approx(((0.9 * 4 + 0.5) / 5 * 4 + 0.5) / 5)
    assert len(merged.provenance["merged"]) == 2
    other_env = library.admit(_skill("heat", env="webshop"))
    assert other_env.status == "added"


def test_capacity_evicts_lowest_value(tmp_path):
    lib = _offline_library(tmp_path / "lib.sqlite", capacity=3)
    rng = np.random.default_rng(0)
    vectors = _unit(rng, 4)
    specs = [("keep-a", 0.9, 9), ("low", 0.1, 9), ("keep-b", 0.8, 2)]
    for (sid, u, n), vector in zip(specs, vectors, strict=False):
        assert (
            lib.admit(Skill(description=sid, strategy=sid, id=sid, utility=u, n_retrieved=n), vector).status == "added"
        )
    result = lib.admit(Skill(description="new", strategy="new", id="new"), vectors[3])
    assert result.status == "added" and result.evicted == ("low",)
    assert sorted(s.id for s in lib.skills()) == ["keep-a", "keep-b", "new"]
    assert len(lib.search(vectors[1], 10)) == 3  # the index dropped it too
    lib.close()


def test_ema_utility_and_counters(library):
    sid = library.admit(_skill("heat")).skill_id
    other = library.admit(_skill("cool")).skill_id
    library.update_utilities([sid, other], reward=1.0, alpha=0.05)
    library.update_utilities([sid], reward=0.0, alpha=0.05)
    library.record_selection(sid, success=True)
    library.record_selection(sid, success=False)
    skill = library.get(sid)
    assert skill.utility == pytest.approx((0.5 * 0.95 + 0.05) * 0.95)
    assert (skill.n_retrieved, skill.n_selected, skill.n_success) == (2, 2, 1)
    assert library.get(other).utility == pytest.approx(0.525)
    with pytest.raises(ValueError, match="alpha"):
        library.update_utilities([sid], reward=1.0, alpha=2.0)


def test_reopen_does_not_reencode_and_keeps_everything(tmp_path, encoder):
    path = tmp_path / "lib.sqlite"
    with SkillLibrary(path, encoder=encoder) as lib:
        ids = [lib.admit(_skill(key)).skill_id for key in SKILLS]
    reopened = SkillLibrary(path)  # no encoder passed: identity read from the file, model not loaded
    assert reopened._encoder is None
    assert sorted(s.id for s in reopened.skills()) == sorted(ids)
    vectors = reopened.store.embeddings()[1]
    assert reopened.search(vectors[0], 1)[0][1] == pytest.approx(1.0, abs=1e-5)
    assert reopened._encoder is None
    reopened.close()


def test_snapshot_is_a_complete_library(library, tmp_path):
    for key in ("heat", "cool"):
        library.admit(_skill(key))
    snap = library.snapshot(tmp_path / "snaps", step=7)
    assert snap.name == "library-step000007.sqlite"
    library.admit(_skill("clean"))
    with SkillLibrary(snap, encoder=library.encoder) as old:
        assert sorted(s.task_type for s in old.skills()) == ["cool", "heat"]
        assert old.retrieve(QUERIES["heat"], k=1)[0].skill.task_type == "heat"


def test_read_only_library_refuses_writes(library, tmp_path):
    library.admit(_skill("heat"))
    library.save_index()
    ro = SkillLibrary(library.path, encoder=library.encoder, read_only=True)
    assert ro.retrieve(QUERIES["heat"], k=1)[0].skill.task_type == "heat"
    assert ro.admit(_skill("cool")).status == "rejected"
    with pytest.raises(StoreError, match="read-only"):
        ro.update_utilities([ro.skills()[0].id], 1.0)
    ro.close()
    with pytest.raises(StoreError, match="does not exist"):
        SkillLibrary(tmp_path / "missing.sqlite", encoder=library.encoder, read_only=True)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"description": "", "strategy": "x"}, "description must not be empty"),
        ({"description": "x" * 1_000_000, "strategy": "x"}, "limit is 2000"),
        ({"description": "x", "strategy": "y" * 1_000_000}, "limit is 8000"),
        ({"description": 3, "strategy": "x"}, "description must be a string"),
        ({"description": "x", "strategy": "x", "utility": 1.5}, "utility must be in"),
        ({"description": "x", "strategy": "x", "utility": float("nan")}, "utility must be in"),
        ({"description": "x", "strategy": "x", "n_selected": -1}, "n_selected"),
        ({"description": "x", "strategy": "x", "n_selected": True}, "n_selected"),
        ({"description": "x", "strategy": "x", "id": "bad id with spaces"}, "id"),
        ({"description": "x", "strategy": "x", "source": "stolen"}, "source"),
        ({"description": "x", "strategy": "x", "provenance": []}, "provenance"),
        ({"description": "x", "strategy": "x", "provenance": {"policy_step": "7"}}, "policy_step"),
        ({"description": "x\x00y", "strategy": "x"}, "NUL"),
    ],
)
def test_invalid_records_are_rejected_with_a_clear_message(fields, message):
    with pytest.raises(SkillValidationError, match=message):
        Skill(**fields)


def test_bad_inputs_write_nothing(library):
    library.admit(_skill("heat"))
    before = library.store.seq()
    oversized = _skill("cool")
    oversized.strategy = "z" * 1_000_000
    result = library.admit(oversized)
    assert result.status == "rejected" and "limit is 8000" in result.reason
    assert library.admit("not a skill").status == "rejected"  # type: ignore[arg-type]
    with pytest.raises(SkillValidationError):
        library.add([_skill("clean"), oversized])
    with pytest.raises(StoreError, match="already in the library"):
        library.add([_skill("clean", id="dup"), _skill("look", id="dup")])
    assert len(library) == 1 and library.store.seq() == before
    unicode_skill = Skill(
        description="Réchauffer un objet au micro-ondes — 加热物体", strategy="Utiliser le micro-ondes ✓"
    )
    assert library.admit(unicode_skill).status == "added"
    assert library.get(unicode_skill.id).description == unicode_skill.description


def test_empty_library_and_wrong_files(tmp_path, encoder):
    with SkillLibrary(tmp_path / "empty.sqlite", encoder=encoder) as lib:
        assert lib.retrieve("anything", k=3) == []
        assert lib.stats()["size"] == 0
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a usable skill library"):
        SkillLibrary(garbage, encoder=encoder)
    with pytest.raises(StoreError, match="built with encoder"):
        SkillLibrary(tmp_path / "empty.sqlite", encoder="another-encoder", dim=768)


def test_corrupt_or_stale_index_is_rebuilt(tmp_path, encoder):
    path = tmp_path / "lib.sqlite"
    with SkillLibrary(path, encoder=encoder) as lib:
        ids = {key: lib.admit(_skill(key)).skill_id for key in SKILLS}
    index_file = path.with_name(path.name + ".hnsw")
    index_file.write_bytes(b"\x00garbage" * 64)
    with SkillLibrary(path, encoder=encoder) as lib:
        assert lib.retrieve(QUERIES["clean"], k=1)[0].skill.id == ids["clean"]
    index_file.unlink()
    with SkillLibrary(path, encoder=encoder) as lib:
        assert lib.retrieve(QUERIES["look"], k=1)[0].skill.id == ids["look"]
        header = path.with_name(path.name + ".hnsw.json")
        saved = header.read_text()
        lib.remove([ids["look"]])
    header.write_text(saved)  # an index header from before the removal: stale, caught up on open
    with SkillLibrary(path, encoder=encoder) as lib:
        assert all(h.skill.id != ids["look"] for h in lib.retrieve(QUERIES["look"], k=7, min_similarity=0.0))
        assert len(lib._index) == len(lib) == len(SKILLS) - 1
