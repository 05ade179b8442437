"""The Search-QA retrieval server and its client, over real loopback HTTP.

Round trips in Search-R1's and verl-agent's request shapes (checked against what upstream's server builds
and what upstream's clients read), bad requests (4xx with a message), concurrent clients, a bounded load test,
the ``skill-gym serve retriever`` command, and the client's timeouts, retries and dead-server path.
"""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from skill_gym.envs.searchqa.client import RemoteRetriever
from skill_gym.envs.searchqa.retriever import (
    BM25Retriever,
    DenseRetriever,
    RetrieverUnavailable,
    format_passages,
    open_retriever,
)
from skill_gym.envs.searchqa.server import RetrievalServer, ServerLimits

TOWNS = 200


def town(i: int) -> dict[str, str]:
    return {
        "id": str(i),
        "contents": f'"Town{i:03d}"\nTown{i:03d} lies on the river Riv{i % 7} and was founded by king Kin{i % 11}.',
    }


@pytest.fixture(scope="module")
def corpus() -> list[dict[str, str]]:
    return [town(i) for i in range(TOWNS)]


@pytest.fixture(scope="module")
def bm25(corpus: list[dict[str, str]]) -> BM25Retriever:
    return BM25Retriever.build(corpus)


@pytest.fixture(scope="module")
def server(bm25: BM25Retriever) -> Iterator[RetrievalServer]:
    limits = ServerLimits(max_topk=20, max_queries=64, max_query_chars=500, max_body_bytes=64 << 10)
    with RetrievalServer(bm25, limits=limits) as running:
        yield running


