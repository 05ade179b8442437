"""Search-QA retrievers: wiki-18 corpus reading, Search-R1's passage text, BM25 (checked against the Lucene
formula by hand), dense retrieval with the real all-MiniLM-L6-v2, save/load round trips, damaged indexes and
the on-disk cache of ``open_retriever`` (across processes too)."""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from skill_gym.envs.searchqa import retriever as retriever_module
from skill_gym.envs.searchqa.client import RemoteRetriever
from skill_gym.envs.searchqa.retriever import (
    BM25Retriever,
    CorpusError,
    DenseRetriever,
    RetrieverError,
    check_corpus,
    corpus_fingerprint,
    format_passages,
    open_retriever,
    passage_text,
    passage_title,
    read_corpus,
)

# Eight passages on unrelated subjects, and for each a question that paraphrases it with (almost) no shared word.
PASSAGES = [
    ("Mirelle", "Mirelle is the capital city of Valdoria, where the parliament and the royal palace stand."),
    ("Orrin Vale", "Orrin Vale composed the Lantern Symphony in 1871 after losing his hearing."),
    ("Copper Tide", "The Copper Tide is a red algae bloom that poisons the fish of the Sallow Bay every summer."),
    ("Ketterby Bridge", "Ketterby Bridge collapsed during the flood of 1903 and was rebuilt in stone two years later."),
    ("Aunt Hesper", "Aunt Hesper bakes bread with rye flour and honey for the village festival."),
    ("Tarn Observatory", "Astronomers at Tarn Observatory discovered a comet using a mirror telescope."),
    ("Wren Halloway", "Wren Halloway won the national chess championship at the age of twelve."),
    ("Glass Mountain", "Climbers reach the summit of the Glass Mountain by a narrow ridge covered in ice."),
]
PARAPHRASES = [
    "Which town is the seat of government of that country?",
    "Who wrote a piece of orchestral music despite going deaf?",
    "What seasonal event kills marine life in a coastal inlet?",
    "Which crossing fell down when the river rose and was reconstructed?",
    "Who makes loaves for the local celebration?",
    "Where did scientists find a new icy body in the sky?",
    "Which child became the country's top board-game player?",
    "How do mountaineers get to the peak?",
]


def wiki(title: str, text: str, doc_id: str) -> dict[str, str]:
    return {"id": doc_id, "contents": f'"{title}"\n{text}'}


@pytest.fixture(scope="module")
def corpus() -> list[dict[str, str]]:
    return [wiki(title, text, str(i)) for i, (title, text) in enumerate(PASSAGES)]


def write_jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def ids(hits: list[dict]) -> list[str]:
    return [hit["document"]["id"] for hit in hits]


# -- corpus and passages ----------------------------------------------------------------------


def test_read_corpus_reads_wiki18_jsonl_and_gzip(tmp_path: Path, corpus: list[dict]) -> None:
    path = write_jsonl(tmp_path / "corpus.jsonl", corpus)
    assert read_corpus(path) == corpus
    gz = tmp_path / "corpus.jsonl.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert read_corpus(gz) == corpus
    with_blank = tmp_path / "blank.jsonl"
    with_blank.write_text(json.dumps(corpus[0]) + "\n\n" + json.dumps(corpus[1]) + "\n")
    assert read_corpus(with_blank) == corpus[:2]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "2", "contents": ', "line 2: not valid JSON"),
        ('["a list"]', "line 2: expected a JSON object"),
        ('{"id": "2"}', "line 2: 'contents' must be a string"),
        ('{"id": "2", "contents": 7}', "line 2: 'contents' must be a string"),
        ('{"contents": "\\"T\\"\\nx"}', "line 2: 'id' must be a string or an integer"),
        ('{"id": true, "contents": "\\"T\\"\\nx"}', "line 2: 'id' must be a string or an integer"),
    ],
)
def test_read_corpus_names_the_corrupt_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"id": "1", "contents": "\\"T\\"\\nfine"}\n' + line + "\n")
    with pytest.raises(CorpusError, match=message):
        read_corpus(path)


