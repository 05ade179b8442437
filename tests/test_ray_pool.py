"""RayVectorEnv on a real local Ray: the vector API against SyncVectorEnv, ready results without waiting on a
blocked env, a worker killed with SIGKILL and with ``ray.kill``, a skill library shared by two worker processes,
bad input, and GRPO rollouts and evaluation over the pool."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import AlreadyPendingCallError, ClosedEnvironmentError, NoAsyncCallError

import skill_gym
from skill_gym.library import SkillLibrary
from skill_gym.vector import RayVectorEnv
from tests.ray_actors import kill_until_dead

ROOT = Path(__file__).resolve().parent.parent
GOOD_SKILL = '{"description": "Answer with the word \'apple\'.", "strategy": "Answer with the word itself."}'


class WaitForFile(gym.Wrapper):
    """An env the test can hold: the action ``"wait <path> <action>"`` blocks until ``path`` exists."""

    def step(self, action):
        if action.startswith("wait "):
            _, path, action = action.split(" ", 2)
            while not os.path.exists(path):
                time.sleep(0.01)
        return self.env.step(action)


def _assert_same(a, b) -> None:
    """Equal observations / rewards / infos, through tuples, dicts and NumPy arrays."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, tuple) and a and not isinstance(a[0], str):  # a step's or a reset's results
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("autoreset_mode", ["NextStep", "SameStep", "Disabled"])
def test_steps_equal_sync_vector_env(ray_session, autoreset_mode):
    sync = gym.make_vec("Keyword-v0", 5, vectorization_mode="sync", vector_kwargs={"autoreset_mode": autoreset_mode})
    pool = skill_gym.make_vec(
        "Keyword-v0", 5, vectorization_mode="ray", vector_kwargs={"num_workers": 2, "autoreset_mode": autoreset_mode}
    )
    assert isinstance(pool, RayVectorEnv) and pool.worker_env_ids == [[0, 1, 2], [3, 4]]
    assert len(set(pool.worker_pids())) == 2
    assert pool.single_observation_space == sync.single_observation_space
    assert pool.observation_space == sync.observation_space and pool.action_space == sync.action_space
    assert pool.metadata["autoreset_mode"] == sync.metadata["autoreset_mode"]
    first = sync.reset(seed=7)
    _assert_same(pool.reset(seed=7), first)
    obs, rng, ended = first[0], random.Random(0), 0
    for _ in range(6):
        actions = [rng.choice(text.split("\n")) for text in obs["admissible_actions"]]
        expected = sync.step(actions)
        _assert_same(pool.step(actions), expected)
        obs, done = expected[0], expected[2] | expected[3]
        ended += int(done.sum())
        if autoreset_mode == "Disabled" and done.any():  # the caller resets
            expected = sync.reset(options={"reset_mask": done})
            _assert_same(pool.reset(options={"reset_mask": done}), expected)
            obs = expected[0]
    assert ended >= 3  # episodes ended, so the autoreset mode was exercised
    pool.set_attr("pending_options", [{"task_id": "plural/box"}, None, None, None, {"task_id": "echo/tiger"}])
    _, infos = pool.reset(seed=0)
    assert infos["task_id"][0] == "plural/box" and infos["task_id"][4] == "echo/tiger"
    assert pool.get_attr("max_steps") == (2,) * 5 and len(pool.call("render")) == 5
    sync.close()
    pool.close()


