"""The OpenAI-compatible backend against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import gymnasium as gym
import pytest

import skill_gym  # noqa: F401
from agents.backends.base import SamplingConfig
from agents.backends.hf import TransformersBackend
from agents.backends.openai import EndpointError, OpenAIBackend
from agents.prompts import PromptBuilder
from agents.rollout import rollout
from agents.serve import ChatServer
from tests.tiny_policy import tiny_policy

PROMPT = [{"role": "user", "content": "Your task : Answer with the opposite of the word ' hot ' ."}]


@pytest.fixture(scope="module")
def served():
    model, tokenizer = tiny_policy(seed=1)
    direct = TransformersBackend(model, tokenizer)
    with ChatServer(direct, model_name="tiny") as server:
        yield server, direct


def test_matches_the_direct_backend_greedy(served):
    server, direct = served
    assert server.url.startswith("http://127.0.0.1:")
    greedy = SamplingConfig(max_new_tokens=4, temperature=0.0)
    [remote] = OpenAIBackend(server.url, model="tiny").generate([PROMPT], greedy)
    [local] = direct.generate([PROMPT], greedy)
    assert remote.text == local.text
    assert remote.logprobs == pytest.approx(local.logprobs, abs=1e-5)
    with urllib.request.urlopen(server.url + "/models", timeout=10) as response:
        assert json.loads(response.read())["data"][0]["id"] == "tiny"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "Expecting"),
        (b"[]", "JSON object"),
        (json.dumps({"messages": []}).encode(), "non-empty list"),
        (json.dumps({"messages": [{"role": "user", "content": 3}]}).encode(), "non-empty list"),
        (json.dumps({"messages": [{"role": "user", "content": "x"}], "max_tokens": -1}).encode(), "max_tokens"),
        (json.dumps({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}).encode(), "temperature"),
    ],
)
def test_bad_requests_get_a_clear_400(served, body, message):
    server, _ = served
    request = urllib.request.Request(server.url + "/chat/completions", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 400
    assert message in json.loads(caught.value.read())["error"]["message"]


def test_a_chunked_body_past_the_limit_and_deep_nesting_get_a_400(served):
    import http.client

    from agents.serve import MAX_BODY_BYTES

    server, _ = served
    host, port = server.url.split("//")[1].split("/")[0].split(":")
    piece = b" " * (1 << 20)
    for chunks, message in (((piece for _ in range(MAX_BODY_BYTES // len(piece) + 2)), "the body must be"),
                            ([b"[" * 100_000 + b"]" * 100_000], "nested too deeply")):  # fmt: skip
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            connection.request("POST", "/v1/chat/completions", body=chunks, encode_chunked=True,
                               headers={"Content-Type": "application/json"})  # fmt: skip
            response = connection.getresponse()
            status, reply = response.status, response.read()
        except (BrokenPipeError, ConnectionResetError):  # the server answered and closed before the body ended
            assert message == "the body must be"
            continue
        finally:
            connection.close()
        assert status == 400 and message in json.loads(reply)["error"]["message"]


def test_evaluation_rollout_through_http(served):
    server, _ = served
    envs = [gym.make("Keyword-v0", answer_format="plain") for _ in range(3)]
    builder = PromptBuilder(envs[0].unwrapped.instructions)
    episodes, stats = rollout(envs, OpenAIBackend(server.url, model="tiny"), builder,
                              ["opposite/hot", "plural/box", "echo/apple"], [0, 1, 2],
                              SamplingConfig(max_new_tokens=2, temperature=1.0, seed=0))  # fmt: skip
    assert [e.task_id for e in episodes] == ["opposite/hot", "plural/box", "echo/apple"]
    assert all(1 <= len(e.turns) <= 2 for e in episodes)


class _Flaky(BaseHTTPRequestHandler):
    failures_left = 2
    calls = 0

    def log_message(self, *args: object) -> None:
        return

    def do_POST(self) -> None:
        type(self).calls += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).failures_left > 0:
            type(self).failures_left -= 1
            self.send_response(503)
            self.end_headers()
            return
        data = json.dumps({"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_retries_with_backoff_then_succeeds_or_fails_clearly():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        [gen] = OpenAIBackend(url, model="m", backoff=0.01, max_retries=3).generate([PROMPT], SamplingConfig())
        assert gen.text == "ok" and _Flaky.calls == 3
        _Flaky.failures_left = 10
        with pytest.raises(EndpointError, match="failed after 2 attempts"):
            OpenAIBackend(url, model="m", backoff=0.01, max_retries=1).generate([PROMPT], SamplingConfig())
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(EndpointError, match=r"URLError|ConnectionRefused"):
        OpenAIBackend(url, model="m", backoff=0.01, max_retries=1, timeout=2).generate([PROMPT], SamplingConfig())