def post(url: str, body: bytes | object, method: str = "POST", timeout: float = 10) -> tuple[int, object]:
    """Status and decoded JSON reply of one request (``body``: raw bytes, or an object sent as JSON)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data if method == "POST" else None, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# -- round trips ------------------------------------------------------------------------------


def test_search_r1_request_with_scores(server: RetrievalServer, bm25: BM25Retriever) -> None:
    queries = ["Town017 king", "river Riv3 Town010", "Town199 river"]
    status, reply = post(server.url, {"queries": queries, "topk": 3, "return_scores": True})
    assert status == 200 and list(reply) == ["result"]
    assert len(reply["result"]) == 3
    for row in reply["result"]:
        assert len(row) == 3
        for item in row:
            assert set(item) == {"document", "score"}
            assert set(item["document"]) == {"id", "contents"} and isinstance(item["score"], float)
    assert reply["result"] == bm25.search(queries, topk=3)
    assert [row[0]["document"]["id"] for row in reply["result"]] == ["17", "10", "199"]


def test_search_r1_request_without_scores_returns_bare_documents(server: RetrievalServer, bm25: BM25Retriever) -> None:
    # Upstream builds resp.append(single_result): the documents themselves, no {"document", "score"} wrapper.
    queries = ["Town017 king", "Town042"]
    status, reply = post(server.url, {"queries": queries, "topk": 2, "return_scores": False})
    assert status == 200
    assert reply == {"result": [[hit["document"] for hit in row] for row in bm25.search(queries, topk=2)]}
    status, default = post(server.url, {"queries": queries, "topk": 2})  # return_scores defaults to false
    assert (status, default) == (200, reply)


def test_verl_agent_single_query_request(server: RetrievalServer, bm25: BM25Retriever) -> None:
    status, reply = post(server.url, {"query": "Town005 river", "topk": 3, "return_scores": True})
    assert status == 200 and reply == {"result": bm25.search(["Town005 river"], topk=3)}
    status, reply = post(server.url, {"query": ["Town005", "Town006"], "topk": 1, "return_scores": True})
    assert status == 200 and [row[0]["document"]["id"] for row in reply["result"]] == ["5", "6"]


def test_topk_defaults_to_three(server: RetrievalServer) -> None:
    for body in ({"queries": ["king Kin3"]}, {"queries": ["king Kin3"], "topk": None}):
        status, reply = post(server.url, body)
        assert status == 200 and len(reply["result"][0]) == 3


def test_upstream_clients_read_the_reply_unchanged(server: RetrievalServer) -> None:
    import requests

    # Search-R1 llm_agent/generation.py: _batch_search then _passages2string on each query's result.
    payload = {"queries": ["Town017 king", "Town123"], "topk": 3, "return_scores": True}
    results = requests.post(server.url, json=payload, timeout=10).json()["result"]
    rendered = []
    for retrieval_result in results:
        reference = ""
        for idx, doc_item in enumerate(retrieval_result):
            content = doc_item["document"]["contents"]
            reference += (
                f"Doc {idx + 1}(Title: {content.split(chr(10))[0]}) {chr(10).join(content.split(chr(10))[1:])}\n"
            )
        rendered.append(reference)
    assert rendered == [format_passages(row) for row in RemoteRetriever(server.url).search(payload["queries"])]
    assert rendered[0].startswith('Doc 1(Title: "Town017") Town017 lies on the river Riv3')
    # verl-agent's search tool: one "query" with JSON headers, reads result[i][j]["document"]["contents"].
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    reply = requests.post(server.url, headers=headers, json={"query": "Town123", "topk": 3, "return_scores": True})
    assert reply.status_code == 200
    assert reply.json()["result"][0][0]["document"]["contents"].startswith('"Town123"')


def test_health_and_client_through_open_retriever(server: RetrievalServer) -> None:
    status, reply = post(server.url.replace("/retrieve", "/health"), None, method="GET")
    assert (status, reply) == (200, {"status": "ok", "retriever": "bm25", "passages": TOWNS})
    remote = open_retriever(f"http://127.0.0.1:{server.port}", timeout=5.0, retries=0)
    assert [h["document"]["id"] for h in remote.search(["Town077"], topk=1)[0]] == ["77"]
    assert remote.search([], topk=3) == []
    remote.close()


def test_dense_retriever_served(corpus: list[dict[str, str]]) -> None:
    dense = DenseRetriever.build(corpus[:20])
    with RetrievalServer(dense) as running:
        hits = RemoteRetriever(running.url).search(["Which town did king Kin5 found?"], topk=2)
    assert len(hits[0]) == 2 and hits == dense.search(["Which town did king Kin5 found?"], topk=2)


# -- bad requests -----------------------------------------------------------------------------

BAD_BODIES = [
    (b"{not json", 400, "not valid JSON"),
    (b"", 400, "not valid JSON"),
    (b"\xff\xfe garbage", 400, "not valid JSON"),
    (b"[" * 20_000 + b"]" * 20_000, 400, "not valid JSON"),  # nested past the parser's depth
    (["a", "list"], 400, "must be a JSON object"),
    ({}, 400, "exactly one of 'queries'"),
    ({"topk": 3}, 400, "exactly one of 'queries'"),
    ({"queries": ["a"], "query": "b"}, 400, "exactly one of 'queries'"),
    ({"queries": "one string"}, 400, "'queries' must be a list of strings"),
    ({"queries": None}, 400, "'queries' must be a list of strings"),
    ({"queries": ["ok", 7]}, 400, "query 1 must be a string"),
    ({"queries": [["nested"]]}, 400, "query 0 must be a string"),
    ({"query": 12}, 400, "'query' must be a string"),
    ({"queries": ["a"], "topk": "3"}, 400, "'topk' must be an integer from 1 to 20"),
    ({"queries": ["a"], "topk": 2.5}, 400, "'topk' must be an integer"),
    ({"queries": ["a"], "topk": True}, 400, "'topk' must be an integer"),
    ({"queries": ["a"], "topk": 0}, 400, "'topk' must be an integer"),
    ({"queries": ["a"], "topk": -4}, 400, "'topk' must be an integer"),
    ({"queries": ["a"], "topk": 10**30}, 400, "'topk' must be an integer from 1 to 20, got 1000000000000"),
    ({"queries": ["a"], "return_scores": "yes"}, 400, "'return_scores' must be true or false"),
    ({"queries": ["q"] * 65}, 413, "65 queries in one request; the limit is 64"),
    ({"queries": ["x" * 501]}, 413, "query 0 has 501 characters; the limit is 500"),
    (b'{"queries": ["' + b"x" * (80 << 10) + b'"]}', 413, "larger than 65536 bytes"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_BODIES)
def test_bad_requests_get_a_4xx_with_a_message(
    server: RetrievalServer, body: object, status: int, message: str
) -> None:
    got, reply = post(server.url, body)
    assert got == status
    assert list(reply) == ["error"] and message in reply["error"]


def test_unknown_routes_and_methods(server: RetrievalServer) -> None:
    base = server.url.removesuffix("/retrieve")
    assert post(base + "/search", {"queries": ["a"]}) == (
        404,
        {"error": "unknown route; use POST /retrieve or GET /health"},
    )
    assert post(server.url, None, method="GET")[0] == 405
    assert post(base + "/health", {}, method="POST")[0] == 405
    assert post(server.url, {"queries": ["Town001"]})[0] == 200  # still serving after all that


def test_a_failing_retriever_gives_a_500_with_a_message(corpus: list[dict[str, str]], tmp_path: Path) -> None:
    broken = DenseRetriever(None, corpus, model=str(tmp_path / "no-such-model"))
    with RetrievalServer(broken) as running:
        status, reply = post(running.url, {"queries": ["anything"]})
        assert status == 500 and "cannot load the encoder" in reply["error"]
        with pytest.raises(RetrieverUnavailable, match="HTTP 500: retrieval failed") as caught:
            RemoteRetriever(running.url, retries=1, backoff=0.01).search(["anything"])
        assert caught.value.status == 500


# -- concurrency and load ---------------------------------------------------------------------


def test_concurrent_clients_get_their_own_answers(server: RetrievalServer) -> None:
    errors: list[str] = []

    def client(worker: int) -> None:
        remote = RemoteRetriever(server.url, timeout=10, retries=0)
        for n in range(25):
            i = (worker * 25 + n) % TOWNS
            try:
                hits = remote.search([f"Town{i:03d}", f"Town{(i + 1) % TOWNS:03d}"], topk=1)
            except Exception as error:  # a thread's exception would not reach the test: record it
                errors.append(f"worker {worker} query {i}: {error!r}")
                continue
            if [row[0]["document"]["id"] for row in hits] != [str(i), str((i + 1) % TOWNS)]:
                errors.append(f"worker {worker} query {i}: {hits}")

    threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and not any(t.is_alive() for t in threads)


@pytest.mark.slow
def test_load_8_clients_for_20_seconds_without_errors(server: RetrievalServer) -> None:
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + 20.0
    lock = threading.Lock()

    def client(worker: int) -> None:
        remote = RemoteRetriever(server.url, timeout=10, retries=0)
        n = 0
        while time.perf_counter() < deadline:
            i = (worker * 7919 + n) % TOWNS
            start = time.perf_counter()
            try:
                hits = remote.search([f"Town{i:03d} king", f"river Riv{n % 7}"], topk=3)
                ok = hits[0][0]["document"]["id"] == str(i) and len(hits[1]) == 3
            except Exception as error:  # a thread's exception would not reach the test: record it
                ok, hits = False, repr(error)
            with lock:
                latencies.append(time.perf_counter() - start)
                if not ok:
                    errors.append(f"worker {worker}: {hits}")
            n += 1

    threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[int(0.99 * (len(latencies) - 1))]
    print(
        f"\nload test: {len(latencies)} requests in 20 s, {len(latencies) / 20:.0f}/s, p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms"
    )
    assert errors == [] and len(latencies) > 100


# -- the command ------------------------------------------------------------------------------


def test_skill_gym_serve_retriever(tmp_path: Path, corpus: list[dict[str, str]]) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in corpus))
    command = [sys.executable, "-m", "skill_gym.cli", "serve", "retriever", "--corpus", str(path), "--port", "0"]
    command += ["--index-dir", str(tmp_path / "idx"), "--topk", "2"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stderr.readline()  # "serving bm25 over 200 passages at http://127.0.0.1:PORT/retrieve"
        assert "serving bm25 over 200 passages at http://127.0.0.1:" in line, line
        url = line.split(" at ")[-1].strip()
        status, reply = post(url, {"queries": ["Town150 king"]})
        assert status == 200 and len(reply["result"][0]) == 2
        assert reply["result"][0][0]["id"] == "150"
    finally:
        process.terminate()
        process.wait(timeout=20)
        process.stderr.close()


def test_skill_gym_serve_retriever_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "contents": "\\"T\\"\\nok"}\n{"id": 2}\n')
    for args, message in [
        (["--corpus", str(tmp_path / "missing.jsonl")], "no corpus file"),
        (["--corpus", str(bad), "--index-dir", str(tmp_path)], "line 2: 'contents' must be a string"),
        (["--corpus", str(bad), "--retriever", "splade"], "unknown retriever 'splade'"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "skill_gym.cli", "serve", "retriever", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


# -- the client -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_client_dead_server_raises_one_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/retrieve"  # nothing listens there
    start = time.perf_counter()
    with pytest.raises(RetrieverUnavailable, match=r"unreachable .*\(3 attempts\)") as caught:
        RemoteRetriever(url, timeout=2, retries=2, backoff=0.05).search(["who?"])
    assert caught.value.status is None
    assert time.perf_counter() - start >= 0.05 + 0.1  # it did pause between the attempts


def test_client_times_out_on_a_silent_server() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/retrieve"
        start = time.perf_counter()
        with pytest.raises(RetrieverUnavailable, match=r"timed out after 0.3 s \(2 attempts\)"):
            RemoteRetriever(url, timeout=0.3, retries=1, backoff=0.0).search(["who?"])
        assert time.perf_counter() - start >= 0.6  # it waited out both attempts


class ScriptedHandler(http.server.BaseHTTPRequestHandler):
    """Answers POSTs from ``server.replies`` in order: (status, body bytes); counts them."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.calls += 1  # type: ignore[attr-defined]
        status, body = self.server.replies.pop(0)  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ScriptedHandler)
    server.calls, server.replies = 0, []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def scripted_url(server: http.server.ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/retrieve"


GOOD = json.dumps({"result": [[{"document": {"id": "1", "contents": '"T"\ntext'}, "score": 1.5}]]}).encode()


def test_client_retries_5xx_then_succeeds(scripted: http.server.ThreadingHTTPServer) -> None:
    scripted.replies = [(503, b'{"error": "busy"}'), (502, b"bad gateway"), (200, GOOD)]  # type: ignore[attr-defined]
    hits = RemoteRetriever(scripted_url(scripted), retries=2, backoff=0.01).search(["q"])
    assert hits == [[{"document": {"id": "1", "contents": '"T"\ntext'}, "score": 1.5}]]
    assert scripted.calls == 3  # type: ignore[attr-defined]


def test_client_gives_up_after_its_retries(scripted: http.server.ThreadingHTTPServer) -> None:
    scripted.replies = [(503, b'{"error": "busy"}')] * 3  # type: ignore[attr-defined]
    with pytest.raises(RetrieverUnavailable, match=r"HTTP 503: busy \(3 attempts\)") as caught:
        RemoteRetriever(scripted_url(scripted), retries=2, backoff=0.01).search(["q"])
    assert caught.value.status == 503 and scripted.calls == 3  # type: ignore[attr-defined]


def test_client_does_not_retry_a_refusal(server: RetrievalServer) -> None:
    with pytest.raises(RetrieverUnavailable, match=r"HTTP 400: 'topk' must be an integer from 1 to 20, got 50") as e:
        RemoteRetriever(server.url, retries=3, backoff=5.0).search(["q"], topk=50)  # no 5 s pause: one attempt
    assert e.value.status == 400


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>not json</html>", "not JSON"),
        (b'{"results": []}', "no 'result' list"),
        (b'{"result": [[], []]}', "2 result lists for 1 queries"),
        (b'{"result": [{"document": {}}]}', r"result\[0\] is not a list"),
        (b'{"result": [[{"id": "1", "contents": "x"}]]}', "no document with 'contents'"),
        (b'{"result": [[{"document": {"contents": "x"}, "score": "high"}]]}', "no numeric score"),
    ],
)
def test_client_rejects_garbled_replies(scripted: http.server.ThreadingHTTPServer, body: bytes, message: str) -> None:
    scripted.replies = [(200, body)]  # type: ignore[attr-defined]
    with pytest.raises(RetrieverUnavailable, match=message):
        RemoteRetriever(scripted_url(scripted), retries=0).search(["q"])


def test_client_rejects_bad_arguments() -> None:
    for url in ("ftp://host/retrieve", "127.0.0.1:8000", "http://"):
        with pytest.raises(ValueError, match="must be http"):
            RemoteRetriever(url)
    with pytest.raises(ValueError, match="timeout must be positive"):
        RemoteRetriever("http://127.0.0.1:1", timeout=0)
    with pytest.raises(ValueError, match="not one string"):
        RemoteRetriever("http://127.0.0.1:1").search("who?")  # type: ignore[arg-type]
