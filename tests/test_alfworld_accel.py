"""The accelerated ALFWorld engine gives exactly the stock engine's outputs (real engines, no mocks).

* live lockstep, one process: stock and accelerated engines play the same script (walkthrough, planner
  plans, 200 random admissible and invalid commands) on sample games and every record must match;
* reference: ``tests/data/alfworld_stock_digests.json`` holds the digests of the stock engine's transcripts
  over every embedded game, written in spawned processes by ``python -m
  skill_gym.envs.alfworld.accel.transcript``; the accelerated engine must reproduce them: 6 games by
  default (spawned), every 6th game in the slow run (eval games in one process, train games spawned), and
  every game with ``SKILL_GYM_ALFWORLD_FULL_CHECK=1`` (about an hour on 2 cores: the planner's searches,
  the same C++ code in both engines, take most of it);
* the async vector env (spawned workers) runs the accelerated engine and matches a stock vector env;
* the version guard, translation records, the registry cap and the command-cache analysis.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import sys
from pathlib import Path

import gymnasium as gym
import pytest

import skill_gym  # noqa: F401  (registers the env ids)
from skill_gym.envs.alfworld import _upstream
from skill_gym.envs.alfworld.accel import commands, state, translation, versions
from skill_gym.envs.alfworld.accel.grammar import FastGrammar
from skill_gym.envs.alfworld.accel.transcript import RANDOM_STEPS, SEED, play, suite_digests
from skill_gym.envs.alfworld.engine import ENGINE_POOL, GameEngine
from skill_gym.envs.alfworld.suite import game_files, load_suite

REFERENCE = Path(__file__).parent / "data" / "alfworld_stock_digests.json"


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return load_suite()["games"]


@pytest.fixture(scope="module")
def reference() -> dict:
    data = json.loads(REFERENCE.read_text())
    assert data["engine"] == "stock" and data["random_steps"] == RANDOM_STEPS and data["seed"] == SEED
    assert data["versions"] == versions.PINNED
    return data["digests"]


def _by_size(records: list[dict]) -> list[dict]:
    return sorted(records, key=lambda r: (len(r["pddl_problem"]), r["task_id"]))


def _first_mismatch(stock: list[dict], fast: list[dict]) -> str | None:
    for i, (a, b) in enumerate(zip(stock, fast, strict=False)):
        if a != b:
            keys = [k for k in a if a[k] != b.get(k)]
            return f"record {i} ({a.get('kind')} {a.get('command')!r}) differs in {keys}: {a} != {b}"
    return None if len(stock) == len(fast) else f"lengths differ: {len(stock)} != {len(fast)}"


def _transcript(record: dict, accelerate: bool, random_steps: int = RANDOM_STEPS) -> list[dict]:
    data = game_files(record)[1]
    engine = GameEngine(data, key=record["task_id"], facts=True, accelerate=accelerate)
    try:
        assert engine.accelerated is accelerate
        return list(play(engine, data["walkthrough"], random_steps=random_steps))
    finally:
        engine.close()


def _lockstep(record: dict, random_steps: int) -> None:
    stock, fast = _transcript(record, False, random_steps), _transcript(record, True, random_steps)
    assert sum(r["kind"] == "step" for r in fast) >= random_steps
    assert _first_mismatch(stock, fast) is None, (record["task_id"], _first_mismatch(stock, fast))


def test_lockstep_smallest_room(records: list[dict]) -> None:
    """Stock and accelerated, live, one process, every record of the script (text, commands, facts, plans)."""
    _lockstep(_by_size([r for r in records if r["split"] == "train"])[0], 60)


@pytest.mark.slow
def test_lockstep_largest_room(records: list[dict]) -> None:
    _lockstep(_by_size(records)[-1], RANDOM_STEPS)


def test_reference_digests_cover_the_suite(records: list[dict], reference: dict) -> None:
    assert set(reference) == {r["task_id"] for r in records}


def test_accelerated_matches_reference_in_spawned_processes(records: list[dict], reference: dict) -> None:
    """One eval game per task type, played by the accelerated engine in two spawned processes."""
    sample = {r["task_type"]: r for r in records if r["split"] != "train"}.values()  # one per task type
    _check(suite_digests(sample, accelerate=True, processes=2), reference)


def _check(digests: dict[str, str], reference: dict) -> None:
    wrong = sorted(tid for tid, d in digests.items() if reference[tid] != d)
    assert not wrong, f"{len(wrong)} of {len(digests)} games differ from the stock engine: {wrong[:5]}"


FULL_CHECK = os.environ.get("SKILL_GYM_ALFWORLD_FULL_CHECK") == "1"
full_check = pytest.mark.skipif(
    not FULL_CHECK, reason="every embedded game (about an hour of planner calls): SKILL_GYM_ALFWORLD_FULL_CHECK=1"
)


def _every_nth(records: list[dict], n: int, train: bool) -> list[dict]:
    return [r for r in records if (r["split"] == "train") == train][::n]


@pytest.mark.slow
def test_sampled_eval_games_in_one_process(records: list[dict], reference: dict) -> None:
    """Every 6th eval game in this process, one after another (earlier games' engines and caches around)."""
    _check(suite_digests(_every_nth(records, 6, train=False), accelerate=True, processes=1), reference)


@pytest.mark.slow
def test_sampled_train_games_in_spawned_processes(records: list[dict], reference: dict) -> None:
    """Every 6th train game in two spawned processes."""
    _check(suite_digests(_every_nth(records, 6, train=True), accelerate=True, processes=2), reference)


@pytest.mark.slow
@full_check
def test_every_eval_game_in_one_process(records: list[dict], reference: dict) -> None:
    """The 120 eval games in this process, one after another (earlier games' engines and caches around)."""
    _check(suite_digests(_every_nth(records, 1, train=False), accelerate=True, processes=1), reference)


@pytest.mark.slow
@full_check
def test_every_train_game_in_spawned_processes(records: list[dict], reference: dict) -> None:
    """The 240 train games in two spawned processes (with the eval test above: every embedded game)."""
    _check(suite_digests(_every_nth(records, 1, train=True), accelerate=True, processes=2), reference)


def _vector_run(accelerate: bool, steps: int) -> tuple[list, list]:
    envs = gym.make_vec(
        "Alfworld-v0", num_envs=2, vectorization_mode="async", split="eval_out_of_distribution", accelerate=accelerate
    )
    try:
        obs, _ = envs.reset(seed=3)
        flags = list(envs.get_attr("accelerated"))
        rng, seen = random.Random(0), []
        for _ in range(steps):
            actions = [rng.choice(a.split("\n")) if rng.random() < 0.9 else "dance" for a in obs["admissible_actions"]]
            obs, reward, terminated, truncated, info = envs.step(actions)
            seen.append((list(obs["observation"]), list(obs["admissible_actions"]), list(reward), list(terminated)))
        return flags, seen
    finally:
        envs.close()


@pytest.mark.slow
def test_async_vector_env_workers_run_the_accelerator_and_match_stock() -> None:
    fast_flags, fast = _vector_run(True, 30)
    stock_flags, stock = _vector_run(False, 30)
    assert fast_flags == [True, True] and stock_flags == [False, False]
    assert fast == stock


def test_version_guard_falls_back_to_stock(monkeypatch: pytest.MonkeyPatch, records: list[dict]) -> None:
    real = versions.importlib.metadata.version
    monkeypatch.setattr(
        versions.importlib.metadata, "version", lambda name: "9.9" if name == "textworld" else real(name)
    )
    versions.accelerator_available.cache_clear()
    try:
        assert versions.accelerator_problem() == "textworld 9.9 is installed, the accelerator supports textworld==1.7.0"
        with pytest.warns(RuntimeWarning, match="ALFWorld accelerator disabled"):
            engine = GameEngine(game_files(records[0])[1], accelerate=True)
        assert engine.accelerate and not engine.accelerated
        assert type(engine._pddl).__name__ == "PddlEnv"
        engine.close()
    finally:
        monkeypatch.undo()
        versions.accelerator_available.cache_clear()
    assert versions.accelerator_available()


def test_pool_keeps_stock_and_accelerated_engines_apart(records: list[dict]) -> None:
    record = records[1]
    fast = ENGINE_POOL.acquire(record["task_id"], lambda: game_files(record)[1], accelerate=True)
    ENGINE_POOL.release(fast)
    stock = ENGINE_POOL.acquire(record["task_id"], lambda: game_files(record)[1], accelerate=False)
    assert stock is not fast and not stock.accelerated and fast.accelerated
    ENGINE_POOL.release(stock)
    assert ENGINE_POOL.acquire(record["task_id"], lambda: {}, accelerate=True) is fast
    ENGINE_POOL.release(fast)


def test_argv_is_left_alone(records: list[dict]) -> None:
    before = list(sys.argv)
    engine = GameEngine(game_files(records[2])[1], accelerate=True)
    engine.reset()
    engine.expert_plan()
    engine.step(engine.last.admissible_commands[0])
    engine.close()
    assert sys.argv == before


def test_registry_cap_reloads_the_sas_and_changes_nothing(monkeypatch: pytest.MonkeyPatch, records: list[dict]) -> None:
    record = _by_size(records)[0]
    stock = _transcript(record, False, 20)
    monkeypatch.setattr(state, "MAX_REGISTERED_STATES", 3)
    data = game_files(record)[1]
    engine = GameEngine(data, facts=True, accelerate=True)
    first = list(play(engine, data["walkthrough"], random_steps=20))
    lib = engine._pddl.downward_lib
    assert lib.get_state_id() > 3  # many states registered by now
    engine.reset()
    assert lib.get_state_id() == engine._pddl._loaded.initial_state_id == 0  # reloaded, registry emptied
    again = list(play(engine, data["walkthrough"], random_steps=20))
    engine.close()
    assert _first_mismatch(stock, first) is None and _first_mismatch(stock, again) is None


def test_translation_records_round_trip_and_reject_damage(tmp_path: Path, records: list[dict]) -> None:
    data = game_files(records[0])[1]
    domain, problem = data["pddl_domain"], data["pddl_problem"]
    store = translation.Translations(folder=tmp_path)
    made = store.get(domain, problem, replan=True)
    (path,) = tmp_path.glob("*.json.gz")
    read = translation.Translation.from_record(path.read_bytes(), domain, problem)
    assert (read.task, read.sas, read.replan_sas()) == (made.task, made.sas, made.replan_sas())
    with pytest.raises(ValueError, match="another game"):
        translation.Translation.from_record(path.read_bytes(), domain, problem + " ")
    record = json.loads(gzip.decompress(path.read_bytes()))
    record["payload"] = record["payload"].replace("begin_version", "begin_versioN", 1)
    with pytest.raises(ValueError, match="checksum"):
        translation.Translation.from_record(gzip.compress(json.dumps(record).encode()), domain, problem)
    path.write_bytes(b"\x1f\x8b not gzip")
    fresh = translation.Translations(folder=tmp_path).get(domain, problem)  # damaged record: translated again
    assert fresh.sas == made.sas
    assert translation.Translation.from_record(path.read_bytes(), domain, problem).sas == made.sas  # rewritten


def test_command_analysis_of_the_alfred_grammar(records: list[dict]) -> None:
    _upstream.alfworld()
    from skill_gym.envs.alfworld.accel.documents import DOCUMENTS

    data = game_files(records[0])[1]
    logic = DOCUMENTS.logic(data["pddl_domain"], data["grammar"])
    goto = commands.analyse("go to [{r.name | receptacleatlocation(r:receptacle, lend:location)}]", logic.grammar)
    assert goto.cacheable and goto.names == {"r", "lend"} and goto.predicates == {"receptacleatlocation"}
    assert commands.analyse("open {r}", logic.grammar).names == {"r"}
    assert not commands.analyse("open {r.name.upper()}", logic.grammar).cacheable
    assert not commands.analyse("open {context}", logic.grammar).cacheable
    assert isinstance(logic.grammar, FastGrammar)


@pytest.mark.slow
def test_precompute_command_writes_a_record_per_game(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from skill_gym.cli import main

    monkeypatch.setattr(translation.TRANSLATIONS, "folder", tmp_path)
    assert main(["alfworld", "precompute", "--split", "eval_out_of_distribution", "--no-replan"]) == 0
    games = [r for r in load_suite()["games"] if r["split"] == "eval_out_of_distribution"]
    assert len(list(tmp_path.glob("*.json.gz"))) == len(games)
    data = game_files(games[0])[1]
    record = (
        tmp_path / f"{translation.translation_key(data['pddl_domain'], data['pddl_problem'])}.json.gz"
    ).read_bytes()
    assert not translation.Translation.from_record(record, data["pddl_domain"], data["pddl_problem"]).has_replan_sas
