"""Leaderboard tables, recomputed from the transcripts, beside the papers' reported rows.

This module holds :func:`episode_metrics` (one transcript → the numbers a table uses), :func:`build_tables`
(every transcript under a run folder → one table per suite: the papers' columns as mean ± std over seeds, then
the cost columns no paper has: tokens per episode, steps, wall time, library size; the reported rows of
``reported.json`` beside ours) and the writers :func:`to_markdown`, :func:`to_csv` and :func:`to_json`.

Every number is a plain function of the transcript files: success is the fraction of episodes won, per task
type and over all; WebShop's score is the mean final ``info["score"]``; Search-QA's EM is the mean score (1 for
an exact match); steps count the env steps of the ``act`` phase; tokens sum the turns' prompt and response
tokens; wall time is the episode's seconds. Percentages have one decimal; std is over seeds (``ddof=1``).
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.leaderboard.specs import row_kind
from benchmarks.leaderboard.suites import SUITES, Suite, parse_suite
from benchmarks.leaderboard.transcripts import iter_transcripts

__all__ = ["COST_COLUMNS", "build_tables", "episode_metrics", "load_reported", "to_csv", "to_json", "to_markdown"]

COST_COLUMNS = (("tokens", "Tokens/ep"), ("steps", "Steps"), ("seconds", "Wall s/ep"), ("library_size", "Library"))
"""Cost columns: key in :func:`episode_metrics` → label."""

REPORTED_PATH = Path(__file__).with_name("reported.json")


def episode_metrics(transcript: dict[str, Any]) -> dict[str, Any]:
    """The numbers one episode contributes: outcome, task type, steps, tokens, seconds, library size, failure."""
    header, turns, result = transcript["header"], transcript["turns"], transcript["result"]
    return {
        "agent": str(header.get("agent", "")),
        "spec": str(header.get("spec", "")),
        "suite": str(header.get("suite", "")),
        "seed": int(header.get("seed", 0)),
        "episode": int(header.get("episode", 0)),
        "task_type": str(header.get("task_type", "")),
        "won": bool(result.get("won")),
        "score": float(result.get("score", 0.0)),
        "failed": bool(result.get("failed")),
        "steps": sum(1 for t in turns if t.get("phase", "act") == "act"),
        "tokens": sum(int(t.get("prompt_tokens", 0)) + int(t.get("response_tokens", 0)) for t in turns),
        "seconds": float(result.get("seconds", 0.0)),
        "library_size": int(result.get("library_size", 0)),
    }


def _suite_of(key: str) -> Suite | None:
    try:
        return parse_suite(key)
    except ValueError:
        return None


def _seed_values(suite: Suite, episodes: list[dict[str, Any]]) -> dict[str, float]:
    """One seed's numbers: the papers' columns (percent) and the cost columns (means; library: largest)."""

    def pct(values: list[float]) -> float | None:
        return 100.0 * statistics.fmean(values) if values else None

    outcome = "score" if suite.metric == "em" else "won"
    values: dict[str, float | None] = {}
    for task_type, label in suite.columns:
        values[label] = pct([float(e[outcome]) for e in episodes if e["task_type"] == task_type])
    if suite.metric == "score":
        values["Score"] = pct([e["score"] for e in episodes])
        values["Success"] = pct([float(e["won"]) for e in episodes])
    else:
        values[suite.all_label] = pct([float(e[outcome]) for e in episodes])
    for key, label in COST_COLUMNS:
        numbers = [float(e[key]) for e in episodes]
        values[label] = (max(numbers) if key == "library_size" else statistics.fmean(numbers)) if numbers else None
    return {k: v for k, v in values.items() if v is not None}


def suite_columns(suite: Suite) -> list[str]:
    """The papers' columns of ``suite``, in order, then the cost columns."""
    main = [label for _, label in suite.columns]
    main += ["Score", "Success"] if suite.metric == "score" else [suite.all_label]
    return main + [label for _, label in COST_COLUMNS]


def load_reported(path: Path = REPORTED_PATH) -> list[dict[str, Any]]:
    """The papers' reported rows (``reported.json``): method, model, size, suite, values, source."""
    rows = json.loads(Path(path).read_text(encoding="utf-8"))["rows"]
    return [r for r in rows if isinstance(r, dict) and r.get("suite") in SUITES]


