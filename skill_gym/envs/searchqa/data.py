"""Search-QA questions and corpus on disk: Search-R1's parquet rows and wiki-18 jsonl.

A data folder holds ``train.parquet`` / ``test.parquet`` (Search-R1's rows: ``id``, ``question``,
``golden_answers``, ``data_source``, ``prompt``, ``reward_model.ground_truth.target``, ...) and a corpus
(``corpus.jsonl``, or Search-R1's ``wiki-18.jsonl`` / ``.jsonl.gz``). The embedded folder is
:func:`~skill_gym.envs.searchqa.kb.embedded_kb_dir`; point ``data_dir=`` at Search-R1's processed data (with
the corpus copied or linked beside it, or passed as ``corpus=``) to run on upstream's questions.

The question type comes from a ``skill_type`` column when there is one (ours, and SKILL0's processed files,
where ``compare`` is read as ``comparison``), else from SKILL0's rule (:func:`question_type`).

This module holds :class:`QATask`, :class:`DataError`, :func:`load_tasks`, :func:`find_corpus` and
:func:`question_type`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["CORPUS_NAMES", "SPLITS", "DataError", "QATask", "find_corpus", "load_tasks", "question_type"]

SPLITS = ("train", "test")
CORPUS_NAMES = ("corpus.jsonl", "wiki-18.jsonl", "corpus.jsonl.gz", "wiki-18.jsonl.gz")
"""Corpus file names looked for in a data folder, in this order."""

_TYPE_ALIASES = {"compare": "comparison"}
_MULTI_HOP_SOURCES = ("hotpotqa", "2wikimultihopqa", "musique", "bamboogle")


class DataError(ValueError):
    """A question file is missing, unreadable or not in Search-R1's schema; the message names file and row."""


@dataclasses.dataclass(frozen=True)
class QATask:
    """One question: what the env asks, what it accepts, and (embedded data) the evidence the oracle follows."""

    task_id: str
    question: str
    golden_answers: tuple[str, ...]
    data_source: str
    task_type: str
    evidence: tuple[Mapping[str, str], ...] = ()


def question_type(question: str, data_source: str) -> str:
    """SKILL0's rule for the question type of a Search-R1 row (``examples/data_preprocess/generate_search_r1_val.py``).

    Two deliberate differences: the words are looked for in the question, not in the prompt (Search-R1's
    prompt always contains "for", in "information", so upstream never finds a comparison), and the other
    multi-hop sets (2wikimultihopqa, musique, bamboogle) count as ``multi_hop_reasoning``, not ``unknown``.

    >>> question_type("Which was founded earlier, Acme or Initech?", "hotpotqa")
    'comparison'
    >>> question_type("who wrote the raven?", "nq"), question_type("What is X's occupation?", "popqa")
    ('direct_retrieval', 'entity_attribute_lookup')
    """
    text = question.lower()
    if data_source == "popqa":
        return "entity_attribute_lookup"
    if data_source in ("nq", "triviaqa"):
        return "direct_retrieval"
    if "which" in text and "or" in text and "for" not in text:
        return "comparison"
    if data_source in _MULTI_HOP_SOURCES:
        return "multi_hop_reasoning"
    return "unknown"


def _strings(value: object) -> list[str] | None:
    """``value`` as a list of strings (parquet lists arrive as lists), else ``None``."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _golden(row: Mapping[str, Any]) -> list[str] | None:
    """``reward_model.ground_truth.target`` (what upstream scores against), else ``golden_answers``."""
    reward_model = row.get("reward_model")
    if isinstance(reward_model, Mapping):
        truth = reward_model.get("ground_truth")
        if isinstance(truth, Mapping) and truth.get("target") is not None:
            return _strings(truth["target"])
    return _strings(row.get("golden_answers"))


def _task(row: Mapping[str, Any], split: str, number: int, where: str) -> QATask:
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where} row {number}: 'question' must be a non-empty string")
    golden = _golden(row)
    if not golden or not any(g.strip() for g in golden):
        raise DataError(f"{where} row {number}: no golden answers (reward_model.ground_truth.target / golden_answers)")
    data_source = row.get("data_source") if isinstance(row.get("data_source"), str) else "unknown"
    row_id = row.get("id")
    row_id = str(row_id) if isinstance(row_id, str | int) and not isinstance(row_id, bool) else f"{split}_{number}"
    kind = row.get("skill_type")
    kind = _TYPE_ALIASES.get(kind, kind) if isinstance(kind, str) and kind else question_type(question, data_source)
    evidence = row.get("evidence") or ()
    if not isinstance(evidence, Sequence) or not all(isinstance(hop, Mapping) for hop in evidence):
        raise DataError(f"{where} row {number}: 'evidence' must be a list of records")
    return QATask(
        task_id=f"{split}/{data_source}/{row_id}",
        question=question.strip(),
        golden_answers=tuple(golden),
        data_source=data_source,
        task_type=kind,
        evidence=tuple(dict(hop) for hop in evidence),
    )


def load_tasks(folder: str | os.PathLike[str], split: str) -> list[QATask]:
    """The questions of ``folder/<split>.parquet``, in file order, with unique task ids.

    Raises :class:`DataError` for a missing or unreadable file or a row without a question or golden answers.
    A repeated id gets ``#<row>`` appended to its task id.
    """
    import pyarrow.parquet as pq

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = Path(folder) / f"{split}.parquet"
    if not path.is_file():
        raise DataError(f"no question file at {path} (expected Search-R1's {split}.parquet)")
    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises several types for damaged files
        raise DataError(f"{path}: not a readable parquet file ({type(error).__name__}: {error})") from None
    missing = {"question"} - set(table.column_names)
    if missing or not ({"golden_answers", "reward_model"} & set(table.column_names)):
        raise DataError(f"{path}: not Search-R1's schema (needs 'question' and 'golden_answers' or 'reward_model')")
    tasks = [_task(row, split, number, str(path)) for number, row in enumerate(table.to_pylist())]
    if not tasks:
        raise DataError(f"{path}: no questions")
    seen: set[str] = set()
    for number, task in enumerate(tasks):
        if task.task_id in seen:  # merged upstream files can repeat an id: the row number tells them apart
            tasks[number] = task = dataclasses.replace(task, task_id=f"{task.task_id}#{number}")
        seen.add(task.task_id)
    return tasks


def find_corpus(folder: str | os.PathLike[str]) -> Path:
    """The corpus file of a data folder (the first of :data:`CORPUS_NAMES` present)."""
    for name in CORPUS_NAMES:
        path = Path(folder) / name
        if path.is_file():
            return path
    raise DataError(f"no corpus in {folder}: expected one of {', '.join(CORPUS_NAMES)} (or pass corpus=PATH)")