def test_step_wait_returns_ready_envs_without_waiting_for_a_blocked_one(ray_session, tmp_path):
    gate = tmp_path / "gate"
    pool = skill_gym.make_vec("Keyword-v0", 3, vectorization_mode="ray", wrappers=[WaitForFile],
                              vector_kwargs={"envs_per_worker": 1})  # fmt: skip
    pool.reset(seed=0, options={"task_id": "echo/apple"})
    pool.step_async([f"wait {gate} apple", "apple"], env_ids=[0, 1])  # env 0 blocks until the gate exists
    obs, rewards, terminated, truncated, infos = pool.step_wait(min_ready=1)
    assert infos["env_id"].tolist() == [1] and rewards.tolist() == [1.0] and terminated.tolist() == [True]
    assert obs["observation"] == ("Correct.",)
    pool.step_async(["river"], env_ids=[2])  # another env steps while env 0 is still busy
    assert pool.step_wait(min_ready=1)[4]["env_id"].tolist() == [2]
    with pytest.raises(AlreadyPendingCallError, match=r"envs \[0\] are still stepping"):
        pool.step_async(["apple"], env_ids=[0])
    with pytest.raises(AlreadyPendingCallError, match="call step_wait"):
        pool.step(["apple"] * 3)
    with pytest.raises(TimeoutError, match="0 of 1 step results ready"):
        pool.step_wait(timeout=0.2)
    gate.touch()
    obs, rewards, terminated, truncated, infos = pool.step_wait()
    assert infos["env_id"].tolist() == [0] and rewards.tolist() == [1.0]
    with pytest.raises(NoAsyncCallError):
        pool.step_wait()
    assert pool.step(["apple"] * 3)[1].tolist() == [0.0, 0.0, 1.0]  # NEXT_STEP: envs 0, 1 had ended and reset
    pool.close()


def test_a_killed_worker_is_restarted_and_its_episodes_truncated(ray_session):
    pool = skill_gym.make_vec("Keyword-v0", 4, vectorization_mode="ray", vector_kwargs={"num_workers": 2},
                              max_steps=5)  # fmt: skip
    pool.reset(seed=0, options={"task_id": "echo/apple"})
    pool.step(["river"] * 4)  # episodes under way in every env
    old_pids = pool.worker_pids()
    os.kill(old_pids[0], signal.SIGKILL)  # worker 0 holds envs 0 and 1
    pool.step_async(["river", "river"], env_ids=[0, 2])
    obs, rewards, terminated, truncated, infos = pool.step_wait()
    assert infos["env_id"].tolist() == [0, 2] and truncated.tolist() == [True, False]
    assert infos["worker_restarted"].tolist() == [True, False] and "env worker 0 died" in infos["worker_error"][0]
    assert obs["observation"][0] == "Nothing happens. (Invalid action: not one of the admissible actions.)"  # last seen
    new_pids = pool.worker_pids()
    assert new_pids[0] != old_pids[0] and new_pids[1] == old_pids[1]
    pool.step_async(["river"], env_ids=[1])  # env 1 was idle when its worker died: its episode is gone too
    assert pool.step_wait()[3].tolist() == [True]
    obs, rewards, terminated, truncated, infos = pool.step(["apple"] * 4)
    assert rewards.tolist() == [0.0, 0.0, 1.0, 1.0]  # envs 0, 1 start anew (NEXT_STEP); 2, 3 go on
    assert infos["task_id"][2:].tolist() == ["echo/apple"] * 2 and not truncated.any()
    kill_until_dead(pool._workers[1])  # the other way to lose a worker
    assert pool.get_attr("max_steps") == (5,) * 4  # a call restarts the worker and asks again
    assert pool.step(["apple"] * 4)[3].tolist() == [False, False, False, False]  # episodes 2, 3 had ended: none lost
    pool.reset(seed=1, options={"task_id": "echo/apple"})
    assert pool.step(["apple"] * 4)[2].all()  # every episode ends
    old_pids = pool.worker_pids()
    os.kill(old_pids[0], signal.SIGKILL)  # the next step dies with it: envs 0, 1 lost nothing, new worker resets
    obs, rewards, terminated, truncated, infos = pool.step(["apple"] * 4)
    assert rewards.tolist() == [0.0] * 4 and not terminated.any() and not truncated.any()
    assert "worker_restarted" not in infos and pool.worker_pids()[0] != old_pids[0]
    assert all(text.endswith("Choose one of the admissible actions.") for text in obs["observation"])
    pool.close()


