"""A leaderboard run killed mid-way (SIGKILL, a real subprocess) continues where it stopped and replays nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from skill_gym.envs.keyword import TASKS

ROOT = Path(__file__).resolve().parent.parent
ANSWERS = {t["task_id"]: t["answer"] for t in TASKS}


class SlowAgent:
    """Right answers, slowly; logs each episode it begins to ``$LEADERBOARD_LOG``. With ``$LEADERBOARD_STALL_AT``
    it never begins the episode after that many (so the run is still going when the test kills it)."""

    def reset(self, observation, info):
        path = Path(os.environ["LEADERBOARD_LOG"])
        stall_at = int(os.environ.get("LEADERBOARD_STALL_AT", "0"))
        while stall_at and path.exists() and len(path.read_text().split()) >= stall_at:
            time.sleep(1)
        with path.open("a") as log:
            log.write(f"{info['task_id']}\n")

    def act(self, observation, info):
        time.sleep(0.25)
        return ANSWERS[info["task_id"]]


def _command(out: Path) -> list[str]:
    return [sys.executable, "-m", "skill_gym.cli", "leaderboard", "run", "--agent",
            "python:tests.test_leaderboard_resume:SlowAgent", "--suite", "keyword", "--episodes", "10",
            "--num-envs", "1", "--out", str(out), "--no-progress", "--step-timeout", "600"]  # fmt: skip


def test_killed_run_resumes_without_replaying_finished_episodes(tmp_path):
    out, log = tmp_path / "board", tmp_path / "episodes.log"
    env = {**os.environ, "LEADERBOARD_LOG": str(log)}
    process = subprocess.Popen(_command(out), cwd=ROOT, env={**env, "LEADERBOARD_STALL_AT": "5"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list(out.rglob("episode*.jsonl"))) < 3:
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("episode*.jsonl")}
    assert 3 <= len(before) <= 5, "the run was not killed mid-way"
    started_before = log.read_text().split()

    done = subprocess.run(_command(out), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = sorted(out.rglob("episode*.jsonl"))
    assert len(after) == 10
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in before.items())  # finished episodes untouched
    started = log.read_text().split()
    replayed = started[len(started_before) :]
    finished_before = {p.read_text().splitlines()[0] for p in before}
    assert not any(f'"task_id": "{task}"' in header for task in replayed for header in finished_before)
    assert len(replayed) == 10 - len(before)
    assert f"played {10 - len(before)} episodes (0 failed), {len(before)} already done" in done.stdout
