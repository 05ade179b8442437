"""The embedded Search-QA knowledge base (kb.py) and the question loader (data.py), on real files and BM25."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skill_gym.envs.searchqa import kb
from skill_gym.envs.searchqa.data import DataError, find_corpus, load_tasks, question_type
from skill_gym.envs.searchqa.retriever import open_retriever, passage_title, read_corpus
from skill_gym.envs.searchqa.scoring import normalize_answer

SEARCH_R1_COLUMNS = {"id", "question", "golden_answers", "data_source", "prompt", "ability", "reward_model",
                     "extra_info"}  # fmt: skip


@pytest.fixture(scope="module")
def folder() -> Path:
    return kb.embedded_kb_dir()


@pytest.fixture(scope="module")
def corpus(folder: Path) -> list[dict]:
    return read_corpus(folder / "corpus.jsonl")


@pytest.fixture(scope="module")
def rows(folder: Path) -> dict[str, list[dict]]:
    return {split: pq.read_table(folder / f"{split}.parquet").to_pylist() for split in ("train", "test")}


def test_generation_is_deterministic_and_seeded() -> None:
    first, second = kb.generate(300, seed=0, n_train=20, n_test=5), kb.generate(300, seed=0, n_train=20, n_test=5)
    assert first == second
    other = kb.generate(300, seed=1, n_train=20, n_test=5)
    assert other.corpus != first.corpus and other.questions != first.questions


def test_size_parameter_scales_the_corpus() -> None:
    small, large = kb.generate(300, n_train=1, n_test=1), kb.generate(1200, n_train=1, n_test=1)
    assert 3.5 < len(large.corpus) / len(small.corpus) < 4.5
    with pytest.raises(ValueError, match="n_entities"):
        kb.generate(10)


def test_default_world_is_large_with_four_balanced_question_types(folder: Path, corpus, rows) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["passages"] == len(corpus) >= 10_000
    assert len({passage_title(doc["contents"]) for doc in corpus}) >= 2_500  # entities
    for split, per_type in (("train", 500), ("test", 100)):
        counts = Counter(row["skill_type"] for row in rows[split])
        assert counts == dict.fromkeys(kb.QUESTION_TYPES, per_type), split


def test_corpus_is_wiki18_jsonl(corpus) -> None:
    assert [doc["id"] for doc in corpus] == [str(i) for i in range(len(corpus))]
    for doc in corpus:
        title, _, text = doc["contents"].partition("\n")
        assert title.startswith('"') and title.endswith('"') and len(title) > 2 and text
        assert doc["contents"].isascii()


def test_rows_follow_search_r1s_parquet_schema(rows) -> None:
    for split, split_rows in rows.items():
        for index, row in enumerate(split_rows):
            assert set(row) >= SEARCH_R1_COLUMNS
            assert row["id"] == f"{split}_{index}" and row["extra_info"] == {"split": split, "index": index}
            assert row["question"].endswith("?") and row["question"] == row["question"].strip()
            assert row["prompt"] == [{"role": "user", "content": kb.search_r1_prompt(row["question"])}]
            assert row["reward_model"] == {"style": "rule", "ground_truth": {"target": row["golden_answers"]}}
            assert row["data_source"] == kb.DATA_SOURCE and row["ability"] == "fact-reasoning"
            assert row["golden_answers"] and all(isinstance(a, str) and a for a in row["golden_answers"])


def test_search_r1_prompt_is_upstreams() -> None:
    prompt = kb.search_r1_prompt("who?")
    assert prompt.startswith("Answer the given question. You must conduct reasoning inside <think> and </think>")
    assert "You can search as many times as your want." in prompt  # upstream's wording, typo included
    assert prompt.endswith("For example, <answer> Beijing </answer>. Question: who?\n")


def test_train_and_test_share_no_question(rows) -> None:
    train = {row["question"] for row in rows["train"]}
    assert not train & {row["question"] for row in rows["test"]}
    assert len(train) == len(rows["train"])


def test_answers_cannot_be_read_off_the_question(rows) -> None:
    for row in rows["train"] + rows["test"]:
        question = normalize_answer(row["question"])
        answers = [normalize_answer(a) for a in row["golden_answers"]]
        if row["skill_type"] == "comparison":  # the answer is one of the two names asked about
            assert sum(answer in question for answer in answers) >= 1
        else:
            assert not any(f" {answer} " in f" {question} " for answer in answers), row


def test_evidence_passages_hold_what_they_promise(corpus, rows) -> None:
    hops = {"direct_retrieval": 1, "entity_attribute_lookup": 1, "multi_hop_reasoning": 2, "comparison": 2}
    for row in rows["train"] + rows["test"]:
        assert len(row["evidence"]) == hops[row["skill_type"]]
        for hop in row["evidence"]:
            assert hop["expect"] in corpus[int(hop["passage_id"])]["contents"], (row["question"], hop)
        if row["skill_type"] == "multi_hop_reasoning":  # the second search is about the bridge found first
            assert row["evidence"][0]["expect"] in row["evidence"][1]["query"]
        if row["skill_type"] != "comparison":
            last = corpus[int(row["evidence"][-1]["passage_id"])]["contents"]
            assert any(answer in last for answer in row["golden_answers"])


def test_distractors_share_names_and_values(corpus, rows) -> None:
    people = {passage_title(doc["contents"]) for doc in corpus if " (born " in doc["contents"]}
    families = Counter(name.split()[-1] for name in people)
    assert sum(n for n in families.values() if n > 1) / len(people) > 0.5  # most people share a family name
    occupations = [row["golden_answers"][0] for row in rows["train"] if "occupation?" in row["question"]]
    assert len(set(occupations)) < len(occupations) / 4  # an occupation is shared by many: read, not guessed
    comparisons = [row for row in rows["train"] if row["question"].startswith("Which person was born first")]
    assert any(r["evidence"][0]["query"].split()[1] == r["evidence"][1]["query"].split()[1] for r in comparisons)


def test_the_world_is_consistent(corpus) -> None:
    born = {}
    for doc in corpus:
        found = re.match(r'"(.+)"\n\1 \(born (\d+)\)', doc["contents"])
        if found:
            born[found.group(1)] = int(found.group(2))
    texts = [doc["contents"].partition("\n")[2] for doc in corpus]
    founders = [re.search(r"founded in (\d+) by (.+?)\. ", t) for t in texts]
    ages = [int(m.group(1)) - born[m.group(2)] for m in founders if m]
    assert len(ages) >= 400 and all(20 <= age <= 70 for age in ages)  # founders were adults, and alive
    marriages = dict(re.match(r"(.+?) married (.+?) in (\d+)", t).groups()[:2] for t in texts if " married " in t)
    assert len(marriages) > 1000 and all(marriages[b] == a for a, b in marriages.items())  # both sides agree
    mayors = [born[m.group(1)] for t in texts if (m := re.search(r"The mayor of .+? is (.+?)\. ", t))]
    assert mayors and all(1940 <= year <= 1985 for year in mayors)


def test_bm25_top3_holds_the_evidence_for_well_formed_queries(folder: Path, rows) -> None:
    retriever = open_retriever("bm25", find_corpus(folder))
    evidence_hits, question_hits, n_hops = 0, Counter(), 0
    test = rows["test"]
    for row in test:
        hits = retriever.search([hop["query"] for hop in row["evidence"]], topk=3)
        for hop, found in zip(row["evidence"], hits, strict=True):
            evidence_hits += hop["passage_id"] in {hit["document"]["id"] for hit in found}
            n_hops += 1
        found = retriever.search([row["question"]], topk=3)[0]
        question_hits[row["skill_type"]] += row["evidence"][0]["passage_id"] in {h["document"]["id"] for h in found}
    rate = evidence_hits / n_hops
    by_type = {kind: question_hits[kind] / 100 for kind in kb.QUESTION_TYPES}
    print(f"BM25 top-3 evidence rate: {rate:.3f} (evidence queries); question as query, first hop: {by_type}")
    assert rate == 1.0
    assert by_type["direct_retrieval"] >= 0.9 and by_type["entity_attribute_lookup"] >= 0.85
    assert by_type["multi_hop_reasoning"] >= 0.4 and by_type["comparison"] >= 0.85


def test_embedded_kb_dir_generates_once_then_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKILL_GYM_CACHE", str(tmp_path))
    folder = kb.embedded_kb_dir(n_entities=300)
    assert folder.parent == tmp_path / "searchqa"
    assert {p.name for p in folder.iterdir()} == {"corpus.jsonl", "train.parquet", "test.parquet", "manifest.json"}
    stamp = (folder / "corpus.jsonl").stat().st_mtime_ns
    assert kb.embedded_kb_dir(n_entities=300) == folder and (folder / "corpus.jsonl").stat().st_mtime_ns == stamp
    (folder / "manifest.json").unlink()  # an unfinished folder is generated again
    assert (kb.embedded_kb_dir(n_entities=300) / "manifest.json").is_file()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging folder left
    tasks = load_tasks(folder, "test")
    assert tasks[0].task_id == "test/skillgym_kb/test_0" and tasks[0].evidence


def _upstream_rows() -> list[dict]:
    def row(i: int, question: str, source: str, golden: list[str], target: list[str]) -> dict:
        return {"id": f"test_{i}", "question": question, "golden_answers": golden, "data_source": source,
                "prompt": [{"role": "user", "content": kb.search_r1_prompt(question)}], "ability": "fact-reasoning",
                "reward_model": {"style": "rule", "ground_truth": {"target": target}},
                "extra_info": {"split": "test", "index": i}}  # fmt: skip

    return [
        row(0, "who wrote the raven?", "nq", ["Poe"], ["Edgar Allan Poe", "Poe"]),
        row(1, "What is Ada Lovelace's occupation?", "popqa", ["mathematician"], ["mathematician"]),
        row(2, "Which was founded first, Acme or Initech?", "hotpotqa", ["Acme"], ["Acme"]),
        row(3, "Where was the director of Heat born?", "hotpotqa", ["Los Angeles"], ["Los Angeles"]),
        row(0, "Who directed Alien?", "2wikimultihopqa", ["Ridley Scott"], ["Ridley Scott"]),
        row(0, "Who directed Heat?", "2wikimultihopqa", ["Michael Mann"], ["Michael Mann"]),
    ]


def test_loader_reads_upstream_rows(tmp_path: Path) -> None:
    pq.write_table(pa.Table.from_pylist(_upstream_rows()), tmp_path / "test.parquet")
    tasks = load_tasks(tmp_path, "test")
    assert [t.task_type for t in tasks] == ["direct_retrieval", "entity_attribute_lookup", "comparison",
                                            "multi_hop_reasoning", "multi_hop_reasoning", "multi_hop_reasoning"]  # fmt: skip
    assert tasks[0].golden_answers == ("Edgar Allan Poe", "Poe")  # reward_model.ground_truth.target wins
    assert tasks[0].task_id == "test/nq/test_0" and tasks[4].task_id == "test/2wikimultihopqa/test_0"
    assert tasks[5].task_id == "test/2wikimultihopqa/test_0#5"  # a repeated id is told apart by its row
    assert all(t.evidence == () for t in tasks)


def test_loader_reads_skill0_type_names(tmp_path: Path) -> None:
    rows = _upstream_rows()[:2]
    rows[0]["skill_type"], rows[1]["skill_type"] = "compare", "multi_hop_reasoning"
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "test.parquet")
    assert [t.task_type for t in load_tasks(tmp_path, "test")] == ["comparison", "multi_hop_reasoning"]


def test_question_type_rule() -> None:
    assert question_type("Which is older, the Nile or the Amazon?", "musique") == "comparison"
    assert question_type("Which team played for the cup, A or B?", "hotpotqa") == "multi_hop_reasoning"  # "for"
    assert question_type("Who is he?", "custom") == "unknown"


def test_loader_rejects_broken_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no question file"):
        load_tasks(tmp_path, "test")
    (tmp_path / "test.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match=r"not a readable parquet file"):
        load_tasks(tmp_path, "test")
    pq.write_table(pa.table({"text": ["hi"]}), tmp_path / "test.parquet")
    with pytest.raises(DataError, match=r"Search-R1's schema"):
        load_tasks(tmp_path, "test")
    pq.write_table(pa.table({"question": ["q?", "p?"], "golden_answers": [["a"], []]}), tmp_path / "test.parquet")
    with pytest.raises(DataError, match=r"row 1: no golden answers"):
        load_tasks(tmp_path, "test")
    pq.write_table(pa.table({"question": ["", "p?"], "golden_answers": [["a"], ["b"]]}), tmp_path / "test.parquet")
    with pytest.raises(DataError, match=r"row 0: 'question' must be a non-empty string"):
        load_tasks(tmp_path, "test")
    with pytest.raises(ValueError, match="split must be one of"):
        load_tasks(tmp_path, "dev")
    with pytest.raises(DataError, match="no corpus in"):
        find_corpus(tmp_path)


def test_command_line_writes_a_world_of_any_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert kb.main([str(tmp_path / "kb"), "--entities", "400", "--train", "3", "--test", "2"]) == 0
    assert "passages, 12 train / 8 test" in capsys.readouterr().out
    assert len(load_tasks(tmp_path / "kb", "train")) == 12 and read_corpus(find_corpus(tmp_path / "kb"))
    with pytest.raises(SystemExit) as stop:
        kb.main([str(tmp_path / "bad"), "--entities", "3"])
    assert stop.value.code == 2 and "n_entities must be an int >= 200" in capsys.readouterr().err