def test_read_corpus_rejects_empty_binary_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(CorpusError, match="no passages"):
        read_corpus(tmp_path / "empty.jsonl")
    (tmp_path / "binary.jsonl").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CorpusError, match="unreadable"):
        read_corpus(tmp_path / "binary.jsonl")
    (tmp_path / "fake.jsonl.gz").write_bytes(b"not gzip")
    with pytest.raises(CorpusError, match="unreadable"):
        read_corpus(tmp_path / "fake.jsonl.gz")
    with pytest.raises(FileNotFoundError, match="no corpus file"):
        read_corpus(tmp_path / "missing.jsonl")


def test_check_corpus_rejects_what_is_not_a_list_of_records() -> None:
    with pytest.raises(CorpusError, match="record 1"):
        check_corpus([wiki("A", "a", "1"), {"id": "2"}])
    with pytest.raises(CorpusError, match="sequence of records or a path"):
        check_corpus("corpus.jsonl")
    with pytest.raises(CorpusError, match="no passages"):
        check_corpus([])


def test_passage_parts_and_search_r1_rendering() -> None:
    contents = '"Ada Lovelace"\nAda wrote the first program.\nShe worked with Babbage.'
    assert passage_title(contents) == "Ada Lovelace"
    assert passage_text(contents) == "Ada wrote the first program.\nShe worked with Babbage."
    assert passage_text('"Title only"') == ""
    hits = [
        {"document": {"id": "1", "contents": contents}, "score": 2.0},
        {"document": {"id": "2", "contents": '"Babbage"\nBabbage designed engines.'}, "score": 1.0},
    ]
    # Search-R1's _passages2string: title = first line (quotes kept), text = the other lines joined by "\n".
    expected = ""
    for idx, item in enumerate(hits):
        lines = item["document"]["contents"].split("\n")
        expected += f"Doc {idx + 1}(Title: {lines[0]}) {chr(10).join(lines[1:])}\n"
    assert format_passages(hits) == expected
    assert format_passages(hits).startswith('Doc 1(Title: "Ada Lovelace") Ada wrote the first program.\nShe')
    assert format_passages([]) == ""


def test_corpus_fingerprint_follows_the_content(tmp_path: Path, corpus: list[dict]) -> None:
    assert corpus_fingerprint(corpus) == corpus_fingerprint([dict(d) for d in corpus])
    assert corpus_fingerprint(corpus) != corpus_fingerprint([*corpus[:-1], wiki("X", "changed", "7")])
    path = write_jsonl(tmp_path / "c.jsonl", corpus)
    before = corpus_fingerprint(path)
    write_jsonl(path, corpus[:-1])
    assert corpus_fingerprint(path) != before


# -- BM25 -------------------------------------------------------------------------------------


def lucene_bm25(query: list[str], doc: list[str], docs: list[list[str]], k1: float = 0.9, b: float = 0.4) -> float:
    """Lucene's BM25 (pyserini's scoring), written out from the formula."""
    avgdl = sum(map(len, docs)) / len(docs)
    score = 0.0
    for term in set(query):
        df = sum(term in d for d in docs)
        if df == 0:
            continue
        idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
        tf = doc.count(term)
        score += idf * tf / (tf + k1 * (1 - b + b * len(doc) / avgdl))
    return score


def test_bm25_scores_match_the_lucene_formula(corpus: list[dict]) -> None:
    bm25 = BM25Retriever.build(corpus)
    tokens = [bm25.tokenize(d["contents"]) for d in corpus]
    query = "bridge flood rebuilt in stone by the river"
    hits = bm25.search([query], topk=len(corpus))[0]
    expected = {str(i): lucene_bm25(bm25.tokenize(query), t, tokens) for i, t in enumerate(tokens)}
    assert ids(hits)[0] == "3"
    assert {hit["document"]["id"]: hit["score"] for hit in hits} == pytest.approx(
        {k: v for k, v in expected.items() if v > 0}, rel=1e-5
    )
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


def test_bm25_tokenizes_with_stemming_and_stop_words(corpus: list[dict]) -> None:
    bm25 = BM25Retriever.build(corpus)
    assert bm25.tokenize("The Climbers are climbing the mountains") == ["climber", "climb", "mountain"]
    assert ids(bm25.search(["climber summits"], topk=1)[0]) == ["7"]
    assert bm25.search(["the of and"], topk=3) == [[]]  # only stop words: no passage matches (as in Lucene)
    assert bm25.search(["zzzunknownword"], topk=3) == [[]]
    assert bm25.search([""], topk=3) == [[]]


