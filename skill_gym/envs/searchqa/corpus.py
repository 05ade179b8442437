"""Wiki-18 passages: the corpus file, its checks and fingerprint, and the parts of one passage.

This module holds:

* :class:`CorpusError`, :func:`read_corpus`, :func:`write_corpus`, :func:`check_corpus`,
  :func:`corpus_fingerprint` — wiki-18 jsonl (``{"id", "contents": "\\"Title\\"\\ntext"}``), checked line by line;
* :func:`passage_title`, :func:`passage_text`, :func:`format_passages` — the parts of a passage and the text
  Search-R1's client puts inside ``<information>`` (``Doc 1(Title: t) text``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from skill_gym.envs.searchqa.protocol import Hit
from skill_gym.files import file_sha256

__all__ = [
    "CorpusError",
    "check_corpus",
    "corpus_fingerprint",
    "format_passages",
    "passage_text",
    "passage_title",
    "read_corpus",
    "write_corpus",
]


class CorpusError(ValueError):
    """A corpus line or record is not wiki-18 jsonl; the message names the line or record."""


def _check_record(record: object, where: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise CorpusError(f"{where}: expected a JSON object with 'id' and 'contents', got {type(record).__name__}")
    if not isinstance(record.get("contents"), str):
        raise CorpusError(f"{where}: 'contents' must be a string ('\"Title\"\\ntext')")
    if isinstance(record.get("id"), bool) or not isinstance(record.get("id"), str | int):
        raise CorpusError(f"{where}: 'id' must be a string or an integer")
    return record


def read_corpus(path: str | Path) -> list[dict[str, Any]]:
    """The passages of a wiki-18 jsonl file (``.jsonl`` or ``.jsonl.gz``), one JSON object per line.

    Blank lines are skipped; anything else that is not an object with a string ``contents`` and a string or
    integer ``id`` raises :class:`CorpusError` naming the line.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "corpus.jsonl"
    >>> _ = path.write_text('{"id": "1", "contents": "\\\\"Ada\\\\"\\\\nAda wrote notes."}\\n{"id": 2')
    >>> read_corpus(path)
    Traceback (most recent call last):
    ...
    skill_gym.envs.searchqa.corpus.CorpusError: ...corpus.jsonl line 2: not valid JSON (Expecting ',' delimiter)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no corpus file at {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    documents = []
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise CorpusError(f"{path} line {number}: not valid JSON ({error.msg})") from None
                documents.append(_check_record(record, f"{path} line {number}"))
    except (UnicodeDecodeError, OSError, EOFError) as error:
        raise CorpusError(f"{path}: unreadable ({error})") from None
    if not documents:
        raise CorpusError(f"{path}: the corpus has no passages")
    return documents


def write_corpus(documents: Sequence[dict[str, Any]], path: Path) -> None:
    """Write ``documents`` to ``path`` as wiki-18 jsonl (UTF-8, one record per line)."""
    with open(path, "w", encoding="utf-8") as handle:
        for record in documents:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def check_corpus(corpus: Iterable[object]) -> list[dict[str, Any]]:
    """``corpus`` as a list of wiki-18 records, or :class:`CorpusError` naming the first bad record."""
    if isinstance(corpus, str | bytes | dict):
        raise CorpusError(f"the corpus must be a sequence of records or a path, got {type(corpus).__name__}")
    documents = [_check_record(record, f"record {i}") for i, record in enumerate(corpus)]
    if not documents:
        raise CorpusError("the corpus has no passages")
    return documents


def corpus_fingerprint(corpus: Sequence[dict[str, Any]] | str | Path) -> str:
    """A SHA-256 hex digest naming the corpus: of the file's bytes for a path, of the records for a sequence."""
    if isinstance(corpus, str | Path):
        return file_sha256(corpus, prefix=b"file\0")
    digest = hashlib.sha256(b"records\0")
    for record in corpus:
        digest.update(json.dumps(record, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        digest.update(b"\n")
    return digest.hexdigest()


def passage_title(contents: str) -> str:
    """The title of a wiki-18 passage, without its quotes.

    >>> passage_title('"Ada Lovelace"\\nAda wrote the first program.')
    'Ada Lovelace'
    """
    return contents.split("\n", 1)[0].strip('"')


def passage_text(contents: str) -> str:
    """The text of a wiki-18 passage (everything after the title line).

    >>> passage_text('"Ada Lovelace"\\nAda wrote the first program.')
    'Ada wrote the first program.'
    """
    return contents.split("\n", 1)[1] if "\n" in contents else ""


def format_passages(hits: Sequence[Hit]) -> str:
    """The text Search-R1's client shows the agent for one query's hits (``_passages2string``).

    The title line is kept as it is in ``contents``, quotes included, as upstream does.

    >>> hit = {"document": {"id": "1", "contents": '"Ada Lovelace"\\nAda wrote the first program.'}, "score": 1.0}
    >>> format_passages([hit])
    'Doc 1(Title: "Ada Lovelace") Ada wrote the first program.\\n'
    """
    lines = []
    for rank, hit in enumerate(hits, start=1):
        contents = hit["document"]["contents"]
        title, _, text = contents.partition("\n")
        lines.append(f"Doc {rank}(Title: {title}) {text}\n")
    return "".join(lines)
