"""A tiny random causal LM (~100k parameters) with a word-level tokenizer, for fast learner tests.

The vocabulary is built from the prompts the project's PromptBuilder writes for ``Keyword-v0``,
so every prompt and answer word is one token and a GRPO run learns in seconds on CPU.
"""

from __future__ import annotations

import re

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from agents.prompts import PromptBuilder
from skill_gym.envs.keyword import TASKS, KeywordEnv

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}ANSWER :{% endif %}"
)


def keyword_vocabulary() -> list[str]:
    env = KeywordEnv(answer_format="plain")
    builder = PromptBuilder(env.instructions, history_length=2)
    words: set[str] = {"ANSWER", ":"}
    for task in TASKS:
        obs, _ = env.reset(options={"task_id": task["task_id"]})
        for step in range(3):
            prompt = builder.build(obs, [(obs["observation"], task["answer"])] * step, step)
            for message in prompt:  # the env's worked example, then the prompt
                words.update(re.findall(r"\w+|[^\w\s]+", message["content"]))
        words.update(task["choices"])
    return ["<pad>", "<unk>", "<eos>", *sorted(words)]


def tiny_policy(seed: int = 0, hidden: int = 64) -> tuple[torch.nn.Module, PreTrainedTokenizerFast]:
    """``(model, tokenizer)``: a 2-layer Llama over the Keyword-v0 vocabulary."""
    vocab = {w: i for i, w in enumerate(keyword_vocabulary())}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.padding_side = "left"
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        pad_token_id=0, eos_token_id=2, bos_token_id=2, tie_word_embeddings=True,
    )  # fmt: skip
    return LlamaForCausalLM(config), tokenizer
