"""EnginePoolBackend on a real local Ray with the tiny policy: seeded sampling equal to one engine's and the order
kept over uneven chunks, full-weight and LoRA sync through the object store, a GRPO step over two engines, a
killed engine, and bad arguments."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from agents.backends.base import SamplingConfig
from agents.backends.engine_pool import EngineDiedError, EnginePoolBackend
from agents.backends.hf import TransformersBackend
from tests.ray_actors import kill_until_dead
from tests.tiny_policy import keyword_vocabulary, tiny_policy

SAMPLED = SamplingConfig(max_new_tokens=6, temperature=1.0, seed=7)
GREEDY = SamplingConfig(max_new_tokens=6, temperature=0.0)


def _prompts(n: int) -> list[list[dict[str, str]]]:
    """``n`` chat prompts; the first comes again at index 3, so a request seed that ignores the index shows."""
    words = keyword_vocabulary()[10:]
    prompts = [[{"role": "user", "content": f"{words[i]} {words[2 * i + 1]}"}] for i in range(n)]
    if n > 3:
        prompts[3] = prompts[0]
    return prompts


def _assert_same(pool_out, reference) -> None:
    assert [g.response_ids for g in pool_out] == [g.response_ids for g in reference]
    assert [g.prompt_ids for g in pool_out] == [g.prompt_ids for g in reference]
    for a, b in zip(pool_out, reference, strict=True):
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-4)


def _perturb(model: torch.nn.Module, only: str = "") -> None:
    with torch.no_grad():
        for name, param in model.named_parameters():
            if only in name:
                param.add_(torch.randn_like(param) * 0.5)


@pytest.fixture(scope="module")
def lora_pool(ray_session):
    """A pool of two engines, each with a copy of a LoRA tiny policy (one prompt per micro-batch), and the driver's
    policy. One pool for the module: an engine takes ~15-30 s to start (torch and transformers in a new process)."""
    from peft import LoraConfig, get_peft_model

    base, tokenizer = tiny_policy()
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj"]))
    pool = EnginePoolBackend(partial(TransformersBackend, model, tokenizer, batch_size=1), 2)
    yield pool, model, tokenizer
    pool.close()


def test_seeded_sampling_equals_one_engine_in_order(lora_pool):
    pool, model, tokenizer = lora_pool
    one = TransformersBackend(model, tokenizer, batch_size=1)  # seeds request i with seed + i, as vLLM does
    prompts = _prompts(5)  # chunks of 3 and 2
    reference = one.generate(prompts, SAMPLED)
    assert reference[0].response_ids != reference[3].response_ids  # equal prompts, other seeds
    _assert_same(pool.generate(prompts, SAMPLED), reference)
    _assert_same(pool.generate(prompts[:1], SAMPLED), reference[:1])  # more engines than prompts
    assert pool.generate([], SAMPLED) == []
    assert pool.request_seeds and pool.num_engines == 2 and pool.sync == "lora"


def test_lora_sync_makes_the_engines_generate_as_the_driver(lora_pool, tmp_path):
    pool, model, tokenizer = lora_pool
    prompts = _prompts(4)
    before = pool.generate(prompts, GREEDY)
    for step in (1, 2):
        _perturb(model, only="lora_B")  # only the adapter moves: that is all a LoRA sync sends
        driver = TransformersBackend(model, tokenizer, batch_size=1).generate(prompts, GREEDY)
        assert [g.logprobs for g in driver] != [g.logprobs for g in before]
        pool.sync_weights(model, step, tmp_path)
        _assert_same(pool.generate(prompts, GREEDY), driver)
    assert not any((tmp_path / "engine_weights").iterdir())  # the driver's copy is gone once sent
    with pytest.raises(TypeError, match="peft"):
        pool.sync_weights(tiny_policy()[0], 3, tmp_path)  # a full model: no adapter to send


def test_unseeded_sampling_differs_between_engines(lora_pool):
    pool, _, _ = lora_pool
    sampled = SamplingConfig(max_new_tokens=6, temperature=1.0)
    first, _, second, _ = pool.generate(_prompts(1) * 4, sampled)  # engine 0 gets the first two, engine 1 the rest
    assert first.response_ids != second.response_ids  # the engines' RNGs start alike: a call draws a fresh seed


def test_a_killed_engine_gets_a_clear_error(lora_pool, tmp_path):
    pool, model, _ = lora_pool
    kill_until_dead(pool.actors[1])
    with pytest.raises(EngineDiedError, match="engine 1 of 2 died"):
        pool.generate(_prompts(4), GREEDY)
    with pytest.raises(EngineDiedError, match="engine 1 of 2"):
        pool.sync_weights(model, 3, tmp_path)
    pool.close()
    pool.close()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        pool.generate(_prompts(4), GREEDY)


@pytest.mark.slow  # two more engines to start (~30 s on 2 busy cores)
def test_full_weight_sync_and_a_grpo_step_over_two_engines(ray_session, tmp_path):
    from agents.grpo import GRPOConfig, GRPOTrainer

    model, tokenizer = tiny_policy()
    config = GRPOConfig(env_id="Keyword-v0", env_kwargs={"answer_format": "plain"}, run_dir=str(tmp_path / "run"),
                        num_engines=2, lora_rank=0, learning_rate=1e-2, total_steps=1, tasks_per_step=2,
                        group_size=2, max_new_tokens=2, max_turns=3, kl_coef=0.0, progress=False)  # fmt: skip
    trainer = GRPOTrainer(config, model=model, tokenizer=tokenizer)
    try:
        pool = trainer.backend
        assert isinstance(pool, EnginePoolBackend) and pool.num_engines == 2 and pool.sync == "full"
        prompts = _prompts(3)
        before = pool.generate(prompts, GREEDY)
        [metrics] = trainer.train()  # the update is synced to the engines as full weights
        assert metrics["step"] == 1 and np.isfinite(metrics["reward/mean"])
        driver = TransformersBackend(model, tokenizer, batch_size=1).generate(prompts, GREEDY)
        assert [g.logprobs for g in driver] != [g.logprobs for g in before]
        _assert_same(pool.generate(prompts, GREEDY), driver)
    finally:
        trainer.close()
    with pytest.raises(RuntimeError, match="closed"):  # closed with the trainer
        pool.generate(prompts, GREEDY)


def test_bad_arguments_get_clear_errors(ray_session, tmp_path):
    from agents.grpo import GRPOConfig, GRPOTrainer

    model, tokenizer = tiny_policy()
    make = partial(TransformersBackend, model, tokenizer)
    for num_engines in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="num_engines must be a positive integer"):
            EnginePoolBackend(make, num_engines)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="make_backend must be a function"):
        EnginePoolBackend("TransformersBackend", 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="actor_options must be a dict"):
        EnginePoolBackend(make, 2, actor_options=["num_gpus"])  # type: ignore[arg-type]
    unplaceable = {"resources": {"no_such_node": 1}}
    with pytest.raises(RuntimeError, match=r"1 of 1 engines did not start within 1 s: each asks for .*no_such_node"):
        EnginePoolBackend(make, 1, actor_options=unplaceable, start_timeout=1)
    with pytest.raises(EngineDiedError, match="engine 0 of 1 died"):  # the backend fails in its actor
        EnginePoolBackend(partial(int, "not a number"), 1)
    config = GRPOConfig(env_id="Keyword-v0", run_dir=str(tmp_path), lora_rank=0, num_engines=0, progress=False)
    with pytest.raises(ValueError, match="num_engines must be a positive integer, got 0"):
        GRPOTrainer(config, model=model, tokenizer=tokenizer)
