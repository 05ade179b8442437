"""ALFWorld engine benchmark: the stock engine next to the accelerated one, in one run, on the same games.

Both are :class:`skill_gym.envs.alfworld.engine.GameEngine` (``accelerate=False`` is upstream's textworld
``PddlEnv`` untouched; ``accelerate=True`` is :mod:`skill_gym.envs.alfworld.accel`). Measured:

* per room (the train game with the fewest receptacles, and the one with the most): step median over
  ``--steps`` random admissible commands, played in lockstep by both engines (their outputs are compared at
  every step), and the median of ``--resets`` resets of the same game;
* new-game load + first reset: stock; accelerated with nothing cached ("cold"); accelerated with the game's
  translation record on disk ("precomputed", as after ``skill-gym alfworld precompute`` or an earlier run);
* a whole 50-step episode on a game never loaded before (load + reset + 50 random admissible steps), over
  ``--episode-games`` eval games, for the three set-ups above;
* async vector envs (``gym.make_vec("Alfworld-v0", vectorization_mode="async")``, one process per env) of
  ``--vec-envs`` sizes, random train games at every reset (cold loads included: the workers keep no
  translation records), env steps per second.

Targets: step >= 50x on the big room and >= 30x on the small one, same-game reset >= 100x,
new-game episode >= 10x (>= 30x precomputed).

Usage:
    python -m benchmarks.perf.alfworld_engine [--steps 100] [--out benchmarks/results/alfworld_engine.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.perf import alfworld_common as ac
from benchmarks.perf import common
from skill_gym.envs.alfworld.accel.documents import DOCUMENTS
from skill_gym.envs.alfworld.accel.translation import TRANSLATIONS
from skill_gym.envs.alfworld.engine import GameEngine
from skill_gym.envs.alfworld.suite import game_files, load_suite

SETUPS = ("stock", "cold", "precomputed")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="lockstep steps per room")
    parser.add_argument("--resets", type=int, default=10, help="same-game resets per room and engine")
    parser.add_argument("--episode-games", type=int, default=4, help="new games for the whole-episode figure")
    parser.add_argument("--episode-steps", type=int, default=50)
    parser.add_argument("--vec-envs", type=int, nargs="*", default=[8, 32])
    parser.add_argument("--vec-steps", type=int, default=30, help="timed vector steps (after 5 untimed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/alfworld_engine.json"))
    return parser.parse_args(argv)


def median_ms(samples: Sequence[float]) -> float:
    return 1e3 * statistics.median(samples)


def forget_translations(folder: Path | None) -> None:
    """Nothing of earlier games in memory; translation records read from (and written to) ``folder``."""
    TRANSLATIONS.clear()
    DOCUMENTS.clear()
    TRANSLATIONS.folder = folder


def new_engine(data: dict[str, Any], setup: str, records: Path) -> tuple[GameEngine, float]:
    """Load a game and reset it, timed, under one of :data:`SETUPS`."""
    if setup == "cold":
        forget_translations(Path(tempfile.mkdtemp(dir=records)))  # empty folder: translate now
    elif setup == "precomputed":
        forget_translations(records / "kept")
        TRANSLATIONS.get(data["pddl_domain"], data["pddl_problem"])  # make sure the record exists ...
        forget_translations(records / "kept")  # ... then forget all but the record on disk
    engine, load_s = common.timed(lambda: GameEngine(data, accelerate=setup != "stock"))
    _, reset_s = common.timed(engine.reset)
    return engine, load_s + reset_s


def bench_room(args: argparse.Namespace, record: dict[str, Any], records: Path) -> dict[str, Any]:
    data = game_files(record)[1]
    stock, stock_load = new_engine(data, "stock", records)
    fast, cold_load = new_engine(data, "cold", records)
    fast2, pre_load = new_engine(data, "precomputed", records)
    fast2.close()
    rng = random.Random(args.seed)
    steps: dict[str, list[float]] = {"stock": [], "accelerated": []}
    mismatches = 0
    for _ in range(args.steps):
        command = rng.choice(stock.last.admissible_commands)
        a, t_stock = common.timed(lambda c=command: stock.step(c))
        b, t_fast = common.timed(lambda c=command: fast.step(c))
        steps["stock"].append(t_stock)
        steps["accelerated"].append(t_fast)
        mismatches += a != b
    resets = {"stock": [common.timed(stock.reset)[1] for _ in range(args.resets)]}
    resets["accelerated"] = [common.timed(fast.reset)[1] for _ in range(args.resets)]
    stock.close()
    fast.close()
    out = {
        "task_id": record["task_id"],
        "commands_per_step": len(fast.last.admissible_commands),
        "mismatches": mismatches,
        "step_ms": {k: median_ms(v) for k, v in steps.items()},
        "reset_ms": {k: median_ms(v) for k, v in resets.items()},
        "new_game_load_reset_ms": {"stock": 1e3 * stock_load, "cold": 1e3 * cold_load, "precomputed": 1e3 * pre_load},
    }
    out["step_speedup"] = out["step_ms"]["stock"] / out["step_ms"]["accelerated"]
    out["reset_speedup"] = out["reset_ms"]["stock"] / out["reset_ms"]["accelerated"]
    out["load_speedup"] = {s: 1e3 * stock_load / out["new_game_load_reset_ms"][s] for s in ("cold", "precomputed")}
    return out


def bench_episodes(args: argparse.Namespace, games: list[dict[str, Any]], records: Path) -> dict[str, Any]:
    """Load + reset + ``episode_steps`` random steps on a game never loaded before, per set-up."""
    times: dict[str, list[float]] = {s: [] for s in SETUPS}
    for record in games:
        data = game_files(record)[1]
        for setup in SETUPS:
            rng = random.Random(args.seed)
            engine, load_s = new_engine(data, setup, records)  # timed: the engine's load and reset only
            t = time.perf_counter()
            for _ in range(args.episode_steps):
                engine.step(rng.choice(engine.last.admissible_commands))
            times[setup].append(load_s + time.perf_counter() - t)
            engine.close()
    medians = {s: median_ms(v) for s, v in times.items()}
    return {
        "games": [r["task_id"] for r in games],
        "episode_ms": medians,
        "speedup": {s: medians["stock"] / medians[s] for s in ("cold", "precomputed")},
    }


def bench_vector(args: argparse.Namespace, n: int, accelerate: bool) -> dict[str, Any]:
    vec, make_s = ac.make_vector(n, "async", accelerate=accelerate)
    try:
        run = ac.step_vector(vec, args.vec_steps, 5, args.seed)
    finally:
        vec.close()
    return {
        "envs": n,
        "accelerated": accelerate,
        "make_s": make_s,
        "first_reset_s": run["first_reset_s"],
        "steps_per_s": n * args.vec_steps / run["elapsed_s"],
        "worker_cpu_ms_per_step": 1e3 * run["worker_cpu_s"] / (n * args.vec_steps),
        "ended_at_last_step": run["ended_at_last_step"],
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    suite = load_suite()["games"]
    counts = ac.receptacle_counts()
    rooms = ac.pick_rooms()
    by_id = {r["task_id"]: r for r in suite}
    load_before = os.getloadavg()
    results: dict[str, Any] = {
        "machine": common.machine_info(ac.PACKAGES),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        records = Path(tmp)
        (records / "kept").mkdir()
        results["rooms"] = {}
        for room, tid in (("small", rooms["small"]), ("big", rooms["large"])):
            r = results["rooms"][room] = bench_room(args, by_id[tid], records)
            print(
                f"{room:>5} room ({counts[tid]} receptacles, {r['commands_per_step']} commands): "
                f"step {r['step_ms']['stock']:.1f} -> {r['step_ms']['accelerated']:.2f} ms ({r['step_speedup']:.0f}x), "
                f"reset {r['reset_ms']['stock']:.0f} -> {r['reset_ms']['accelerated']:.2f} ms ({r['reset_speedup']:.0f}x), "
                f"new-game load+reset {r['new_game_load_reset_ms']['stock']:.0f} ms -> "
                f"{r['new_game_load_reset_ms']['cold']:.0f} cold ({r['load_speedup']['cold']:.1f}x) / "
                f"{r['new_game_load_reset_ms']['precomputed']:.0f} precomputed ({r['load_speedup']['precomputed']:.1f}x), "
                f"{r['mismatches']} mismatches",
                flush=True,
            )
        eval_games = [r for r in suite if r["split"] == "eval_in_distribution"]
        games = random.Random(args.seed).sample(eval_games, args.episode_games)
        ep = results["episodes"] = bench_episodes(args, games, records)
        print(
            f"new-game {args.episode_steps}-step episode: stock {ep['episode_ms']['stock']:.0f} ms, "
            f"accelerated {ep['episode_ms']['cold']:.0f} ms cold ({ep['speedup']['cold']:.1f}x), "
            f"{ep['episode_ms']['precomputed']:.0f} ms precomputed ({ep['speedup']['precomputed']:.1f}x)",
            flush=True,
        )
    TRANSLATIONS.folder = None
    os.environ["SKILL_GYM_ALFWORLD_DISK_TRANSLATIONS"] = "0"  # spawned workers translate every new game
    results["vector"] = []
    for n in args.vec_envs:
        pair = [bench_vector(args, n, accelerate) for accelerate in (False, True)]
        results["vector"] += pair
        print(
            f"async vector env, {n} envs: stock {pair[0]['steps_per_s']:.1f} steps/s, "
            f"accelerated {pair[1]['steps_per_s']:.1f} steps/s ({pair[1]['steps_per_s'] / pair[0]['steps_per_s']:.1f}x)",
            flush=True,
        )
    rooms = results["rooms"]
    results["targets"] = {
        "step_big_50x": rooms["big"]["step_speedup"] >= 50,
        "step_small_30x": rooms["small"]["step_speedup"] >= 30,
        "reset_100x": min(rooms[r]["reset_speedup"] for r in rooms) >= 100,
        "episode_10x": ep["speedup"]["cold"] >= 10,
        "episode_precomputed_30x": ep["speedup"]["precomputed"] >= 30,
        "no_mismatches": all(rooms[r]["mismatches"] == 0 for r in rooms),
    }
    results["loadavg"] = {"before": load_before, "after": os.getloadavg()}
    print("targets:", json.dumps(results["targets"]))
    common.write_json(args.out, results, indent=1)
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
