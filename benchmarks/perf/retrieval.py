"""Search-QA retrieval: BM25 and dense query throughput and latency beside rank_bm25 and FAISS flat, plus the server.

For each corpus size N (default 10k and 100k passages; ``--passages`` for others) the corpus is the first N of
100k generated wiki-18 passages about invented places (~30 words each; generated here rather than taken from the
env's knowledge base so that the cached embeddings survive changes to it), and the queries are questions about
them (who founded X, when, which place is known for Y). Measured, one thread everywhere (FAISS, hnswlib, torch,
BLAS), in one run:

* **BM25** — ours (``BM25Retriever``: bm25s + PyStemmer, Lucene k1 0.9 / b 0.4) against ``rank_bm25.BM25Okapi``
  (same tokens, same k1/b; top-3 by ``argpartition`` over ``get_scores``), one query per call: p50 / p99 ms and
  queries/s. rank_bm25 scores every passage in Python, so at large N only ``--rank-bm25-sample`` queries are timed.
  Also: build time and the time to load the saved index (what ``open_retriever`` pays on a cache hit).
* **Dense** — the first ``--encode-limit`` passages (default 10k) are encoded once with all-MiniLM-L6-v2
  (2 threads; cached on disk in 10k-passage chunks under the skill-gym cache) and the queries once. Encoding
  100k passages on 2 shared cores takes 15-60 minutes, so by default the rows past 10k are random mixes of two
  encoded rows (:func:`extend_by_mixing`): the index search is timed on them, not retrieval quality;
  ``--encode-limit 100000`` encodes them all. On that same embedding matrix: ours (``DenseRetriever.search_vectors``: hnswlib graph,
  M 32, ef_construction 100, ef 64, hits built) against FAISS ``IndexFlatIP`` (Search-R1's index: exact inner
  product; hits built the same way), one query per call, and recall@3 of ours against FAISS's top 3. Query
  encoding (the same for both) is timed separately.
* **Server** — ``RetrievalServer`` (BM25 and dense at the largest N) under 8 concurrent clients for
  ``--server-seconds``, one query (top 3) per request as the env sends it: requests/s, p50 / p99 ms.

Targets: dense queries/s >= FAISS flat's at recall@3 >= 0.95 (each size); BM25 queries/s >= 10x rank_bm25's.

Usage:
    python -m benchmarks.perf.retrieval [--passages 10000 100000] [--queries 400] [--server-seconds 10]
                                        [--out benchmarks/results/retrieval.json]
"""

from __future__ import annotations

import os

# One thread for the timed parts, set before NumPy / FAISS / torch load their thread pools.
os.environ.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")

import dataclasses
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.perf import common
from skill_gym.files import staged_file

PACKAGES = (
    "numpy",
    "bm25s",
    "PyStemmer",
    "rank-bm25",
    "hnswlib",
    "faiss-cpu",
    "torch",
    "sentence-transformers",
    "flask",
)
CHUNK = 10_000
"""Passages per cached embedding file (so the 10k corpus reuses the first file of the 100k one)."""


@dataclasses.dataclass
class Args:
    """Benchmark settings; each field is a ``--flag`` (underscores as dashes)."""

    passages: list[int] = dataclasses.field(
        default_factory=lambda: [10_000, 100_000], metadata={"help": "corpus sizes (passages of the generated KB)"}
    )
    queries: int = dataclasses.field(default=400, metadata={"help": "queries timed per method (one per call)"})
    k: int = dataclasses.field(default=3, metadata={"help": "passages per query (Search-R1: 3)"})
    ef_search: int = dataclasses.field(default=64, metadata={"help": "hnswlib ef at query time"})
    rank_bm25_sample: int = dataclasses.field(
        default=40, metadata={"help": "queries timed for rank_bm25 above 20k passages (it is slow)"}
    )
    server_clients: int = dataclasses.field(default=8, metadata={"help": "concurrent clients in the server test"})
    server_seconds: float = dataclasses.field(default=10.0, metadata={"help": "seconds per server test"})
    encode_threads: int = dataclasses.field(default=2, metadata={"help": "torch threads for encoding the corpus"})
    encode_limit: int = dataclasses.field(
        default=10_000,
        metadata={"help": "passages encoded for real; rows beyond are mixes of encoded rows (see extend_by_mixing)"},
    )
    out: Path = dataclasses.field(
        default=Path("benchmarks/results/retrieval.json"), metadata={"help": "where to write the JSON results"}
    )