def test_autoreset_disabled_an_ended_episode_stepped_after_its_worker_died(ray_session):
    pool = skill_gym.make_vec("Keyword-v0", 2, vectorization_mode="ray",
                              vector_kwargs={"num_workers": 2, "autoreset_mode": "Disabled"})  # fmt: skip
    pool.reset(seed=0, options={"task_id": "echo/apple"})
    assert pool.step(["apple"] * 2)[2].all()  # both episodes end; the caller must reset them
    os.kill(pool.worker_pids()[0], signal.SIGKILL)
    pool.step_async(["apple"], env_ids=[0])  # a step of an ended episode: the new worker's env was never reset
    with pytest.raises(Exception, match="reset"):
        pool.step_wait()
    _, infos = pool.reset(seed=1, options={"task_id": "echo/apple"})  # env 0 is not left stepping
    assert infos["task_id"].tolist() == ["echo/apple"] * 2
    assert pool.step(["apple"] * 2)[1].tolist() == [1.0, 1.0]
    pool.close()


@pytest.mark.slow  # each worker loads torch and the MiniLM encoder: ~30 s on 2 busy cores
def test_skill_envs_in_two_workers_share_one_library(ray_session, tmp_path, encoder):
    path = str(tmp_path / "shared.sqlite")
    SkillLibrary(path, encoder=encoder).close()
    pool = skill_gym.make_vec("SkillKeyword-v0", 2, vectorization_mode="ray", library=path, selection="similarity",
                              vector_kwargs={"envs_per_worker": 1})  # fmt: skip
    pids = pool.worker_pids()
    assert pids[0] != pids[1] and os.getpid() not in pids
    _, infos = pool.reset(seed=0, options={"task_id": "echo/apple"})
    assert infos["skill"]["retrieved_ids"].tolist() == [[], []]  # an empty library
    for action in ("apple", GOOD_SKILL):  # worker 0 solves its task and writes a skill
        pool.step_async([action], env_ids=[0])
        *_, infos = pool.step_wait()
    admitted = infos["skill"]["admission"]
    assert admitted["status"].tolist() == ["added"]
    obs, infos = pool.reset(seed=1, options={"task_id": "echo/apple", "reset_mask": np.array([False, True])})
    assert infos["skill"]["chosen_id"][1] == admitted["skill_id"][0]  # worker 1 retrieves it
    assert "Answer with the word itself." in obs["skills"][1]
    pool.close()
    with SkillLibrary(path) as lib:
        assert [s.source for s in lib.skills()] == ["distilled"]


def test_bad_input_gets_clear_errors(ray_session):
    with pytest.raises(gym.error.NameNotFound, match="Nope"):
        skill_gym.make_vec("Nope-v0", 2, vectorization_mode="ray")
    with pytest.raises(ValueError, match="num_workers=3 is more than num_envs=2"):
        skill_gym.make_vec("Keyword-v0", 2, vectorization_mode="ray", vector_kwargs={"num_workers": 3})
    with pytest.raises(ValueError, match="envs_per_worker must be a positive integer"):
        skill_gym.make_vec("Keyword-v0", 2, vectorization_mode="ray", vector_kwargs={"envs_per_worker": 0})
    pool = skill_gym.make_vec("Keyword-v0", 2, vectorization_mode="ray")
    pool.reset(seed=0)
    with pytest.raises(ValueError, match="got 3 actions for 2 envs"):
        pool.step(["a", "b", "c"])
    with pytest.raises(TypeError, match="one action per env"):
        pool.step("ab")
    with pytest.raises(ValueError, match=r"unknown env ids \[2, -1\]: the pool has envs 0..1"):
        pool.step_async(["a", "b"], env_ids=[2, -1])
    with pytest.raises(ValueError, match="got 1 seeds for 2 envs"):
        pool.reset(seed=[0])
    with pytest.raises(ValueError, match="unknown task_id 'nope'"):  # an env's own error, raised in its worker
        pool.reset(options={"task_id": "nope"})
    with pytest.raises(ValueError, match="got 3 values for 2 envs"):
        pool.set_attr("pending_options", [None] * 3)
    with pytest.raises(NoAsyncCallError):
        pool.step_wait()
    obs, rewards, *_ = pool.step(["nonsense", 42])  # bad actions are the env's business: an invalid-action step
    assert "Invalid action" in obs["observation"][1]
    pool.close()
    pool.close()  # twice is fine
    for use in (lambda: pool.step(["a", "b"]), lambda: pool.reset(), lambda: pool.get_attr("max_steps")):
        with pytest.raises(ClosedEnvironmentError, match="closed"):
            use()