def test_bm25_batches_bounds_and_determinism(corpus: list[dict]) -> None:
    bm25 = BM25Retriever.build(corpus)
    queries = ["chess championship", "rye bread honey", "comet telescope", "bridge"]
    batched = bm25.search(queries, topk=2)
    assert batched == [bm25.search([q], topk=2)[0] for q in queries]
    assert [ids(h)[0] for h in batched] == ["6", "4", "5", "3"]
    assert len(bm25.search(["the city of Mirelle in 1871 and 1903"], topk=100)[0]) <= len(corpus)
    assert bm25.search([], topk=3) == []
    # Ties are broken by passage order, so equal corpora give equal answers.
    twins = [wiki("Same", "identical words here", str(i)) for i in range(5)]
    assert ids(BM25Retriever.build(twins).search(["identical words"], topk=3)[0]) == ["0", "1", "2"]


@pytest.mark.parametrize(
    ("queries", "topk", "message"),
    [
        ("one string", 3, "not one string"),
        ([1, 2], 3, r"queries\[0\] must be a string"),
        (None, 3, "must be a list of strings"),
        (["q"], 0, "topk must be a positive integer"),
        (["q"], True, "topk must be a positive integer"),
        (["q"], "3", "topk must be a positive integer"),
    ],
)
def test_search_rejects_bad_arguments(corpus: list[dict], queries: object, topk: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BM25Retriever.build(corpus).search(queries, topk)  # type: ignore[arg-type]


def test_bm25_save_load_round_trip_is_identical(tmp_path: Path, corpus: list[dict]) -> None:
    bm25 = BM25Retriever.build(corpus)
    queries = ["capital parliament palace", "algae fish bay", "ice ridge summit", "the"]
    folder = bm25.save(tmp_path / "bm25")
    loaded = BM25Retriever.load(folder)
    assert loaded.search(queries, topk=4) == bm25.search(queries, topk=4)
    assert BM25Retriever.load(folder, corpus=corpus).search(queries, topk=4) == bm25.search(queries, topk=4)
    assert (loaded.k1, loaded.b, len(loaded)) == (0.9, 0.4, len(corpus))


def test_bm25_load_refuses_damaged_or_foreign_folders(tmp_path: Path, corpus: list[dict]) -> None:
    folder = BM25Retriever.build(corpus).save(tmp_path / "bm25")
    with pytest.raises(RetrieverError, match="covers 8 passages but the corpus has 2"):
        BM25Retriever.load(folder, corpus=corpus[:2])
    with pytest.raises(RetrieverError, match="does not hold a format-1 dense index"):
        DenseRetriever.load(folder)
    (folder / "data.csc.index.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(RetrieverError, match="damaged"):
        BM25Retriever.load(folder)
    (folder / "meta.json").write_text("{not json")
    with pytest.raises(RetrieverError, match="no readable bm25 index"):
        BM25Retriever.load(folder)
    with pytest.raises(RetrieverError, match="no readable bm25 index"):
        BM25Retriever.load(tmp_path / "nowhere")


# -- dense ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dense(corpus: list[dict]) -> DenseRetriever:
    return DenseRetriever.build(corpus)


def test_dense_finds_the_passage_a_question_paraphrases(dense: DenseRetriever, corpus: list[dict]) -> None:
    results = dense.search(PARAPHRASES, topk=3)
    assert [ids(hits)[0] for hits in results] == [str(i) for i in range(len(PASSAGES))]
    for hits in results:
        assert len(hits) == 3
        assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
        assert all(-1.0 - 1e-5 <= h["score"] <= 1.0 + 1e-5 for h in hits)
    # The words barely overlap: BM25 misses most of these, which is what the dense retriever is for.
    bm25_top = [ids(h)[:1] for h in BM25Retriever.build(corpus).search(PARAPHRASES, topk=1)]
    assert sum(top == [str(i)] for i, top in enumerate(bm25_top)) < len(PASSAGES)


def test_dense_scores_are_inner_products_of_the_embeddings(dense: DenseRetriever, corpus: list[dict]) -> None:
    passages = dense.encode_passages([d["contents"] for d in corpus])
    query = dense.encode_queries([PARAPHRASES[2]])
    exact = passages @ query[0]
    hits = dense.search([PARAPHRASES[2]], topk=len(corpus))[0]
    assert ids(hits) == [str(i) for i in np.argsort(-exact)]
    assert [h["score"] for h in hits] == pytest.approx(sorted(exact, reverse=True), abs=1e-4)
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-4)


def test_dense_save_load_round_trip_and_checksum(tmp_path: Path, dense: DenseRetriever, corpus: list[dict]) -> None:
    folder = dense.save(tmp_path / "dense")
    loaded = DenseRetriever.load(folder)
    assert loaded.search(PARAPHRASES, topk=3) == dense.search(PARAPHRASES, topk=3)
    assert (loaded.model, len(loaded)) == (dense.model, len(corpus))
    graph = folder / "index.hnsw"
    graph.write_bytes(graph.read_bytes()[:-64])  # hnswlib would crash on this file: the checksum stops it first
    with pytest.raises(RetrieverError, match="missing or damaged"):
        DenseRetriever.load(folder)


def test_dense_uses_e5_prefixes_only_for_e5_models(corpus: list[dict]) -> None:
    assert DenseRetriever(None, corpus, model="intfloat/e5-base-v2").prefixes == ("query: ", "passage: ")
    assert DenseRetriever(None, corpus, model="/models/multilingual-E5-small").prefixes == ("query: ", "passage: ")
    assert DenseRetriever(None, corpus).prefixes == ("", "")


def test_dense_on_precomputed_embeddings_matches_exact_search(corpus: list[dict]) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(corpus), 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    retriever = DenseRetriever.build(corpus, embeddings=vectors)
    queries = vectors[[1, 5]] + 0.01
    for q, hits in zip(queries, retriever.search_vectors(queries, topk=3), strict=True):
        assert ids(hits) == [str(i) for i in np.argsort(-(vectors @ q))[:3]]
    with pytest.raises(RetrieverError, match="expected 8 embeddings"):
        DenseRetriever.build(corpus, embeddings=vectors[:3])


def test_dense_builds_the_same_graph_every_time() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(2000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    corpus = [wiki(f"P{i}", f"passage {i}", str(i)) for i in range(len(vectors))]
    queries = rng.normal(size=(50, 32)).astype(np.float32)
    first = DenseRetriever.build(corpus, embeddings=vectors, ef_search=16).search_vectors(queries, topk=5)
    second = DenseRetriever.build(corpus, embeddings=vectors, ef_search=16).search_vectors(queries, topk=5)
    assert first == second


def test_dense_with_a_missing_model_says_so(corpus: list[dict], tmp_path: Path) -> None:
    retriever = DenseRetriever(None, corpus, model=str(tmp_path / "no-such-model"))
    with pytest.raises(RetrieverError, match="cannot load the encoder"):
        retriever.search(["anything"])


# -- open_retriever ---------------------------------------------------------------------------


@pytest.fixture
def fresh_cache():
    """Empty the in-process cache of open_retriever before and after the test."""
    retriever_module._OPEN.clear()
    yield
    retriever_module._OPEN.clear()


def test_open_retriever_builds_once_then_loads_from_disk(tmp_path: Path, corpus: list[dict], fresh_cache) -> None:
    first = open_retriever("bm25", corpus, index_dir=tmp_path)
    assert open_retriever("bm25", corpus, index_dir=tmp_path) is first  # shared in-process
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert folder.name.startswith("bm25-lucene-") and (folder / "meta.json").is_file()
    stamp = (folder / "meta.json").stat().st_mtime_ns
    retriever_module._OPEN.clear()
    second = open_retriever("bm25", corpus, index_dir=tmp_path)
    assert second is not first
    assert (folder / "meta.json").stat().st_mtime_ns == stamp  # loaded, not rebuilt
    queries = ["capital of Valdoria", "chess"]
    assert second.search(queries) == first.search(queries)
    other = open_retriever("bm25", corpus[:4], index_dir=tmp_path)
    assert other is not second and len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2


def test_open_retriever_keeps_an_index_per_build_setting(tmp_path: Path, corpus: list[dict], fresh_cache) -> None:
    default = open_retriever("bm25", corpus, index_dir=tmp_path)
    retriever_module._OPEN.clear()
    tuned = open_retriever("bm25", corpus, index_dir=tmp_path, k1=1.2, b=0.75)
    assert (default.k1, default.b) == (0.9, 0.4) and (tuned.k1, tuned.b) == (1.2, 0.75)  # not the cached default
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2
    retriever_module._OPEN.clear()
    assert (open_retriever("bm25", corpus, index_dir=tmp_path, b=0.75, k1=1.2).k1, default.k1) == (1.2, 0.9)
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2  # the same settings load the same folder


def test_open_retriever_from_a_path_and_dense_spec(tmp_path: Path, corpus: list[dict], fresh_cache) -> None:
    path = write_jsonl(tmp_path / "corpus.jsonl", corpus)
    bm25 = open_retriever("bm25", path, index_dir=tmp_path / "idx")
    assert ids(bm25.search(["rye flour honey"], topk=1)[0]) == ["4"]
    dense = open_retriever("dense:all-MiniLM-L6-v2", str(path), index_dir=tmp_path / "idx")
    assert isinstance(dense, DenseRetriever)
    assert open_retriever("dense", path, index_dir=tmp_path / "idx") is dense  # the default model, named or not
    assert ids(dense.search([PARAPHRASES[0]], topk=1)[0]) == ["0"]
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "idx").iterdir() if p.is_dir()) == ["bm25", "dense"]


