"""The embedded Search-QA knowledge base: a fictional world written out as a corpus and question sets.

A world (:mod:`.world`) is generated deterministically from ``(n_entities, seed)`` with a local ``random.Random``;
each entity becomes 3-6 passages (:mod:`.passages`) in wiki-18's corpus format, and questions of SKILL0's four
types are asked about it (:mod:`.questions`). Questions are written as Search-R1's parquet rows (``id``,
``question``, ``golden_answers``, ``data_source``, ``prompt``, ``ability``, ``reward_model.ground_truth.target``,
``extra_info``) plus ``skill_type`` (the question type) and ``evidence`` (per search hop: a well-formed query,
the id of the passage that answers it and the string it must show; the oracle agent follows it).

This module holds :func:`generate`, :func:`write_kb`, :func:`embedded_kb_dir` (the cached default files:
``corpus.jsonl``, ``train.parquet``, ``test.parquet``, ``manifest.json``) and :func:`main`
(``python -m skill_gym.envs.searchqa.kb OUT --entities 24000`` writes a ~100k-passage world to ``OUT``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
from pathlib import Path
from typing import Any

from skill_gym.assets import cache_dir, file_lock
from skill_gym.envs.searchqa.corpus import write_corpus
from skill_gym.envs.searchqa.passages import build_corpus
from skill_gym.envs.searchqa.questions import QUESTION_TYPES, question_pool
from skill_gym.envs.searchqa.world import World
from skill_gym.files import staged_dir

__all__ = [
    "DATA_SOURCE",
    "DEFAULT_ENTITIES",
    "KB_VERSION",
    "QUESTION_TYPES",
    "SEARCH_R1_INSTRUCTION",
    "KnowledgeBase",
    "embedded_kb_dir",
    "generate",
    "search_r1_prompt",
    "write_kb",
]

KB_VERSION = "v4"
"""Bumped whenever generation changes, so caches of older worlds are not reused."""

DEFAULT_ENTITIES = 3000
"""Entities of the default world: about 12,600 passages."""

DATA_SOURCE = "skillgym_kb"
"""``data_source`` of every embedded question."""


SEARCH_R1_INSTRUCTION = (
    "You must conduct reasoning inside <think> and </think> first every time you get new information. After "
    "reasoning, if you find you lack some knowledge, you can call a search engine by <search> query </search> and "
    "it will return the top searched results between <information> and </information>. You can search as many "
    "times as your want. If you find no further external knowledge needed, you can directly provide the answer "
    "inside <answer> and </answer>, without detailed illustrations. For example, <answer> Beijing </answer>."
)
"""The middle of Search-R1's ``base`` prompt: how to think, search and answer (upstream's wording, typo kept)."""


def search_r1_prompt(question: str) -> str:
    """Search-R1's ``base`` user prompt for ``question`` (``scripts/data_process/nq_search.py``)."""
    return f"Answer the given question. {SEARCH_R1_INSTRUCTION} Question: {question}\n"


@dataclasses.dataclass
class KnowledgeBase:
    """A generated world: corpus rows and Search-R1 question rows per split."""

    corpus: list[dict[str, str]]
    questions: dict[str, list[dict[str, Any]]]


def _rows(items: list[dict[str, Any]], split: str, kind: str, start: int) -> list[dict[str, Any]]:
    """``items`` (a pool's questions of type ``kind``) as Search-R1 rows of ``split``, numbered from ``start``."""
    rows = []
    for index, item in enumerate(items, start=start):
        question = item["question"].strip()
        if not question.endswith("?"):
            question += "?"
        answers = list(dict.fromkeys(item["answers"]))
        rows.append({
            "id": f"{split}_{index}",
            "question": question,
            "golden_answers": answers,
            "data_source": DATA_SOURCE,
            "prompt": [{"role": "user", "content": search_r1_prompt(question)}],
            "ability": "fact-reasoning",
            "reward_model": {"style": "rule", "ground_truth": {"target": answers}},
            "extra_info": {"split": split, "index": index},
            "skill_type": kind,
            "evidence": item["evidence"],
        })  # fmt: skip
    return rows


