"""Transcripts of an engine playing a game: what the stock/accelerated equivalence checks compare.

:func:`play` drives a :class:`~skill_gym.envs.alfworld.engine.GameEngine` through a fixed script — reset, the
game's walkthrough, the planner's plan, a second reset, then ``random_steps`` commands drawn by a seeded RNG
from the admissible commands or from invalid ones (about one in four), with the planner's plan asked again
halfway and at the end — and yields one record per reset, step and plan: the command, the feedback text,
the ordered admissible commands, won, score, done, and the readable facts (sorted). Two engines that give
the same outputs give the same records, because the script only draws from what the engine returned.

:func:`digest` folds a transcript into one SHA-256. ``python -m skill_gym.envs.alfworld.accel.transcript
--out F [--no-plans]`` writes the digests of the stock engine over the embedded suite
(``tests/data/alfworld_stock_digests.json`` is the reference the tests compare the accelerated engine with;
about two hours on 2 cores with plans, one without); ``--check F`` plays the accelerated engine and prints
game by game whether it gives the same transcripts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import random
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["digest", "invalid_command", "iter_digests", "play", "reference_key"]

RANDOM_STEPS = 200
SEED = 20261122


def invalid_command(rng: random.Random, admissible: tuple[str, ...]) -> str:
    """A command the engine does not accept: made up, truncated, padded, mis-cased, or an empty one."""
    base = rng.choice(admissible) if admissible else "look"
    return rng.choice(
        [
            "",
            "   ",
            "jump over the moon",
            "help",
            base[: max(1, len(base) // 2)],
            base + " please",
            base.upper(),
            "go to nowhere 99",
            "x" * 300,
        ]
    )


def _record(kind: str, command: str | None, state: Mapping[str, Any], facts: bool) -> dict[str, Any]:
    record = {
        "kind": kind,
        "command": command,
        "feedback": str(state["feedback"]),
        "admissible": list(state["admissible_commands"]),
        "won": bool(state["won"]),
        "score": state.get("score"),
        "done": state.get("done"),
    }
    if facts:
        record["facts"] = sorted(str(fact) for fact in state["facts"])
    return record


def play(
    engine: Any, walkthrough: Iterable[str], seed: int = SEED, random_steps: int = RANDOM_STEPS, plans: bool = True
) -> Iterator[dict[str, Any]]:
    """The transcript of ``engine`` (a ``GameEngine``) on the fixed script described in the module docstring.

    ``plans=False`` leaves out the planner's plans (asking for one changes no state, so the other records are
    the same): the planner's searches are most of a transcript's time, up to minutes in a big kitchen.
    """
    facts = engine.facts

    def plan() -> Iterator[dict[str, Any]]:
        if plans:
            yield {"kind": "plan", "plan": engine.expert_plan()}

    engine.reset()
    yield _record("reset", None, engine.raw, facts)
    yield from plan()
    for command in walkthrough:
        engine.step(command)
        yield _record("step", command, engine.raw, facts)
    yield from plan()
    engine.reset()
    yield _record("reset", None, engine.raw, facts)
    rng = random.Random(seed)
    for i in range(random_steps):
        admissible = engine.last.admissible_commands
        command = invalid_command(rng, admissible) if rng.random() < 0.25 or not admissible else rng.choice(admissible)
        engine.step(command)
        yield _record("step", command, engine.raw, facts)
        if i == random_steps // 2:
            yield from plan()
    yield from plan()


def digest(records: Iterable[Mapping[str, Any]]) -> str:
    """One SHA-256 over a transcript's records (canonical JSON, one per line)."""
    h = hashlib.sha256()
    for record in records:
        h.update(json.dumps(record, sort_keys=True, separators=(",", ":")).encode())
        h.update(b"\n")
    return h.hexdigest()


def _game_digest(job: tuple[Mapping[str, Any], bool, int, bool]) -> tuple[str, str]:
    from skill_gym.envs.alfworld.engine import GameEngine
    from skill_gym.envs.alfworld.suite import game_files

    record, accelerate, random_steps, plans = job
    data = game_files(record)[1]
    engine = GameEngine(data, key=record["task_id"], facts=True, accelerate=accelerate)
    try:
        return record["task_id"], digest(play(engine, data["walkthrough"], random_steps=random_steps, plans=plans))
    finally:
        engine.close()


