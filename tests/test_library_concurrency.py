"""Several real processes on one library file; a writer killed with SIGKILL."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

from skill_gym.library import Skill, SkillLibrary

DIM = 384


def _open(path) -> SkillLibrary:
    return SkillLibrary(path, encoder="all-MiniLM-L6-v2", dim=DIM)


def _vectors(seed: int, n: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _worker(path: str, worker: int, n_batches: int, batch: int, out: mp.Queue) -> None:
    lib = _open(path)
    rng = np.random.default_rng(worker)
    written = []
    for b in range(n_batches):
        vectors = _vectors(1000 * worker + b, batch)
        skills = [
            Skill(description=f"w{worker} b{b} i{i}", strategy=f"strategy {worker}-{b}-{i}", id=f"w{worker}-{b}-{i}")
            for i in range(batch)
        ]
        written += lib.add(skills, embeddings=vectors)
        lib.update_utilities([written[int(rng.integers(len(written)))]], reward=1.0)
        lib.update_utilities(["w0-0-0"], reward=1.0)  # every worker hits one shared row: no lost updates
        admitted = lib.admit(Skill(description=f"admitted by {worker} at {b}", strategy=f"a{worker}-{b}"), vectors[0])
        assert admitted.status in ("added", "merged")
    lib.close()
    out.put(written)


def test_four_processes_insert_and_update_concurrently(tmp_path):
    path = tmp_path / "shared.sqlite"
    seed = _open(path)
    seed.add([Skill(description="shared", strategy="shared", id="w0-0-0")], embeddings=_vectors(7, 1))
    seed.close()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(path), w, 10, 5, out)) for w in range(1, 5)]
    for p in procs:
        p.start()
    written = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    lib = _open(path)
    ids = {s.id for s in lib.skills()}
    assert all(set(w) <= ids for w in written)
    assert sum(len(w) for w in written) == 200
    assert lib.get("w0-0-0").n_retrieved == 40  # 4 workers x 10 batches, none lost
    assert len(lib._index) == len(lib)
    labels, vectors = lib.store.embeddings()
    for label, vector in zip(labels[::17], vectors[::17], strict=True):
        assert lib.search(vector, 1)[0][0] == label
    lib.close()


_KILLED_WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from skill_gym.library import Skill, SkillLibrary
    lib = SkillLibrary(sys.argv[1], encoder="all-MiniLM-L6-v2", dim=384)
    rng = np.random.default_rng(0)
    i = 0
    while True:
        batch = [Skill(description=f"k{i + j}", strategy=f"s{i + j}", id=f"k{i + j}") for j in range(20)]
        vectors = rng.standard_normal((20, 384)).astype(np.float32)
        lib.add(batch, embeddings=vectors)
        print(" ".join(s.id for s in batch), flush=True)  # acknowledged
        if i % 100 == 0:
            lib.save_index()
        i += 20
    """
)


def test_sigkilled_writer_loses_nothing_acknowledged(tmp_path):
    path = tmp_path / "killed.sqlite"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    acknowledged: list[str] = []
    deadline = time.time() + 120
    while len(acknowledged) < 400 and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acknowledged += line.split()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    assert len(acknowledged) >= 400, "the writer did not get going"
    lib = _open(path)
    ids = {s.id for s in lib.skills()}
    assert set(acknowledged) <= ids
    assert len(lib._index) == len(lib) == len(ids)
    labels, vectors = lib.store.embeddings()
    for label, vector in zip(labels[::25], vectors[::25], strict=True):
        assert lib.search(vector, 1)[0][0] == label
    lib.close()


def test_threads_share_one_encoder_and_its_small_cache(encoder):
    from concurrent.futures import ThreadPoolExecutor

    from skill_gym.library import SentenceEncoder

    shared = SentenceEncoder(cache_size=2)  # six texts through a two-entry cache: evictions all the time
    texts = [f"how do I {verb} the {noun}?" for verb in ("heat", "cool") for noun in ("mug", "apple", "lamp")]
    expected = {text: vector for text, vector in zip(texts, encoder.encode(texts), strict=True)}

    def work(worker: int) -> list[tuple[str, np.ndarray]]:
        out = []
        for i in range(60):
            batch = [texts[(worker + i) % 6], texts[(worker * 5 + i) % 6]]
            out.extend(zip(batch, shared.encode(batch), strict=True))
        return out

    with ThreadPoolExecutor(4) as pool:
        results = [pair for part in pool.map(work, range(4)) for pair in part]
    assert len(results) == 4 * 60 * 2
    assert all(np.allclose(vector, expected[text], atol=1e-5) for text, vector in results)
