"""The transformers backend: sampled tokens' log-probs equal the policy's own forward pass."""

from __future__ import annotations

import pytest
import torch

from agents.backends.base import SamplingConfig
from agents.backends.hf import TransformersBackend
from agents.grpo.config import GRPOConfig
from agents.grpo.update import PolicyUpdate, Sample
from tests.tiny_policy import tiny_policy

PROMPTS = [
    [{"role": "user", "content": "Your task : Answer with the opposite of the word ' hot ' ."}],
    [{"role": "user", "content": "Answer with the plural of the word ' box ' . Admissible actions : boxes , box"}],
]


def test_a_seeded_call_draws_from_its_seed_and_leaves_the_process_rng_alone():
    backend = TransformersBackend(*tiny_policy(seed=1))
    seeded = SamplingConfig(max_new_tokens=6, temperature=1.0, seed=3)
    torch.manual_seed(11)
    first = backend.generate(PROMPTS, seeded)
    after = torch.rand(4)  # an evaluation's seed must not reset the training stream
    torch.manual_seed(11)
    assert torch.equal(torch.rand(4), after)
    torch.manual_seed(12)
    assert [g.response_ids for g in backend.generate(PROMPTS, seeded)] == [g.response_ids for g in first]


def test_generation_logprobs_match_a_forward_pass_at_temperature_one():
    model, tokenizer = tiny_policy(seed=1)
    backend = TransformersBackend(model, tokenizer)
    generations = backend.generate(PROMPTS, SamplingConfig(max_new_tokens=6, temperature=1.0, seed=3))
    policy = PolicyUpdate(model, tokenizer, GRPOConfig(kl_coef=0.0, micro_batch_size=8))
    samples = [Sample(g.prompt_ids, g.response_ids, 0.0) for g in generations]
    with torch.no_grad():
        logp, _, mask = policy.logprobs(samples)
    for row, gen in enumerate(generations):
        n = len(gen.response_ids)
        assert n >= 1 and len(gen.logprobs) == n
        assert logp[row, logp.shape[1] - n :].tolist() == pytest.approx(gen.logprobs, abs=1e-4)
        assert mask[row].sum() == n