def generate(n_entities: int = DEFAULT_ENTITIES, seed: int = 0, n_train: int = 500, n_test: int = 100) -> KnowledgeBase:
    """Generate the world, its corpus and ``n_train``/``n_test`` questions per type (fewer if the world is small).

    Train and test never share a question; the same arguments always give the same result.

    >>> kb = generate(n_entities=300, n_train=5, n_test=2)
    >>> len(kb.corpus) > 1000, len(kb.questions["test"]), kb.questions["test"][0]["skill_type"]
    (True, 8, 'direct_retrieval')
    """
    rng = random.Random(f"searchqa-kb/{KB_VERSION}/{seed}")
    world = World(n_entities, rng)
    corpus = build_corpus(world, rng)
    questions: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    for kind in QUESTION_TYPES:
        pool = question_pool(world, kind, rng)
        n_te = min(n_test, len(pool) // 5)
        test, train = pool[:n_te], pool[n_te : n_te + n_train]
        questions["test"] += _rows(test, "test", kind, len(questions["test"]))
        questions["train"] += _rows(train, "train", kind, len(questions["train"]))
    return KnowledgeBase(corpus=corpus, questions=questions)


def write_kb(folder: str | os.PathLike[str], kb: KnowledgeBase) -> Path:
    """Write ``corpus.jsonl``, ``train.parquet``, ``test.parquet`` and ``manifest.json`` into ``folder``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_corpus(kb.corpus, folder / "corpus.jsonl")
    for split, rows in kb.questions.items():
        pq.write_table(pa.Table.from_pylist(rows), folder / f"{split}.parquet")
    manifest = {"version": KB_VERSION, "passages": len(kb.corpus)}
    manifest |= {f"{split}_questions": len(rows) for split, rows in kb.questions.items()}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return folder


def embedded_kb_dir(n_entities: int = DEFAULT_ENTITIES, seed: int = 0) -> Path:
    """The folder of the embedded knowledge base, generated on first use into the project cache.

    Generation (a few seconds) happens once under an inter-process lock, in a temporary folder renamed into
    place, so concurrent workers and interrupted runs never see a half-written folder.
    """
    root = cache_dir() / "searchqa"
    folder = root / f"kb-{KB_VERSION}-{n_entities}-{seed}"
    if (folder / "manifest.json").is_file():
        return folder
    with file_lock(root / f"kb-{KB_VERSION}-{n_entities}-{seed}.lock"):
        if not (folder / "manifest.json").is_file():
            with staged_dir(folder) as staging:
                write_kb(staging, generate(n_entities, seed))
    return folder


def main(argv: list[str] | None = None) -> int:
    """``python -m skill_gym.envs.searchqa.kb OUT [--entities N]``: write a knowledge base of any size to a folder."""
    parser = argparse.ArgumentParser(prog="python -m skill_gym.envs.searchqa.kb", description=main.__doc__)
    parser.add_argument("out", help="folder to write corpus.jsonl, train.parquet, test.parquet and manifest.json")
    parser.add_argument("--entities", type=int, default=DEFAULT_ENTITIES, help="world size (24000: ~100k passages)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=500, help="train questions per type")
    parser.add_argument("--test", type=int, default=100, help="test questions per type")
    args = parser.parse_args(argv)
    try:
        kb = generate(args.entities, args.seed, n_train=args.train, n_test=args.test)
    except ValueError as error:
        parser.error(str(error))
    folder = write_kb(args.out, kb)
    print(f"{folder}: {len(kb.corpus)} passages, {len(kb.questions['train'])} train / {len(kb.questions['test'])} test")
    return 0


if __name__ == "__main__":
    sys.exit(main())