# -- data -------------------------------------------------------------------------------------


_SYLLABLES = [
    a + b for a in ("b", "br", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z") for b in "aeiou"
]
_KINDS = ["village", "river port", "mining town", "abbey", "trading house", "observatory", "shipyard", "library"]
_TRADES = ["wool", "salt", "copper", "glass", "timber", "silk", "amber", "paper", "tin", "wine", "maps", "clocks"]
_FEATURES = ["a stone bridge", "a clock tower", "a walled garden", "a lighthouse", "a covered market", "twin mills"]


def _name(rng: np.random.Generator, parts: int) -> str:
    return "".join(_SYLLABLES[i] for i in rng.integers(0, len(_SYLLABLES), parts)).capitalize()


def synthetic_corpus(n: int, seed: int = 0) -> tuple[list[dict[str, Any]], list[str]]:
    """``n`` wiki-18 passages about invented places (~30 words each) and, per passage, a question it answers.

    Deterministic for ``(n, seed)`` and independent of the env's knowledge base (which changes with its
    version): the cached embeddings stay valid. Names repeat across passages, as in a real encyclopedia.
    """
    rng = np.random.default_rng(seed)
    people = [f"{_name(rng, 2)} {_name(rng, 3)}" for _ in range(max(50, n // 20))]
    places = [_name(rng, 3) for _ in range(max(20, n // 50))]
    corpus, questions = [], []
    endings = ["holm", "ford", "wick", "stad", "mere", ""]
    picks = {
        name: rng.integers(0, size, n)
        for name, size in [
            ("ending", len(endings)),
            ("kind", len(_KINDS)),
            ("place", len(places)),
            ("founder", len(people)),
            ("trade", len(_TRADES)),
            ("feature", len(_FEATURES)),
        ]
    }
    years = rng.integers(1100, 1990, n)
    for i in range(n):
        title = _name(rng, 2 + i % 2) + endings[picks["ending"][i]]
        kind, place = _KINDS[picks["kind"][i]], places[picks["place"][i]]
        founder, year = people[picks["founder"][i]], int(years[i])
        trade, feature = _TRADES[picks["trade"][i]], _FEATURES[picks["feature"][i]]
        text = (
            f"{title} is {'an' if kind[0] in 'aeiou' else 'a'} {kind} near {place}. It was founded in {year} by {founder}, and grew rich on the "
            f"{trade} trade. Visitors come to see {feature}."
        )
        corpus.append({"id": str(i), "contents": f'"{title}"\n{text}'})
        questions.append(
            [
                f"Who founded the {kind} {title}?",
                f"In which year was {title} near {place} founded?",
                f"{title} {trade} trade",
                f"Which {kind} near {place} is known for {feature}?",
            ][i % 4]
        )
    return corpus, questions


def benchmark_queries(questions: Sequence[str], count: int) -> list[str]:
    """``count`` of the questions, drawn without replacement when there are enough (deterministic)."""
    rng = np.random.default_rng(1)
    return [questions[i] for i in rng.choice(len(questions), size=count, replace=count > len(questions))]


def passage_embeddings(corpus: Sequence[dict[str, Any]], threads: int) -> tuple[np.ndarray, dict[str, Any]]:
    """MiniLM embeddings of ``corpus`` (unit rows), encoded in 10k-passage chunks cached on disk; and what it cost."""
    import torch

    from skill_gym.assets import cache_dir
    from skill_gym.envs.searchqa.corpus import corpus_fingerprint
    from skill_gym.envs.searchqa.dense import DenseRetriever

    folder = cache_dir() / "searchqa" / "bench-embeddings"
    folder.mkdir(parents=True, exist_ok=True)
    encoder = DenseRetriever(None, corpus)  # only its encoder and prefixes are used
    chunks, encoded, seconds = [], 0, 0.0
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for start in range(0, len(corpus), CHUNK):
            part = corpus[start : start + CHUNK]
            path = folder / f"{encoder.model}-{corpus_fingerprint(part)[:24]}.npy"
            if path.is_file():
                chunks.append(np.load(path, allow_pickle=False))
                continue
            began = time.perf_counter()
            vectors = encoder.encode_passages([d["contents"] for d in part], batch_size=1024)
            seconds += time.perf_counter() - began
            encoded += len(part)
            with staged_file(path) as staging, open(staging, "wb") as handle:  # a file handle: np.save adds no suffix
                np.save(handle, vectors, allow_pickle=False)
            chunks.append(vectors)
            print(f"  encoded passages {start:,}-{start + len(part):,} ({encoded / seconds:.0f}/s)", flush=True)
    finally:
        torch.set_num_threads(before)
    cost = {"encoded_now": encoded, "encode_s": seconds, "from_cache": len(corpus) - encoded, "threads": threads}
    return np.concatenate(chunks), cost


def extend_by_mixing(encoded: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``encoded`` followed by ``n - len(encoded)`` unit rows, each a random mix of two encoded rows.

    Stand-ins for passages not encoded (see ``--encode-limit``): they lie among real embeddings, between two
    of them, so the index sees the clusters and near-ties real text makes; their passages' text is not what
    they encode, so they serve speed and recall against exact search only.
    """
    extra = n - len(encoded)
    if extra <= 0:
        return encoded[:n]
    rng = np.random.default_rng(seed)
    first, second = rng.integers(0, len(encoded), (2, extra))
    weight = rng.uniform(0.3, 0.7, (extra, 1)).astype(np.float32)
    mixed = weight * encoded[first] + (1 - weight) * encoded[second]
    mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
    return np.concatenate([encoded, mixed.astype(np.float32)])


# -- timing -----------------------------------------------------------------------------------


def pin_threads() -> dict[str, Any]:
    """One thread for FAISS and torch (the environment variables above cover BLAS); what was set."""
    import faiss
    import torch

    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)
    return {"faiss": faiss.omp_get_max_threads(), "torch": torch.get_num_threads(), "hnswlib": 1, "blas": 1}


def time_each(fn: Callable[[Any], Any], items: Sequence[Any], warmup: int = 5) -> tuple[dict[str, Any], list[Any]]:
    """Call ``fn`` on each item (after ``warmup`` untimed calls): latency summary with queries/s, and the outputs."""
    for item in items[:warmup]:
        fn(item)
    times, outputs = [], []
    for item in items:
        start = time.perf_counter()
        outputs.append(fn(item))
        times.append(time.perf_counter() - start)
    row = common.summary_ms(times, common.P50_P99)
    row["qps"] = len(times) / sum(times)
    return row, outputs


def hits_of(documents: Sequence[dict[str, Any]], rows: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
    """Search-R1 hits for one query's rows and scores (the same work for every method)."""
    return [{"document": documents[int(r)], "score": float(s)} for r, s in zip(rows, scores, strict=True) if r >= 0]


# -- BM25 -------------------------------------------------------------------------------------


def bench_bm25(
    args: Args, corpus: list[dict[str, Any]], queries: list[str], workdir: Path
) -> tuple[dict[str, Any], Any]:
    """BM25 ours against rank_bm25 on ``corpus``: the results, and our retriever (for the server test)."""
    from rank_bm25 import BM25Okapi

    from skill_gym.envs.searchqa.bm25 import BM25Retriever

    ours, build_s = common.timed(lambda: BM25Retriever.build(corpus))
    folder = ours.save(workdir / f"bm25-{len(corpus)}")
    _, load_s = common.timed(lambda: BM25Retriever.load(folder))
    mine, found = time_each(lambda q: ours.search([q], args.k)[0], queries)
    batched_s = common.timed(lambda: ours.search(queries, args.k))[1]

    tokens = [ours.tokenize(d["contents"]) for d in corpus]
    anchor, anchor_build_s = common.timed(lambda: BM25Okapi(tokens, k1=ours.k1, b=ours.b))

    def rank_bm25_search(query: str) -> list[dict[str, Any]]:
        scores = anchor.get_scores(ours.tokenize(query))
        rows = np.argpartition(-scores, args.k)[: args.k]
        rows = rows[np.argsort(-scores[rows], kind="stable")]
        return hits_of(corpus, rows, scores[rows])

    sample = queries if len(corpus) <= 20_000 else queries[: args.rank_bm25_sample]
    theirs, anchor_found = time_each(rank_bm25_search, sample, warmup=2)
    same_top1 = np.mean(
        [
            bool(a) and bool(b) and a[0]["document"]["id"] == b[0]["document"]["id"]
            for a, b in zip(found[: len(anchor_found)], anchor_found, strict=True)
        ]
    )
    result = {
        "ours": {**mine, "build_s": build_s, "load_s": load_s, "batched_qps": len(queries) / batched_s},
        "rank_bm25": {**theirs, "build_s": anchor_build_s, "queries_timed": len(sample)},
        "top1_agreement": float(same_top1),
        "speedup_qps": mine["qps"] / theirs["qps"],
    }
    return result, ours


# -- dense ------------------------------------------------------------------------------------


def bench_dense(
    args: Args, corpus: list[dict[str, Any]], matrix: np.ndarray, query_vectors: np.ndarray
) -> tuple[dict[str, Any], Any]:
    """Dense ours (hnswlib) against FAISS flat on the same ``matrix``: the results, and our retriever."""
    import faiss

    from skill_gym.envs.searchqa.dense import DenseRetriever

    ours, build_s = common.timed(lambda: DenseRetriever.build(corpus, embeddings=matrix, ef_search=args.ef_search))
    flat = faiss.IndexFlatIP(matrix.shape[1])
    flat.add(matrix)
    rows = list(query_vectors[:, None, :])

    def faiss_search(q: np.ndarray) -> list[dict[str, Any]]:
        scores, found = flat.search(q, args.k)
        return hits_of(corpus, found[0], scores[0])

    mine, found = time_each(lambda q: ours.search_vectors(q, args.k)[0], rows)
    theirs, truth = time_each(faiss_search, rows)
    recall = np.mean(
        [
            len({h["document"]["id"] for h in a} & {h["document"]["id"] for h in b}) / len(b)
            for a, b in zip(found, truth, strict=True)
        ]
    )
    batched = {
        "ours_qps": len(rows) / common.timed(lambda: ours.search_vectors(query_vectors, args.k))[1],
        "faiss_flat_qps": len(rows) / common.timed(lambda: flat.search(query_vectors, args.k))[1],
    }
    result = {
        "ours": {**mine, "build_s": build_s, f"recall@{args.k}": float(recall)},
        "faiss_flat": theirs,
        "batched": batched,
        "speedup_qps": mine["qps"] / theirs["qps"],
    }
    return result, ours


# -- server -----------------------------------------------------------------------------------


def bench_server(args: Args, retriever: Any, queries: list[str]) -> dict[str, Any]:
    """``retriever`` behind a ``RetrievalServer`` under concurrent clients: requests/s, latency, errors."""
    from skill_gym.envs.searchqa.client import RemoteRetriever, RetrieverUnavailable
    from skill_gym.envs.searchqa.server import RetrievalServer

    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    with RetrievalServer(retriever) as server:
        deadline = time.perf_counter() + args.server_seconds

        def client(worker: int) -> None:
            nonlocal errors
            remote = RemoteRetriever(server.url, timeout=30, retries=0)
            n = worker
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    remote.search([queries[n % len(queries)]], args.k)
                    failed = 0
                except RetrieverUnavailable:
                    failed = 1
                with lock:
                    latencies.append(time.perf_counter() - start)
                    errors += failed
                n += args.server_clients

        threads = [threading.Thread(target=client, args=(w,)) for w in range(args.server_clients)]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - began
    row = common.summary_ms(latencies, common.P50_P99)
    return {**row, "rps": len(latencies) / wall, "errors": errors, "clients": args.server_clients, "seconds": wall}


# -- run --------------------------------------------------------------------------------------


def print_size(run: dict[str, Any], k: int) -> None:
    b, d = run["bm25"], run["dense"]

    def lat(row: dict[str, Any]) -> str:
        return f"{row['p50_ms']:.3f} / {row['p99_ms']:.3f}"

    print(f"\nN = {run['passages']:,} passages, {run['queries']} queries (one per call, top {k}, one thread)")
    common.print_table(
        ["method", "p50 / p99 ms", "queries/s", "note"],
        [
            ["BM25 ours (bm25s)", lat(b["ours"]), f"{b['ours']['qps']:.0f}", f"load {b['ours']['load_s']:.3f} s"],
            [
                "BM25 rank_bm25",
                lat(b["rank_bm25"]),
                f"{b['rank_bm25']['qps']:.1f}",
                f"{b['rank_bm25']['queries_timed']} queries timed",
            ],
            [
                "dense ours (hnswlib)",
                lat(d["ours"]),
                f"{d['ours']['qps']:.0f}",
                f"recall@{k} {d['ours'][f'recall@{k}']:.3f}",
            ],
            ["dense FAISS flat IP", lat(d["faiss_flat"]), f"{d['faiss_flat']['qps']:.0f}", "exact"],
        ],
    )
    print(
        f"BM25 x{b['speedup_qps']:.1f} rank_bm25 (top-1 agreement {b['top1_agreement']:.2f}); dense x{d['speedup_qps']:.1f} FAISS flat"
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = common.parse_settings(Args, argv, __doc__.split("\n")[0], list_nargs="*")
    job = common.Job("Search-QA retrieval (benchmarks/perf/retrieval.py)", args, PACKAGES)
    largest = max(args.passages)
    print(f"Search-QA retrieval: {args.passages} passages, {args.queries} queries, top {args.k}", flush=True)
    full_corpus, questions = synthetic_corpus(largest)
    queries = benchmark_queries(questions, args.queries)
    encoded, encoding = passage_embeddings(full_corpus[: args.encode_limit], args.encode_threads)
    matrix = extend_by_mixing(encoded, largest)
    encoding["mixed_rows"] = len(matrix) - len(encoded)
    threads = pin_threads()

    from skill_gym.envs.searchqa.dense import DenseRetriever

    encoder = DenseRetriever(None, full_corpus[:1])
    encoder.encode_queries(queries[:8])  # load the model before timing
    query_timing, _ = time_each(lambda q: encoder.encode_queries([q]), queries[:100])
    query_vectors = encoder.encode_queries(queries)
    runs = []
    with tempfile.TemporaryDirectory(prefix="skill-gym-retrieval-") as tmp:
        for n in sorted(args.passages):
            corpus = full_corpus[:n]
            bm25, bm25_retriever = bench_bm25(args, corpus, queries, Path(tmp))
            dense, dense_retriever = bench_dense(args, corpus, matrix[:n], query_vectors)
            runs.append({"passages": n, "queries": len(queries), "bm25": bm25, "dense": dense})
            print_size(runs[-1], args.k)
    print(
        f"\nServer: {args.server_clients} clients x {args.server_seconds:g} s, one query per request, N = {largest:,}"
    )
    server = {  # the retrievers of the largest size, served as they are
        "bm25": bench_server(args, bm25_retriever, queries),
        "dense": bench_server(args, dense_retriever, queries),
    }
    common.print_table(
        ["retriever", "requests/s", "p50 ms", "p99 ms", "errors"],
        [
            [name, f"{r['rps']:.0f}", f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", r["errors"]]
            for name, r in server.items()
        ],
    )
    checks = {}
    for run in runs:
        dense = run["dense"]
        checks[f"dense_qps_ge_faiss_flat_at_{run['passages']}"] = dense["speedup_qps"] >= 1.0
        checks[f"dense_recall@{args.k}_ge_0.95_at_{run['passages']}"] = dense["ours"][f"recall@{args.k}"] >= 0.95
        checks[f"bm25_ge_10x_rank_bm25_at_{run['passages']}"] = run["bm25"]["speedup_qps"] >= 10.0
    checks["server_zero_errors"] = all(r["errors"] == 0 for r in server.values())
    corpus = {"source": "synthetic_corpus (seed 0)", "passages": largest, "example": full_corpus[0]}
    return job.finish(
        {
            "threads": threads,
            "corpus": corpus,
            "passage_encoding": encoding,
            "query_encoding": query_timing,
            "runs": runs,
            "server": server,
            "targets": common.check_targets(checks),
            "notes": NOTES,
        }
    )


NOTES = {
    "timed": "one query per call on one thread: BM25 = tokenize + score + top-k + hits; dense = index search + hits "
    "on precomputed query embeddings (query encoding, the same for both indexes, is under query_encoding); "
    "server = HTTP round trip of one query through RemoteRetriever (stdlib urllib, a new connection per request)",
    "rank_bm25": "BM25Okapi with the same tokens and k1/b; its idf differs from Lucene's (Robertson idf with an "
    "epsilon floor), so rankings agree mostly, not exactly (top1_agreement). Above 20k passages only "
    "rank_bm25_sample queries are timed: it scores every passage in Python per query term.",
    "dense": "the first encode_limit passages encoded once with all-MiniLM-L6-v2 (cached in 10k chunks), the rest "
    "of the matrix mixes of two encoded rows (passage_encoding.mixed_rows); hnswlib M 32, ef_construction 100, "
    "ef_search 64; FAISS IndexFlatIP on the same matrix is exact, so recall@k is against its top k",
}


if __name__ == "__main__":
    main()