def test_open_retriever_rebuilds_a_damaged_cache(tmp_path: Path, corpus: list[dict], fresh_cache) -> None:
    open_retriever("bm25", corpus, index_dir=tmp_path)
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    (folder / "data.csc.index.npy").write_bytes(b"\x93NUMPY garbage")
    (folder / "corpus.jsonl").write_text('{"id": 1, "contents": ')
    retriever_module._OPEN.clear()
    with pytest.warns(UserWarning, match="rebuilding the retriever index"):
        rebuilt = open_retriever("bm25", corpus, index_dir=tmp_path)
    assert ids(rebuilt.search(["comet"], topk=1)[0]) == ["5"]
    assert read_corpus(folder / "corpus.jsonl") == corpus


def test_open_retriever_rejects_bad_specs_and_corpora(tmp_path: Path, corpus: list[dict], fresh_cache) -> None:
    with pytest.raises(ValueError, match="unknown retriever 'splade'"):
        open_retriever("splade", corpus, index_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown retriever 'bm25:x'"):
        open_retriever("bm25:x", corpus, index_dir=tmp_path)
    with pytest.raises(ValueError, match="must be a string"):
        open_retriever(3, corpus)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs a corpus"):
        open_retriever("bm25", None, index_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="no corpus file"):
        open_retriever("bm25", tmp_path / "missing.jsonl", index_dir=tmp_path)
    with pytest.raises(CorpusError, match="record 0"):
        open_retriever("bm25", [{"contents": "no id"}], index_dir=tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "contents": "\\"T\\"\\nok"}\n{oops\n')
    with pytest.raises(CorpusError, match="line 2"):
        open_retriever("bm25", bad, index_dir=tmp_path)
    remote = open_retriever("http://127.0.0.1:8000", timeout=2.0, retries=1)
    assert isinstance(remote, RemoteRetriever) and remote.url == "http://127.0.0.1:8000/retrieve"


def test_concurrent_processes_build_the_index_once(tmp_path: Path, corpus: list[dict]) -> None:
    path = write_jsonl(tmp_path / "corpus.jsonl", corpus)
    script = textwrap.dedent(
        f"""
        import json
        from skill_gym.envs.searchqa.retriever import open_retriever
        r = open_retriever("bm25", {str(path)!r}, index_dir={str(tmp_path / "idx")!r})
        print(json.dumps([h["document"]["id"] for h in r.search(["observatory comet"], topk=2)[0]]))
        """
    )
    env = {**os.environ, "PYTHONWARNINGS": "error::UserWarning"}
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env) for _ in range(3)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert {json.loads(o)[0] for o in outputs} == {"5"}
    folders = [p for p in (tmp_path / "idx").iterdir() if p.is_dir()]
    assert len(folders) == 1 and not [p for p in (tmp_path / "idx").iterdir() if p.name.startswith(".")]
