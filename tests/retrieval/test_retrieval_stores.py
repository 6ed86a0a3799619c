"""Vector stores: the same contract in memory (numpy and pure Python) and on real chromadb."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from retrieval_helpers import HAS_CHROMA

from sqlagent import ConfigError
from sqlagent.retrieval import (
    ChromaVectorStore,
    InMemoryVectorStore,
    VectorStore,
    http_chroma_client,
    persistent_chroma_client,
)

needs_chroma = pytest.mark.skipif(not HAS_CHROMA, reason="chromadb is not installed")

VECTORS = {"a": [1.0, 0.0, 0.0], "b": [0.8, 0.6, 0.0], "c": [0.0, 0.0, 2.0]}


@pytest.fixture(params=["numpy", "python", "chroma"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    if request.param == "chroma":
        if not HAS_CHROMA:
            pytest.skip("chromadb is not installed")
        yield ChromaVectorStore.persistent(tmp_path / "chroma", "test-collection")
    else:
        yield InMemoryVectorStore(use_numpy=request.param == "numpy")


def _fill(store: VectorStore) -> None:
    ids = list(VECTORS)
    store.upsert(
        ids,
        [VECTORS[i] for i in ids],
        [f"text {i}" for i in ids],
        [{"kind": "t" if i != "c" else "d", "name": i} for i in ids],
    )


def test_query_ranks_by_cosine_and_filters(store: VectorStore) -> None:
    assert store.query([1.0, 0.0, 0.0], 3) == []  # empty store
    _fill(store)
    assert store.count() == 3
    hits = store.query([1.0, 0.1, 0.0], 2)
    assert [h.id for h in hits] == ["a", "b"]
    assert hits[0].score == pytest.approx(0.995, abs=1e-3)
    assert hits[0].metadata == {"kind": "t", "name": "a"}
    assert [h.id for h in store.query([0.0, 0.0, 1.0], 5, {"kind": "d"})] == ["c"]
    assert [h.id for h in store.query([0.0, 0.0, 1.0], 5, {"kind": "t", "name": "b"})] == ["b"]
    assert store.query([0.0, 0.0, 1.0], 5, {"kind": "nothing"}) == []
    assert store.query([1.0, 0.0, 0.0], 0) == []


def test_upsert_replaces_and_delete_removes(store: VectorStore) -> None:
    _fill(store)
    store.upsert(["a"], [[0.0, 0.0, 1.0]], ["new a"], [{"kind": "d", "name": "a"}])
    assert store.count() == 3
    assert store.metadata()["a"] == {"kind": "d", "name": "a"}
    assert store.query([0.0, 0.0, 1.0], 1, {"kind": "d", "name": "a"})[0].id == "a"
    store.delete(["a", "b", "missing"])
    assert set(store.metadata()) == {"c"}
    assert store.count() == 1


def test_upsert_checks_its_arguments(store: VectorStore) -> None:
    with pytest.raises(ConfigError, match="as many"):
        store.upsert(["a", "b"], [[1.0]], ["t"], [{}])
    with pytest.raises(ConfigError, match="unique"):
        store.upsert(["a", "a"], [[1.0], [1.0]], ["t", "t"], [{}, {}])


def test_numpy_and_pure_python_agree() -> None:
    fast, slow = InMemoryVectorStore(use_numpy=True), InMemoryVectorStore(use_numpy=False)
    for s in (fast, slow):
        _fill(s)
    for query in ([1.0, 1.0, 1.0], [0.2, -0.3, 0.9], [0.0, 0.0, 0.0]):
        a, b = fast.query(query, 3), slow.query(query, 3)
        assert [h.id for h in a] == [h.id for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-6)


@needs_chroma
def test_chroma_persists_across_clients(tmp_path: Path) -> None:
    first = ChromaVectorStore.persistent(tmp_path, "persisted")
    _fill(first)
    again = ChromaVectorStore(persistent_chroma_client(tmp_path), "persisted")
    assert again.count() == 3
    assert again.metadata()["b"] == {"kind": "t", "name": "b"}
    assert again.name == "persisted"


@needs_chroma
def test_chroma_clients_have_telemetry_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import chromadb

    assert persistent_chroma_client(tmp_path).get_settings().anonymized_telemetry is False
    seen: dict[str, Any] = {}

    def fake_http_client(**kwargs: Any) -> object:
        seen.update(kwargs)
        return object()

    monkeypatch.setattr(chromadb, "HttpClient", fake_http_client)
    http_chroma_client("chroma.internal", 8001, ssl=True, headers={"X-Token": "t"})
    assert seen["settings"].anonymized_telemetry is False
    assert (seen["host"], seen["port"], seen["ssl"]) == ("chroma.internal", 8001, True)
    assert seen["headers"] == {"X-Token": "t"}


@needs_chroma
def test_chroma_never_builds_its_default_embedding_function(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """chroma's default embedding function downloads an ONNX model: it must never be built or
    called, nor may chroma compute any embedding itself, nor rebuild one per query."""
    from chromadb.api import types
    from chromadb.utils.embedding_functions import onnx_mini_lm_l6_v2

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("chroma's default embedding function was used")

    monkeypatch.setattr(types.DefaultEmbeddingFunction, "__init__", forbidden)
    monkeypatch.setattr(types.DefaultEmbeddingFunction, "__call__", forbidden)
    monkeypatch.setattr(onnx_mini_lm_l6_v2.ONNXMiniLM_L6_V2, "__init__", forbidden)

    store = ChromaVectorStore.persistent(tmp_path, "no-default-ef", embedder="test")
    _fill(store)
    builds: list[dict[str, Any]] = []
    supplied = type(store._get()._embedding_function)
    original = supplied.build_from_config

    def counting(config: dict[str, Any]) -> Any:
        builds.append(config)
        return original(config)

    monkeypatch.setattr(supplied, "build_from_config", staticmethod(counting))
    for _ in range(3):
        store.query([1.0, 0.0, 0.0], 2, {"kind": "t"})
        store.metadata()
        store.count()
    assert builds == []  # nothing is rebuilt per call
    assert store._get().configuration_json["embedding_function"]["name"] == "sqlagent-supplied"
    with pytest.raises(ConfigError, match="sqlagent supplies every embedding"):
        store._get().add(ids=["z"], documents=["chroma may not embed this"])


@needs_chroma
def test_chroma_refuses_to_mix_embedders(tmp_path: Path) -> None:
    client = persistent_chroma_client(tmp_path)
    first = ChromaVectorStore(client, "vectors", embedder="model-a")
    _fill(first)
    assert ChromaVectorStore(client, "vectors", embedder="model-a").count() == 3
    assert ChromaVectorStore(client, "vectors").count() == 3  # no name given: no check
    with pytest.raises(ConfigError, match="holds vectors of embedder 'model-a', not 'model-b'"):
        ChromaVectorStore(client, "vectors", embedder="model-b").count()


@needs_chroma
def test_chroma_bad_collection_name_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot open chroma collection 'x'"):
        ChromaVectorStore.persistent(tmp_path, "x").count()