def test_grpo_rollouts_and_evaluation_run_over_the_pool(ray_session, tmp_path):
    from agents.evaluation import evaluate
    from agents.grpo import GRPOConfig, GRPOTrainer
    from tests.test_evaluation import Oracle
    from tests.tiny_policy import tiny_policy

    result = evaluate(Oracle(), "Keyword-v0", num_envs=4, vectorization_mode="ray")
    assert result.success["all"] == 1.0 and len(result.episodes) == 18 and result.mean_steps == 1.0
    model, tokenizer = tiny_policy()
    config = GRPOConfig(env_id="Keyword-v0", env_kwargs={"answer_format": "plain"}, run_dir=str(tmp_path / "run"),
                        vectorization_mode="ray", vector_kwargs={"num_workers": 2}, lora_rank=0, learning_rate=1e-2, total_steps=1, tasks_per_step=2,
                        group_size=2, max_new_tokens=2, max_turns=3, kl_coef=0.0, progress=False)  # fmt: skip
    trainer = GRPOTrainer(config, model=model, tokenizer=tokenizer)
    assert isinstance(trainer.envs, RayVectorEnv) and trainer.envs.worker_env_ids == [[0, 1], [2, 3]]
    [metrics] = trainer.train()
    assert metrics["step"] == 1 and np.isfinite(metrics["reward/mean"])
    trainer.close()
    assert trainer.envs.closed


_CLUSTER_DRIVER = """
import json, ray, skill_gym
envs = skill_gym.make_vec("Keyword-v0", 3, vectorization_mode="ray")  # connects to $RAY_ADDRESS
envs.reset(seed=0, options={"task_id": "echo/apple"})
rewards = envs.step(["apple", "river", "apple"])[1]
print(json.dumps({"gcs": ray.get_runtime_context().gcs_address, "workers": envs.worker_env_ids,
                  "rewards": rewards.tolist()}))
envs.close()
"""


@pytest.mark.slow  # starts a Ray head node (~10-20 s)
def test_a_pool_on_a_running_cluster():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    temp_dir = tempfile.mkdtemp(prefix="rayt", dir="/tmp")  # short: Ray's socket paths live under it
    log = Path(temp_dir) / "head.log"
    command = [str(Path(sys.executable).parent / "ray"), "start", "--head", f"--port={port}", "--num-cpus=2",
               "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}", "--block"]  # fmt: skip
    with log.open("w") as out:
        head = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while "Ray runtime started" not in log.read_text():
            assert head.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.5)
        env = {**os.environ, "RAY_ADDRESS": f"127.0.0.1:{port}", "RAY_AUTH_MODE": "token"}
        run = subprocess.run([sys.executable, "-c", _CLUSTER_DRIVER], env=env, cwd=ROOT, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
        assert run.returncode == 0, run.stderr[-3000:]
        result = json.loads(run.stdout.strip().splitlines()[-1])
        assert result["gcs"].endswith(f":{port}")  # the running cluster, not a new local Ray
        assert result["workers"] == [[0, 1], [2]] and result["rewards"] == [1.0, 0.0, 1.0]
    finally:
        head.send_signal(signal.SIGTERM)  # the head drains and stops the processes it started
        head.wait(timeout=90)
        shutil.rmtree(temp_dir, ignore_errors=True)