def build_tables(out: Path, reported: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Tables of every suite played under ``out``: ``{"suites": {key: {columns, rows}}, "skipped": [...]}``."""
    grouped: dict[str, dict[str, dict[int, list[dict[str, Any]]]]] = defaultdict(lambda: defaultdict(dict))
    specs: dict[str, str] = {}
    skipped: list[str] = []
    for transcript, problem in iter_transcripts(out):
        if transcript is None:
            skipped.append(problem)
            continue
        try:
            e = episode_metrics(transcript)
        except (TypeError, ValueError, AttributeError) as problem:  # a field of the wrong type: not counted
            h = transcript["header"]
            skipped.append(f"transcript of {h.get('agent')!r} on {h.get('suite')!r}, seed {h.get('seed')!r}, "
                           f"episode {h.get('episode')!r}: malformed ({type(problem).__name__}: {problem})")  # fmt: skip
            continue
        grouped[e["suite"]][e["agent"]].setdefault(e["seed"], []).append(e)
        specs[e["agent"]] = e["spec"]
    reported = load_reported() if reported is None else reported
    tables: dict[str, Any] = {}
    for key in sorted(grouped):
        suite = _suite_of(key)
        if suite is None:
            skipped.append(f"suite {key!r} is unknown")
            continue
        columns = suite_columns(suite)
        rows = []
        for agent in sorted(grouped[key]):
            seeds = grouped[key][agent]
            per_seed = [_seed_values(suite, seeds[s]) for s in sorted(seeds)]
            cells = {}
            for column in columns:
                numbers = [v[column] for v in per_seed if column in v]
                if numbers:
                    std = statistics.stdev(numbers) if len(numbers) > 1 else 0.0
                    cells[column] = {"mean": statistics.fmean(numbers), "std": std, "n": len(numbers)}
            rows.append({
                "agent": agent, "source": "ours", "kind": row_kind(specs[agent]), "model": specs[agent], "size": "",
                "cells": cells,
                "seeds": len(seeds), "episodes": sum(len(v) for v in seeds.values()),
                "failed": sum(e["failed"] for v in seeds.values() for e in v),
            })  # fmt: skip
        for row in reported:
            if row["suite"] == suite.name:
                cells = {c: {"mean": float(v), "std": None, "n": 0} for c, v in row["values"].items() if c in columns}
                rows.append({"agent": row["method"], "source": f"reported: {row['source']}", "model": row["model"],
                             "size": row.get("size", ""), "cells": cells, "seeds": None, "episodes": None,
                             "failed": None})  # fmt: skip
        tables[key] = {"columns": columns, "rows": rows}
    return {"suites": tables, "skipped": skipped}


def _cell(cell: dict[str, Any] | None, column: str) -> str:
    if cell is None:
        return "–"
    digits = 0 if column in ("Tokens/ep", "Library") else (2 if column == "Wall s/ep" else 1)
    text = f"{cell['mean']:.{digits}f}"
    if cell.get("std") is not None and cell.get("n", 0) > 1:
        text += f" ± {cell['std']:.{digits}f}"
    return text


def _header(columns: list[str]) -> list[str]:
    return ["Agent", "Source", "Model", "Size", *columns, "Episodes", "Failed"]


def table_cells(row: dict[str, Any], columns: list[str]) -> list[str]:
    """One row as the strings the Markdown, CSV and HTML tables show."""
    count = "–" if row["episodes"] is None else f"{row['episodes']} ({row['seeds']} seeds)"
    failed = "–" if row["failed"] is None else str(row["failed"])
    source = f"{row['source']}: {row['kind']}" if row.get("kind") else row["source"]
    return [row["agent"], source, row["model"], row["size"] or "–",
            *(_cell(row["cells"].get(c), c) for c in columns), count, failed]  # fmt: skip


def to_markdown(tables: dict[str, Any]) -> str:
    """One Markdown table per suite (success / score / EM in percent, mean ± std over seeds)."""
    parts = []
    for key, table in tables["suites"].items():
        header = _header(table["columns"])
        lines = [f"### {key}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in table_cells(row, table["columns"])) + " |"
                  for row in table["rows"]]  # fmt: skip
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n" if parts else "(no finished episodes yet)\n"


def to_csv(tables: dict[str, Any]) -> str:
    """Long format: one line per suite, agent and column (mean, std, seeds)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["suite", "agent", "source", "model", "size", "column", "mean", "std", "seeds"])
    for key, table in tables["suites"].items():
        for row in table["rows"]:
            for column in table["columns"]:
                cell = row["cells"].get(column)
                if cell is not None:
                    std = "" if cell["std"] is None else f"{cell['std']:.6g}"
                    writer.writerow([key, row["agent"], row["source"], row["model"], row["size"], column,
                                     f"{cell['mean']:.6g}", std, cell["n"]])  # fmt: skip
    return buffer.getvalue()


def to_json(tables: dict[str, Any]) -> str:
    return json.dumps(tables, indent=2)