def iter_digests(
    records: Iterable[Mapping[str, Any]],
    accelerate: bool,
    random_steps: int = RANDOM_STEPS,
    processes: int = 1,
    plans: bool = True,
) -> Iterator[tuple[str, str]]:
    """``(task_id, transcript digest)`` as each game finishes; ``processes > 1`` plays them in spawned processes."""
    jobs = [(record, accelerate, random_steps, plans) for record in records]
    if processes <= 1:
        yield from map(_game_digest, jobs)
        return
    with multiprocessing.get_context("spawn").Pool(processes, maxtasksperchild=20) as pool:
        yield from pool.imap_unordered(_game_digest, jobs)


def reference_key(plans: bool) -> str:
    """Where a reference file keeps the digests of transcripts with (``digests``) or without plans."""
    return "digests" if plans else "step_digests"


def _write_reference(out_path: Path, records: list[Mapping[str, Any]], processes: int, plans: bool) -> int:
    from skill_gym.envs.alfworld.accel.versions import PINNED

    header = {"engine": "stock", "versions": PINNED, "random_steps": RANDOM_STEPS, "seed": SEED}
    out = json.loads(out_path.read_text()) if out_path.is_file() else dict(header)
    if {k: out.get(k) for k in header} != header:
        raise SystemExit(f"{out_path} was written with other settings; write to a new file")
    digests = dict(iter_digests(records, accelerate=False, processes=processes, plans=plans))
    out[reference_key(plans)] = dict(sorted(digests.items()))
    out_path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {len(digests)} {reference_key(plans)} to {out_path}")
    return 0


def _check_reference(path: Path, records: list[Mapping[str, Any]], processes: int, plans: bool) -> int:
    reference = json.loads(path.read_text())
    if (reference.get("random_steps"), reference.get("seed")) != (RANDOM_STEPS, SEED):
        raise SystemExit(f"{path} was written with another script (random_steps, seed)")
    if reference_key(plans) not in reference:
        raise SystemExit(
            f"{path} has no {reference_key(plans)}; write them with --out {path}{'' if plans else ' --no-plans'}"
        )
    expected = reference[reference_key(plans)]
    differ = []
    for i, (task_id, found) in enumerate(iter_digests(records, True, RANDOM_STEPS, processes, plans), 1):
        same = expected.get(task_id) == found
        if not same:
            differ.append(task_id)
        print(f"{i}/{len(records)} {'ok' if same else 'DIFFERS'} {task_id}", flush=True)
    print(f"{len(records) - len(differ)} of {len(records)} games as the stock engine; differ: {differ or 'none'}")
    return 1 if differ else 0


def main(argv: list[str] | None = None) -> int:
    from skill_gym.envs.alfworld.accel.versions import accelerator_problem
    from skill_gym.envs.alfworld.suite import load_suite

    parser = argparse.ArgumentParser(
        description="Write the stock engine's transcript digests over the embedded suite (--out), "
        "or check the accelerated engine against them (--check)."
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--out", type=Path, help="write the stock engine's digests, e.g. tests/data/...json")
    action.add_argument("--check", type=Path, help="play the accelerated engine and compare with this reference")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--every", type=int, default=1, help="only every Nth game")
    parser.add_argument("--limit", type=int, default=None, help="only the first N games (after --every)")
    parser.add_argument(
        "--no-plans", dest="plans", action="store_false", help="transcripts without the planner's plans (step_digests)"
    )
    args = parser.parse_args(argv)
    if accelerator_problem() is not None:
        raise SystemExit(f"the reference is for the pinned versions: {accelerator_problem()}")
    records = load_suite()["games"][:: args.every][: args.limit]
    if args.out is not None:
        return _write_reference(args.out, records, args.processes, args.plans)
    return _check_reference(args.check, records, args.processes, args.plans)


if __name__ == "__main__":
    raise SystemExit(main())
