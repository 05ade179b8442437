"""The OpenAI-compatible HTTP backend: evaluate any chat endpoint (hosted, ``vllm serve``, a third party).

This module holds :class:`OpenAIBackend`. Requests run concurrently (one thread per prompt, up to
``concurrency``), each with a timeout and retries with exponential backoff on connection errors,
timeouts, 429 and 5xx. Token ids are not available over this API, so ``prompt_ids`` and
``response_ids`` are empty; per-token log-probs are filled when the server returns them.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agents.backends.base import ChatPrompt, Generation, SamplingConfig, StaticBackend

__all__ = ["EndpointError", "OpenAIBackend"]

_RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class EndpointError(RuntimeError):
    """The endpoint failed after all retries, or answered with something that is not a completion."""


class OpenAIBackend(StaticBackend):
    """Chat completions from ``base_url`` (e.g. ``http://127.0.0.1:8000/v1``).

    Example:
        >>> backend = OpenAIBackend("http://127.0.0.1:8000/v1", model="smollm2")  # doctest: +SKIP
        >>> backend.generate([[{"role": "user", "content": "Hi"}]], SamplingConfig(max_new_tokens=8))  # doctest: +SKIP
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        concurrency: int = 8,
        logprobs: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.concurrency = concurrency
        self.logprobs = logprobs

    def generate(self, prompts: Sequence[ChatPrompt], sampling: SamplingConfig) -> list[Generation]:
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(prompts)))) as pool:
            return list(pool.map(lambda p: self._complete(p, sampling), prompts))

    def _complete(self, prompt: ChatPrompt, sampling: SamplingConfig) -> Generation:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": prompt,
            "max_tokens": sampling.max_new_tokens,
            "temperature": max(sampling.temperature, 0.0),
            "top_p": sampling.top_p,
        }
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if self.logprobs:
            body["logprobs"] = True
        data = self._post("/chat/completions", body)
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise EndpointError(f"{self.base_url}: not a chat completion: {str(data)[:200]}") from None
        content = ((choice.get("logprobs") or {}).get("content")) or []
        logprobs = [float(item["logprob"]) for item in content if isinstance(item, dict) and "logprob" in item]
        return Generation(text, [], [], logprobs, str(choice.get("finish_reason") or "stop"), _usage(data))

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        payload = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(self.base_url + path, data=payload, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read().decode())
            except urllib.error.HTTPError as error:
                last = f"HTTP {error.code}: {error.read()[:200].decode(errors='replace')}"
                if error.code not in _RETRY_STATUS:
                    raise EndpointError(f"{self.base_url}{path}: {last}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                last = f"{type(error).__name__}: {error}"
            except json.JSONDecodeError:
                raise EndpointError(f"{self.base_url}{path}: the answer is not JSON") from None
            if attempt < self.max_retries:
                time.sleep(self.backoff * 2**attempt)
        raise EndpointError(f"{self.base_url}{path}: failed after {self.max_retries + 1} attempts ({last})")


def _usage(data: dict[str, Any]) -> tuple[int, int] | None:
    """``(prompt_tokens, completion_tokens)`` from a response's ``usage``, or None when it has no valid counts."""
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return None
    counts = [usage.get("prompt_tokens"), usage.get("completion_tokens")]
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
        return None
    return counts[0], counts[1]
