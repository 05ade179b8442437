"""The leaderboard end to end on real envs: every kind of plug-in agent, malformed agents, tables from transcripts.

The agent classes below are loaded by spec (``python:tests.test_leaderboard:NAME``), as a third party's would be.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import ClassVar

import pytest

from agents.backends.hf import TransformersBackend
from agents.evaluation import CallableBackend
from agents.serve import ChatServer
from benchmarks.leaderboard.protocol import admissible_actions
from benchmarks.leaderboard.report import write_report
from benchmarks.leaderboard.runner import RunConfig, run_leaderboard
from benchmarks.leaderboard.specs import AgentEntry, parse_agents
from benchmarks.leaderboard.suites import parse_suite
from benchmarks.leaderboard.tables import build_tables
from benchmarks.leaderboard.transcripts import iter_transcripts
from skill_gym.envs.keyword import TASKS
from tests.tiny_policy import tiny_policy

ROOT = Path(__file__).resolve().parent.parent
ANSWERS = {t["task_id"]: t["answer"] for t in TASKS}
KEYWORD = parse_suite("keyword")


# -- third-party agents, as plain classes and functions -------------------------------------------------------


class Recorder:
    """Answers right, and records that reset / observe are called around its steps."""

    log: ClassVar[list[str]] = []

    def reset(self, observation, info):
        type(self).log.append(f"reset {info['task_id']}")

    def act(self, observation, info):
        type(self).log.append(f"act {info['task_id']}")
        return ANSWERS[info["task_id"]]

    def observe(self, action, observation, reward, terminated, truncated, info):
        type(self).log.append(f"observe {info['task_id']} {reward} {terminated}")


def first_admissible(observation, info):
    return admissible_actions(observation)[0]


class SkillReader:
    """Plays right only when the env put skills in context (the library agent's skill env)."""

    def act(self, observation, info):
        assert observation["skills"].strip(), "no skill in context"
        return ANSWERS[info["task_id"]]


class Raises:
    def act(self, observation, info):
        raise RuntimeError("agent bug")


class ReturnsNumber:
    def act(self, observation, info):
        return 42


class Hangs:
    def act(self, observation, info):
        time.sleep(60)
        return "never"


class BrokenInit:
    def __init__(self):
        raise ValueError("cannot start")

    def act(self, observation, info):
        return ""


def _run(out: Path, agents: list[AgentEntry], episodes: int = 6, seeds: int = 1, **config) -> None:
    config = {"num_envs": 3, "progress": False, **config}
    run_leaderboard(agents, [config.pop("suite", KEYWORD)], RunConfig(out, episodes=episodes, seeds=seeds, **config))


def _results(out: Path) -> dict[str, list[dict]]:
    by_agent = defaultdict(list)
    for transcript, problem in iter_transcripts(out):
        assert transcript is not None, problem
        by_agent[transcript["header"]["agent"]].append(transcript)
    return by_agent


# -- the adapters -------------------------------------------------------------------------------------------


def test_python_agents_by_spec_a_class_and_a_function(tmp_path):
    Recorder.log = []
    _run(tmp_path, parse_agents(["python:tests.test_leaderboard:Recorder",
                                 "python:tests.test_leaderboard:first_admissible"]), episodes=4)  # fmt: skip
    results = _results(tmp_path)
    recorder = results["python:tests.test_leaderboard:Recorder"]
    assert len(recorder) == 4 and all(t["result"]["won"] for t in recorder)
    first = [line for line in Recorder.log if "opposite/hot" in line]
    assert first == ["reset opposite/hot", "act opposite/hot", "observe opposite/hot 1.0 True"]
    choices = {t["task_id"]: t["choices"] for t in TASKS}
    for transcript in results["python:tests.test_leaderboard:first_admissible"]:
        assert transcript["turns"][0]["action"] == choices[transcript["header"]["task_id"]][0]
        assert not transcript["result"]["failed"]


class Counter:
    """Right answers; counts the episodes it began, one instance per env."""

    def __init__(self) -> None:
        self.episodes: list[str] = []

    def reset(self, observation, info):
        self.episodes.append(info["task_id"])

    def act(self, observation, info):
        assert len(self.episodes) == len(set(self.episodes)), "another env's episode began on this instance"
        return ANSWERS[self.episodes[-1]]


COUNTER = Counter()


def test_an_agent_object_is_copied_for_each_env(tmp_path):
    _run(tmp_path, parse_agents(["python:tests.test_leaderboard:COUNTER"]), episodes=6, num_envs=3)
    [transcripts] = _results(tmp_path).values()
    assert len(transcripts) == 6 and all(t["result"]["won"] for t in transcripts)
    assert COUNTER.episodes == []  # the object given is left as it was


def test_random_and_expert_on_keyword_and_alfworld(tmp_path):
    _run(tmp_path, parse_agents(["random", "expert"]), episodes=6)
    _run(tmp_path, parse_agents(["random", "expert"]), episodes=2, suite=parse_suite("alfworld"), num_envs=2,
         env_kwargs={"max_steps": 40})  # fmt: skip
    tables = build_tables(tmp_path, reported=[])["suites"]
    rows = {r["agent"]: r["cells"] for r in tables["keyword"]["rows"]}
    assert rows["expert"]["All"]["mean"] == 100.0 and rows["expert"]["Steps"]["mean"] == 1.0
    assert rows["random"]["Steps"]["mean"] >= 1.0
    alfworld = {r["agent"]: r["cells"] for r in tables["alfworld:eval_out_of_distribution"]["rows"]}
    assert alfworld["expert"]["All"]["mean"] == 100.0  # alfworld's hand-coded expert through info
    assert alfworld["random"]["Steps"]["mean"] > alfworld["expert"]["Steps"]["mean"]
    # the same seed plays the random agent the same way (episode-keyed seeding), on a fresh folder too
    again = tmp_path / "again"
    _run(again, parse_agents(["random"]), episodes=6, num_envs=2)
    actions = {p: [[t["action"] for t in x["turns"]] for x in v] for p, v in _results(again).items()}
    assert actions["random"] == [[t["action"] for t in x["turns"]] for x in _results(tmp_path)["random"]
                                 if x["header"]["suite"] == "keyword"]  # fmt: skip


def scripted_answer(prompt) -> str:
    """A scripted chat model's answer: reads the Keyword task from the prompt, answers in the env's format."""
    text = prompt[-1]["content"]
    kinds = (
        text.replace("opposite of", "opposite").replace("plural of", "plural").replace("Answer with the word", "echo")
    )
    task = next(t for t in TASKS if f"the word '{t['word']}'" in text and t["task_type"] in kinds)
    return f"<think>easy</think><action>{task['answer']}</action>"


def test_openai_endpoint_agent_against_the_real_loopback_server(tmp_path, monkeypatch):
    def rule(prompts):
        return [scripted_answer(p) for p in prompts]

    model, tokenizer = tiny_policy(seed=0)
    monkeypatch.setenv("LEADERBOARD_TEST_KEY", "sk-test")
    with ChatServer(CallableBackend(rule), model_name="rule") as scripted, \
            ChatServer(TransformersBackend(model, tokenizer), model_name="tiny") as tiny:  # fmt: skip
        agents = [AgentEntry(f"openai:rule@{scripted.url}", name="rule", api_key_env="LEADERBOARD_TEST_KEY"),
                  AgentEntry(f"openai:tiny@{tiny.url}", name="tiny", max_new_tokens=4)]  # fmt: skip
        _run(tmp_path, agents, episodes=6)
    results = _results(tmp_path)
    assert all(t["result"]["won"] for t in results["rule"])
    turn = results["rule"][0]["turns"][0]
    assert turn["prompt"][0]["role"] == "user" and "<action>" in turn["response"] and turn["format_valid"]
    tiny_turns = [t for x in results["tiny"] for t in x["turns"]]
    assert tiny_turns and all(t["prompt_tokens"] > 10 and 1 <= t["response_tokens"] <= 4 for t in tiny_turns)
    assert not any(x["result"]["failed"] for x in results["tiny"])


def test_a_request_the_endpoint_refuses_fails_only_its_own_episode(tmp_path):
    def rule(prompts):  # a chat model that answers right, except that it fails on any plural task
        if any("plural of" in p[-1]["content"] for p in prompts):
            raise RuntimeError("cannot do plurals")
        return [scripted_answer(p) for p in prompts]

    with ChatServer(CallableBackend(rule), model_name="rule") as server:  # answers 500 to a plural prompt
        _run(tmp_path, [AgentEntry(f"openai:rule@{server.url}", name="rule", max_retries=0)], episodes=9)
    [transcripts] = _results(tmp_path).values()
    failed = {t["header"]["task_type"] == "plural": t["result"]["failed"] for t in transcripts}
    assert failed == {True: True, False: False}  # both kinds were played; only the plural episodes failed
    assert all(t["result"]["won"] for t in transcripts if t["header"]["task_type"] != "plural")


def test_our_policy_from_a_model_folder_through_the_transformers_backend(tmp_path):
    model, tokenizer = tiny_policy(seed=2)
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    _run(tmp_path / "run", [AgentEntry(f"hf:{folder}", name="tiny-hf", max_new_tokens=3)], episodes=3)
    [*transcripts] = _results(tmp_path / "run")["tiny-hf"]
    assert len(transcripts) == 3
    assert all(t["prompt_tokens"] > 10 and t["response_tokens"] >= 1 for x in transcripts for t in x["turns"])


def test_library_agent_plays_the_skill_env_with_similarity_selected_skills(tmp_path):
    _run(tmp_path, [AgentEntry("library:python:tests.test_leaderboard:SkillReader", name="library")], episodes=3)
    [transcripts] = _results(tmp_path).values()
    assert [t["header"]["env_id"] for t in transcripts] == ["SkillKeyword-v0"] * 3
    assert all(t["result"]["won"] for t in transcripts), [t["result"]["error"] for t in transcripts]
    [row] = build_tables(tmp_path, reported=[])["suites"]["keyword"]["rows"]
    assert row["cells"]["Library"]["mean"] >= 1


# -- malformed agents --------------------------------------------------------------------------------------


def test_malformed_agents_fail_their_episodes_and_the_run_goes_on(tmp_path):
    names = ["Raises", "ReturnsNumber", "Hangs", "BrokenInit", "Recorder"]
    # The run's 0.5 s step timeout reaches Hangs; the others set their own 30 s, which a thread stalled on a
    # loaded machine (a garbage collection, starved cores) never exceeds.
    agents = [AgentEntry(f"python:tests.test_leaderboard:{n}", name=n, step_timeout=None if n == "Hangs" else 30.0)
              for n in names]  # fmt: skip
    started = time.perf_counter()
    _run(tmp_path, agents, episodes=3, step_timeout=0.5)
    assert time.perf_counter() - started < 60  # a hung agent costs its timeout, not the run
    results = _results(tmp_path)
    assert sorted(results) == sorted(names) and all(len(v) == 3 for v in results.values())
    errors = {n: {t["result"]["error"] for t in results[n]} for n in names}
    assert all(t["result"]["failed"] and not t["result"]["won"] for n in names[:4] for t in results[n])
    assert errors["Raises"] == {"raised RuntimeError: agent bug"}
    assert errors["ReturnsNumber"] == {"act() returned int, not a string"}
    assert errors["Hangs"] == {"no answer within the per-step timeout of 0.5 s"}
    assert all("could not make the agent: raised ValueError: cannot start" in e for e in errors["BrokenInit"])
    assert all(t["result"]["won"] for t in results["Recorder"])
    [row] = [r for r in build_tables(tmp_path, reported=[])["suites"]["keyword"]["rows"] if r["agent"] == "Hangs"]
    assert row["failed"] == 3 and row["cells"]["All"]["mean"] == 0.0


@pytest.mark.parametrize(
    ("values", "message"),
    [(["nonsense"], "unknown agent spec"), (["python:nomodule_xyz:f"], "cannot load the agent"),
     (["random", "random"], "unique")],
)  # fmt: skip
def test_bad_specs_get_clear_errors(tmp_path, values, message):
    with pytest.raises(ValueError, match=message):
        entries = parse_agents(values)
        for entry in entries:
            from benchmarks.leaderboard.specs import LoadedAgent

            LoadedAgent(entry).player(KEYWORD, 0, None)


def test_yaml_agents_and_bad_yaml(tmp_path):
    good = tmp_path / "agents.yaml"
    good.write_text("agents:\n  - spec: random\n    name: rnd\n  - expert\n"
                    "  - {spec: 'openai:m@http://127.0.0.1:1/v1', temperature: 0.4, max_new_tokens: 64}\n")  # fmt: skip
    entries = parse_agents([str(good)])
    assert [(e.name, e.spec) for e in entries][:2] == [("rnd", "random"), ("expert", "expert")]
    assert entries[2].temperature == 0.4 and entries[2].max_new_tokens == 64
    for text, message in [("agents: [1, 2", "cannot read"), ("agents: {}", "expected 'agents:'"),
                          ("agents:\n  - {spec: random, colour: red}", "only the keys"),
                          ("agents:\n  - {spec: random, temperature: hot}", "temperature"),
                          ("agents:\n  - {spec: random, step_timeout: '30'}", "step_timeout must be a positive"),
                          ("agents:\n  - {spec: random, history_length: two}", "history_length"),
                          ("agents:\n  - {spec: random, max_retries: -1}", "max_retries")]:  # fmt: skip
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(ValueError, match=message):
            parse_agents([str(bad)])


def test_an_unreachable_endpoint_fails_its_episodes_not_the_run(tmp_path):
    agents = [
        AgentEntry("openai:m@http://127.0.0.1:9/v1", name="down", step_timeout=1.0, max_retries=1),
        AgentEntry("expert"),
    ]
    _run(tmp_path, agents, episodes=2)
    results = _results(tmp_path)
    assert all(t["result"]["failed"] and "EndpointError" in t["result"]["error"] for t in results["down"])
    assert all(t["result"]["won"] for t in results["expert"])


# -- tables from transcripts -------------------------------------------------------------------------------


def test_every_table_number_is_recomputed_from_the_transcripts(tmp_path):
    _run(tmp_path, parse_agents(["random", "expert"]), episodes=9, seeds=3, num_envs=4)
    written = write_report(tmp_path)
    reported = json.loads(written["json"].read_text())["suites"]["keyword"]["rows"]
    # recompute by hand from the raw JSONL files, with nothing from the leaderboard package
    raw: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for path in (tmp_path / "transcripts").rglob("*.jsonl"):
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        header, result = lines[0], lines[-1]
        turns = [x for x in lines if x["type"] == "turn"]
        raw[header["agent"]][header["seed"]].append({
            "type": header["task_type"], "won": result["won"], "steps": len(turns), "seconds": result["seconds"],
            "tokens": sum(t["prompt_tokens"] + t["response_tokens"] for t in turns)})  # fmt: skip
    ours = {r["agent"]: r for r in reported if r["source"] == "ours"}
    assert set(ours) == {"random", "expert"}
    for agent, seeds in raw.items():
        assert ours[agent]["episodes"] == 27 and ours[agent]["seeds"] == 3
        expected = {
            "All": [100 * statistics.fmean(e["won"] for e in eps) for eps in seeds.values()],
            "Plural": [
                100 * statistics.fmean(e["won"] for e in eps if e["type"] == "plural") for eps in seeds.values()
            ],
            "Steps": [statistics.fmean(e["steps"] for e in eps) for eps in seeds.values()],
            "Wall s/ep": [statistics.fmean(e["seconds"] for e in eps) for eps in seeds.values()],
            "Tokens/ep": [statistics.fmean(e["tokens"] for e in eps) for eps in seeds.values()],
        }
        for column, values in expected.items():
            cell = ours[agent]["cells"][column]
            assert math.isclose(cell["mean"], statistics.fmean(values), abs_tol=1e-9), (agent, column)
            assert math.isclose(cell["std"], statistics.stdev(values), abs_tol=1e-9), (agent, column)
    markdown = written["markdown"].read_text()
    assert "| expert | ours | expert |" in markdown and "reported" not in markdown.split("### keyword")[1]
    csv_lines = written["csv"].read_text().splitlines()
    assert csv_lines[0].startswith("suite,agent,source") and any(",expert,ours,expert,,All,100," in x
                                                                  for x in csv_lines)  # fmt: skip


def test_reported_rows_stand_beside_ours_with_size_and_source(tmp_path):
    _run(tmp_path, parse_agents(["expert"]), episodes=1, suite=parse_suite("alfworld"), num_envs=1)
    rows = build_tables(tmp_path)["suites"]["alfworld:eval_out_of_distribution"]["rows"]
    skill1 = next(r for r in rows if r["agent"] == "Skill1")
    assert skill1["source"].startswith("reported: Skill1") and skill1["size"] == "7B"
    assert skill1["cells"]["All"]["mean"] == 97.5 and skill1["cells"]["Pick"]["mean"] == 100.0


def test_corrupt_transcripts_are_skipped_and_replayed(tmp_path):
    _run(tmp_path, parse_agents(["expert"]), episodes=2)
    [first, second] = sorted((tmp_path / "transcripts").rglob("*.jsonl"))
    first.write_text('{"type": "episode"}\n{"garbage')
    tables = build_tables(tmp_path, reported=[])
    assert tables["skipped"] and tables["suites"]["keyword"]["rows"][0]["episodes"] == 1
    _run(tmp_path, parse_agents(["expert"]), episodes=2)  # the damaged one is played again
    assert build_tables(tmp_path, reported=[])["suites"]["keyword"]["rows"][0]["episodes"] == 2
    lines = second.read_text().splitlines()
    header = json.loads(lines[0])
    second.write_text("\n".join([json.dumps({**header, "seed": None}), *lines[1:]]) + "\n")  # a field's type wrong
    tables = build_tables(tmp_path, reported=[])
    assert tables["suites"]["keyword"]["rows"][0]["episodes"] == 1
    assert any("malformed (TypeError" in problem and "seed None" in problem for problem in tables["skipped"])


def test_cli_run_and_show(tmp_path):
    out = tmp_path / "board"
    command = [sys.executable, "-m", "skill_gym.cli", "leaderboard"]
    done = subprocess.run([*command, "run", "--agent", "expert", "--agent", "random", "--suite", "keyword",
                           "--episodes", "3", "--out", str(out), "--no-progress"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "| expert | ours | expert |" in done.stdout and f"{out.resolve()}/index.html" in done.stdout
    shown = subprocess.run([*command, "show", "--out", str(out), "--format", "csv"], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert shown.returncode == 0 and "keyword,expert,ours,expert,,All,100," in shown.stdout
    missing = subprocess.run([*command, "show", "--out", str(tmp_path / "none")], cwd=ROOT, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
    assert missing.returncode == 2 and "no leaderboard run" in missing.stderr and "Traceback" not in missing.stderr


def test_our_policy_from_a_training_checkpoint(tmp_path):
    """``hf:RUN_DIR`` loads the run's base model and its latest LoRA adapter: the trained policy, not the base."""
    import torch

    from agents.grpo.config import GRPOConfig
    from agents.grpo.trainer import GRPOTrainer
    from benchmarks.leaderboard.specs import load_policy_or_checkpoint

    model, tokenizer = tiny_policy(seed=4)
    folder = tmp_path / "base"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    config = GRPOConfig(env_id="Keyword-v0", run_dir=str(tmp_path / "run"), model=str(folder), lora_rank=4,
                        lora_alpha=8, total_steps=1, tasks_per_step=2, group_size=2, max_new_tokens=3,
                        learning_rate=0.05, save_every=1, progress=False, env_kwargs={"answer_format": "plain"})  # fmt: skip
    trainer = GRPOTrainer(config)
    trainer.train()
    trained = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" in n}
    trainer.close()
    loaded, _ = load_policy_or_checkpoint(str(tmp_path / "run"))
    weights = {n: p for n, p in loaded.named_parameters() if "lora_" in n}
    assert trained and set(trained) == set(weights)
    assert all(torch.equal(trained[n], weights[n]) for n in trained)
    assert any(n.endswith("lora_B.default.weight") and weights[n].abs().sum() > 0 for n in weights)  # it trained
    _run(tmp_path / "board", [AgentEntry(f"hf:{tmp_path / 'run'}", name="grpo-step1", max_new_tokens=3)], episodes=2)
    assert len(_results(tmp_path / "board")["grpo-step1"]) == 2


def test_webshop_and_searchqa_with_their_oracles_and_random_baselines(tmp_path):
    suites = [parse_suite("webshop"), parse_suite("searchqa")]
    run_leaderboard(parse_agents(["expert", "random"]), suites,
                    RunConfig(tmp_path, episodes=2, num_envs=1, progress=False))  # fmt: skip
    tables = build_tables(tmp_path)["suites"]
    webshop = {r["agent"]: r for r in tables["webshop:test"]["rows"]}
    assert tables["webshop:test"]["columns"][:2] == ["Score", "Success"]
    assert (
        webshop["expert"]["cells"]["Success"]["mean"] == 100.0 and webshop["expert"]["cells"]["Score"]["mean"] == 100.0
    )
    assert webshop["random"]["cells"]["Steps"]["mean"] > 0 and webshop["random"]["failed"] == 0
    searchqa = {r["agent"]: r for r in tables["searchqa:test"]["rows"]}
    assert tables["searchqa:test"]["columns"][:5] == ["Direct", "Attribute", "Multi-hop", "Comparison", "Avg"]
    assert searchqa["expert"]["cells"]["Avg"]["mean"] == 100.0 and searchqa["random"]["failed"] == 0
    assert searchqa["SKILL0"]["source"].startswith("reported")
