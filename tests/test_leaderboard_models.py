"""The leaderboard with the real default policy, SmolLM2-135M-Instruct (CPU): as itself and as the library agent."""

from __future__ import annotations

import pytest

from benchmarks.leaderboard.runner import RunConfig, run_leaderboard
from benchmarks.leaderboard.specs import AgentEntry
from benchmarks.leaderboard.suites import parse_suite
from benchmarks.leaderboard.tables import build_tables
from benchmarks.leaderboard.transcripts import iter_transcripts


@pytest.mark.slow
def test_smollm2_plain_and_with_the_library_on_alfworld(tmp_path):
    agents = [AgentEntry("smollm2", name="smollm2", max_new_tokens=24),
              AgentEntry("library:smollm2", name="smollm2+library", max_new_tokens=24)]  # fmt: skip
    summary = run_leaderboard(
        agents,
        [parse_suite("alfworld")],
        RunConfig(tmp_path, episodes=2, num_envs=2, progress=False, env_kwargs={"max_steps": 2}),
    )
    assert summary.errors == [] and summary.played == 4 and summary.failed == 0
    transcripts = {}
    for transcript, problem in iter_transcripts(tmp_path):
        assert transcript is not None, problem
        transcripts.setdefault(transcript["header"]["agent"], []).append(transcript)
    for agent, episodes in transcripts.items():
        turns = [t for e in episodes for t in e["turns"]]
        assert len(turns) == 4, agent  # two steps each
        assert all(t["prompt_tokens"] > 100 and 1 <= t["response_tokens"] <= 24 and t["response"] for t in turns)
    plain = transcripts["smollm2"][0]["turns"][0]["prompt"][-1]["content"]
    with_library = transcripts["smollm2+library"][0]["turns"][0]["prompt"][-1]["content"]
    assert "Strategy:" in with_library and "Strategy:" not in plain  # a starter skill selected by similarity
    assert transcripts["smollm2+library"][0]["header"]["env_id"] == "SkillAlfworld-v0"
    rows = {
        r["agent"]: r
        for r in build_tables(tmp_path, reported=[])["suites"]["alfworld:eval_out_of_distribution"]["rows"]
    }
    assert rows["smollm2+library"]["cells"]["Library"]["mean"] >= 5 and rows["smollm2"]["cells"]["Library"]["mean"] == 0
    assert rows["smollm2"]["cells"]["Tokens/ep"]["mean"] > 200
