"""The skill phases over a real base env (Keyword-v0) with a real library and encoder."""

from __future__ import annotations

import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import skill_gym
from skill_gym.library import Skill, SkillLibrary
from skill_gym.skill_env import StaticSkillSet, ndcg, starter_skills_dir
from skill_gym.skill_env.parsing import parse_query, parse_rank, parse_skill

GOOD_SKILL = (
    '```json\n{"description": "Asked for the opposite of a word.", "strategy": "Answer with the antonym."}\n```'
)


@pytest.fixture
def lib_path(tmp_path, encoder):
    path = tmp_path / "lib.sqlite"
    SkillLibrary(path, encoder=encoder).close()
    return str(path)


def _make(lib_path, **kwargs):
    return gym.make("SkillKeyword-v0", library=lib_path, **kwargs)


def _seed(lib_path, encoder, skills):
    with SkillLibrary(lib_path, encoder=encoder) as lib:
        return [lib.admit(s).skill_id for s in skills]


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"selection": "similarity"}, {"skills": "static"}, {"selection": "none", "distillation": "none"}],
)
def test_check_env_passes_without_warnings(lib_path, kwargs):
    env = _make(lib_path, **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []
    env.close()


def test_full_phase_walk_through(lib_path, encoder):
    env = _make(lib_path)
    obs, info = env.reset(seed=0, options={"task_id": "opposite/hot"})
    assert obs["phase"] == "select" and obs["admissible_actions"] == ""
    obs, reward, term, trunc, info = env.step("<query>opposite of a word</query>")
    assert obs["phase"] == "act" and info["skill"]["retrieved_ids"] == []  # empty library
    assert "No relevant skill" in obs["skills"]
    obs, reward, term, trunc, info = env.step("cold")
    assert (obs["phase"], reward, term) == ("distill", 1.0, False)
    assert "you succeeded" in obs["observation"] and "> cold" in obs["observation"]
    assert info["skill"]["distill_reward"] == pytest.approx(1.0)
    obs, reward, term, trunc, info = env.step(GOOD_SKILL)
    assert term and info["skill"]["admission"]["status"] == "added"
    new_id = info["skill"]["admission"]["skill_id"]

    # a second skill so that the next episode has two candidates to rank
    _seed(lib_path, encoder, [Skill(description="Word tasks that want the reverse meaning of an adjective.", strategy="Use an antonym list.",
                                   env="keyword", utility=0.9)])  # fmt: skip
    obs, info = env.reset(seed=1, options={"task_id": "opposite/up"})
    obs, *_, info = env.step("<query>how to answer with the opposite of a word</query>")
    assert obs["phase"] == "rerank" and new_id in info["skill"]["retrieved_ids"]
    assert "[1] When:" in obs["candidates"] and "[2] When:" in obs["candidates"]
    utilities = info["skill"]["utilities"]
    obs, *_, info = env.step("<rank>2, 1</rank>")
    assert obs["phase"] == "act" and info["skill"]["rank_valid"]
    assert info["skill"]["chosen_id"] == info["skill"]["retrieved_ids"][1]
    assert info["skill"]["ndcg"] == pytest.approx(ndcg([1, 0], utilities))
    assert info["skill"]["u_hat"] == pytest.approx(max(utilities))
    obs, reward, *_, info = env.step("up")  # wrong answer
    obs, reward, term, trunc, info = env.step("left")  # wrong again: max_steps=2 ends the base episode
    assert obs["phase"] == "distill" and "you failed" in obs["observation"]
    assert info["skill"]["distill_reward"] == pytest.approx(0.0 - max(utilities))
    obs, _, term, _, info = env.step(GOOD_SKILL)
    assert term and info["skill"]["admission"]["status"] == "rejected"
    assert "failed" in info["skill"]["admission"]["reason"]
    env.close()
    with SkillLibrary(lib_path) as lib:
        chosen = lib.get(info["skill"]["chosen_id"])
        assert chosen.n_selected == 1 and chosen.n_success == 0
        for sid, before in zip(info["skill"]["retrieved_ids"], utilities, strict=True):
            assert lib.get(sid).utility == pytest.approx(0.95 * before)  # EMA towards r = 0


@pytest.mark.parametrize("bad", ["", "x" * 1_000_000, 42, None, "<action>go</action>", "<think>no closing tag"])
def test_malformed_outputs_at_each_phase_never_raise(lib_path, encoder, bad):
    _seed(lib_path, encoder, [
        Skill(description="Asked for the opposite of a word.", strategy="Use an antonym.", env="keyword"),
        Skill(description="Answering with the antonym of a given word.", strategy="Think of the reverse.", env="keyword"),
    ])  # fmt: skip
    env = _make(lib_path)
    obs, info = env.reset(seed=0, options={"task_id": "opposite/hot"})
    obs, _, _, _, info = env.step(bad)  # select
    assert info["action_valid"] is False and info["skill"]["query_valid"] is False
    assert "Invalid query" in obs["observation"]
    assert obs["phase"] == "rerank"  # the task text was used as the query
    obs, _, _, _, info = env.step(bad)  # rerank
    assert info["action_valid"] is False and info["skill"]["rank_valid"] is False
    assert obs["phase"] == "act" and "similarity order" in obs["observation"]
    obs, _, _, _, info = env.step(bad)  # act
    assert info["action_valid"] is False and "Nothing happens" in obs["observation"]
    obs, _, _, _, info = env.step("cold")
    obs, _, term, _, info = env.step(bad)  # distill
    assert term and info["action_valid"] is False
    assert (
        info["skill"]["admission"]["status"] == "rejected" and "invalid skill" in info["skill"]["admission"]["reason"]
    )
    obs, _, term, _, info = env.step("anything")  # after the end
    assert term and "call reset()" in obs["observation"]
    env.close()


def test_similarity_mode_and_read_only_library(lib_path, encoder):
    [sid] = _seed(
        lib_path, encoder, [Skill(description="Asked for the plural of a word.", strategy="Add s.", env="keyword")]
    )
    env = _make(lib_path, selection="similarity", read_only=True)
    obs, info = env.reset(seed=0, options={"task_id": "plural/box"})
    assert obs["phase"] == "act" and info["skill"]["chosen_id"] == sid and "Add s." in obs["skills"]
    obs, reward, term, trunc, info = env.step("boxes")
    assert term and reward == 1.0 and obs["phase"] == "act"  # no distill phase with a read-only library
    env.close()
    with SkillLibrary(lib_path) as lib:
        assert lib.get(sid).utility == 0.5 and lib.get(sid).n_selected == 0  # frozen


def test_static_skills_and_active_set(lib_path):
    env = _make(lib_path, skills="static")
    obs, info = env.reset(seed=0, options={"task_id": "plural/mouse"})
    assert obs["phase"] == "act"
    assert "### GENERAL SKILLS ###" in obs["skills"] and "mouse gives mice" in obs["skills"]
    assert info["skill"]["static_files"] == ["general_skills", "plural"]
    env.unwrapped.set_active_skills(["general_skills"])
    obs, info = env.reset(seed=0, options={"task_id": "plural/mouse"})
    assert "mice" not in obs["skills"] and info["skill"]["static_files"] == ["general_skills"]
    env.unwrapped.set_active_skills([])
    obs, _ = env.reset(seed=0)
    assert obs["skills"] == ""
    with pytest.raises(ValueError, match="unknown skill files"):
        env.unwrapped.set_active_skills(["nope"])
    env.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_vector_envs_share_one_library(tmp_path, encoder, mode):
    path = str(tmp_path / "shared.sqlite")
    SkillLibrary(path, encoder=encoder).close()
    envs = skill_gym.make_vec(
        "SkillKeyword-v0", num_envs=3, vectorization_mode=mode, library=path, selection="similarity"
    )
    envs.reset(seed=[0, 1, 2], options={"task_id": "echo/apple"})
    for action in (["apple"] * 3, [GOOD_SKILL.replace("opposite", f"echo {i}") for i in range(3)]):
        obs, rewards, term, trunc, infos = envs.step(action)
    assert term.all()
    statuses = list(infos["skill"]["admission"]["status"])  # vector infos nest dicts key by key
    assert statuses.count("added") >= 1 and set(statuses) <= {"added", "merged"}
    envs.close()
    with SkillLibrary(path) as lib:
        assert len(lib) >= 1 and all(s.env == "keyword" and s.source == "distilled" for s in lib.skills())
    static = skill_gym.make_vec("SkillKeyword-v0", num_envs=2, vectorization_mode=mode, skills="static")
    static.call("set_active_skills", ["general_skills"])  # the curriculum hook reaches every worker
    assert [s.active for s in static.get_attr("static_skills")] == [("general_skills",)] * 2
    static.close()


def test_parsers():
    assert parse_query("<query> a  b </query>") == ("a b", "")
    assert parse_query("<think>x</think>")[0] is None
    assert parse_rank("rank: 2 then 1", 2) == ([1, 0], "")
    assert parse_rank("<rank>1,1,1</rank>", 3) == ([0, 1, 2], "")
    assert parse_rank("<rank>0</rank>", 3)[0] is None
    skill, _ = parse_skill('{"description_head": "When heating.", "action_lesson": "Use the microwave first.",'
                           ' "navigation_lesson": "x", "task_success": true}')  # fmt: skip
    assert skill.description == "When heating."
    assert skill.strategy == "Action Insight: Use the microwave first."  # as Skill1's released code stores it
    assert skill.claimed_success is True
    assert parse_skill("{}")[0] is None and parse_skill("[1, 2]")[0] is None
    assert parse_skill("{" * 100_000)[0] is None
    assert ndcg([0, 1], [0.0, 0.0]) == 0.0


def test_starter_skill_sets_load():
    for env in ("alfworld", "keyword"):
        skills = StaticSkillSet(starter_skills_dir(env))
        assert "general_skills" in skills.files and len(skills.files) >= 4
    alf = StaticSkillSet(starter_skills_dir("alfworld"))
    for task_type in ("pick_and_place_simple", "pick_two_obj_and_place", "look_at_obj_in_light",
                      "pick_clean_then_place_in_recep", "pick_heat_then_place_in_recep", "pick_cool_then_place_in_recep"):  # fmt: skip
        assert len(alf.keys_for(task_type)) == 2


def _export(lib_path, folder, **rules):
    from skill_gym.library.curriculum import CurriculumRules, build_curriculum, write_curriculum

    with SkillLibrary(lib_path) as lib:
        curriculum = build_curriculum(lib.skills(), lib.embed, CurriculumRules(min_selected=0, **rules))
    return str(write_curriculum(curriculum, folder))


def test_static_files_distill_into_a_library_and_count_the_skills_shown(tmp_path, lib_path, encoder):
    opposite, general = _seed(lib_path, encoder, [
        Skill("Asked for the opposite of a word.", "Answer with the antonym.", task_type="opposite"),
        Skill("Any word task.", "Answer with one admissible word.", task_type=""),
    ])  # fmt: skip
    folder = _export(lib_path, tmp_path / "v1")
    plain = _make(lib_path, skills="static", static_dir=folder)  # static files alone: no distill turn, no writes
    obs, _ = plain.reset(seed=0, options={"task_id": "opposite/hot"})
    assert plain.step("cold")[2] is True
    plain.close()
    with SkillLibrary(lib_path) as lib:
        assert lib.get(opposite).n_selected == 0 and len(lib) == 2

    env = _make(lib_path, skills="static", static_dir=folder, static_distill=True)
    obs, info = env.reset(seed=0, options={"task_id": "opposite/hot"})
    assert "antonym" in obs["skills"] and info["skill"]["static_files"] == ["general_skills", "opposite"]
    obs, reward, term, _, info = env.step("cold")
    assert (obs["phase"], reward, term) == ("distill", 1.0, False)
    obs, _, term, _, info = env.step(GOOD_SKILL.replace("opposite", "reverse"))
    assert term and info["skill"]["admission"]["status"] == "added"
    obs, info = env.reset(seed=0, options={"task_id": "plural/mouse"})  # only the general file is shown
    env.step("mouses")
    env.step("not json")
    env.close()
    with SkillLibrary(lib_path) as lib:
        assert len(lib) == 3  # the distilled skill went to the library
        shown = lib.get(opposite)
        assert (shown.n_selected, shown.n_success, shown.utility) == (1, 1, pytest.approx(0.525))
        both = lib.get(general)
        assert (both.n_selected, both.n_success) == (2, 1)


def test_loading_a_re_exported_folder_keeps_the_active_files_it_still_holds(tmp_path, lib_path, encoder):
    _seed(lib_path, encoder, [
        Skill("Asked for the opposite of a word.", "Answer with the antonym.", task_type="opposite"),
        Skill("Any word task.", "Answer with one admissible word.", task_type=""),
    ])  # fmt: skip
    first = _export(lib_path, tmp_path / "v1")
    env = _make(lib_path, skills="static", static_dir=first)
    env.unwrapped.set_active_skills(["general_skills"])  # the curriculum dropped 'opposite'
    _seed(lib_path, encoder, [Skill("Asked for the plural of a noun.", "Irregular nouns: mouse gives mice.",
                                    task_type="plural")])  # fmt: skip
    env.unwrapped.load_skill_files(_export(lib_path, tmp_path / "v2"))
    assert env.unwrapped.static_skills.active == ("general_skills", "plural")  # kept, plus the new file
    obs, info = env.reset(seed=0, options={"task_id": "plural/mouse"})
    assert "mouse gives mice" in obs["skills"] and info["skill"]["static_files"] == ["general_skills", "plural"]
    env.close()
    library_env = _make(lib_path)
    with pytest.raises(AttributeError, match="retrieves from a library"):
        library_env.unwrapped.load_skill_files(first)
    library_env.close()


@pytest.mark.parametrize("distill_format", ["skill", "lessons"])
def test_phase_demonstrations_are_valid_answers_and_open_each_skill_phase_prompt(lib_path, distill_format):
    from agents.prompts import PromptBuilder
    from skill_gym.skill_env.demonstrations import phase_demonstrations

    examples = phase_demonstrations(distill_format)
    assert parse_query(examples["select"].response)[0] == "order a few numbers"
    assert parse_rank(examples["rerank"].response, 2)[0] == [1, 0]
    skill, problem = parse_skill(examples["distill"].response, "Sort the numbers")
    assert skill is not None and problem == ""
    assert _make(lib_path).unwrapped.instructions.phase_demonstrations == {}  # off by default (Skill1's prompts)
    env = _make(lib_path, demonstrations=True, distill_format=distill_format)
    builder = PromptBuilder(env.unwrapped.instructions)
    obs, _ = env.reset(seed=0, options={"task_id": "opposite/hot"})
    prompt = builder.build(obs, [], 0)
    assert [m["role"] for m in prompt] == ["user", "assistant", "user"]
    assert "Sort the numbers" in prompt[0]["content"] and prompt[1]["content"] == examples["select"].response
    obs, *_ = env.step("<query>opposite</query>")
    obs, *_ = env.step("cold")
    assert obs["phase"] == "distill"
    prompt = builder.build(obs, [], 0)
    assert prompt[1]["content"] == examples["distill"].response and "Write one reusable skill" in prompt[0]["content"]
    assert PromptBuilder(env.unwrapped.instructions, demonstration=False).build(obs, [], 0) == prompt[2:]
    env.close()


def test_contrast_memory_moves_to_a_fresh_env_and_refuses_bad_rows(lib_path):
    env = _make(lib_path, selection="none", max_steps=1)
    obs, _ = env.reset(seed=0, options={"task_id": "opposite/hot"})
    wrong = next(a for a in obs["admissible_actions"].split("\n") if a and a != "cold")
    env.step(wrong)  # failed: remembered for contrast
    env.step("not json")
    memory = env.unwrapped.contrast_memory
    assert memory == [["opposite/hot", False, f"1. > {wrong}\nWrong word."]]
    env.close()
    fresh = _make(lib_path, selection="none", max_steps=1)
    fresh.unwrapped.contrast_memory = memory  # what a resumed trainer does (through the vector env's set_attr)
    fresh.reset(seed=0, options={"task_id": "opposite/hot"})
    obs, *_ = fresh.step("cold")
    assert f"An earlier attempt at the same task that failed:\n1. > {wrong}" in obs["observation"]
    for bad in ([["opposite/hot", "no", "text"]], [["only two", True]]):
        with pytest.raises(ValueError, match="task_id, won, trajectory"):
            fresh.unwrapped.contrast_memory = bad
    fresh.close()
