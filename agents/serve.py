"""A small OpenAI-compatible chat server around any backend (default: transformers on SmolLM2).

This module holds :class:`ChatServer`: ``POST /v1/chat/completions`` and ``GET /v1/models`` on
``127.0.0.1`` (by default), so a policy can be evaluated by the same HTTP client as a hosted model,
and :func:`main` (``skill-gym serve policy``). Requests are served one generation at a time (the model is
not thread-safe); bad requests get a 400 with a JSON error, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agents.backends.base import Backend, SamplingConfig

__all__ = ["ChatServer"]

MAX_BODY_BYTES = 4 * 1024 * 1024


class ChatServer:
    """Serve ``backend`` as model ``model_name``. Use as a context manager or call :meth:`start`/:meth:`stop`."""

    def __init__(self, backend: Backend, model_name: str = "policy", host: str = "127.0.0.1", port: int = 0) -> None:
        self.backend = backend
        self.model_name = model_name
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> ChatServer:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """One chat completion (raises ``ValueError`` for a malformed request)."""
        messages = body.get("messages")
        if (
            not isinstance(messages, list)
            or not messages
            or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in messages
            )
        ):
            raise ValueError("'messages' must be a non-empty list of {role, content} string objects")
        sampling = SamplingConfig(
            max_new_tokens=_int(body.get("max_tokens", body.get("max_completion_tokens", 256)), "max_tokens", 1, 8192),
            temperature=_float(body.get("temperature", 1.0), "temperature", 0.0, 5.0),
            top_p=_float(body.get("top_p", 1.0), "top_p", 0.0, 1.0),
            stop=tuple(body["stop"]) if isinstance(body.get("stop"), list) else (
                (body["stop"],) if isinstance(body.get("stop"), str) else ()),
            seed=body.get("seed") if isinstance(body.get("seed"), int) else None,
        )  # fmt: skip
        with self._lock:
            [gen] = self.backend.generate([[{"role": m["role"], "content": m["content"]} for m in messages]], sampling)
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": gen.text},
            "finish_reason": gen.finish_reason,
        }
        if body.get("logprobs"):
            choice["logprobs"] = {
                "content": [
                    {"token_id": t, "logprob": lp} for t, lp in zip(gen.response_ids, gen.logprobs, strict=False)
                ]
            }
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": [choice],
            "usage": {
                "prompt_tokens": len(gen.prompt_ids),
                "completion_tokens": len(gen.response_ids),
                "total_tokens": len(gen.prompt_ids) + len(gen.response_ids),
            },
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                return

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": server.model_name, "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                try:
                    length = int(self.headers.get("Content-Length", "0"))
                    if length <= 0 or length > MAX_BODY_BYTES:
                        raise ValueError(f"the body must be 1..{MAX_BODY_BYTES} bytes")
                    body = json.loads(self.rfile.read(length))
                    if not isinstance(body, dict):
                        raise ValueError("the body must be a JSON object")
                    self._send(200, server.complete(body))
                except (ValueError, json.JSONDecodeError) as error:
                    self._send(400, {"error": {"message": str(error), "type": "invalid_request_error"}})
                except Exception as error:
                    self._send(500, {"error": {"message": f"{type(error).__name__}: {error}"}})

        return Handler


def _int(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return value


def _float(value: object, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def main(model: str | None = None, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the transformers policy until interrupted."""
    from agents.backends.hf import TransformersBackend, load_policy

    net, tokenizer = load_policy(model)
    with ChatServer(
        TransformersBackend(net, tokenizer), model_name=model or "SmolLM2-135M-Instruct", host=host, port=port
    ) as srv:
        print(f"serving on {srv.url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
