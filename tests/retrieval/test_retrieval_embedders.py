"""Embedders: the hashing fallback, MiniLM loaded offline and lazily, and the default choice."""

from __future__ import annotations

import importlib.util
import logging
import math
import subprocess
import sys
from pathlib import Path

import pytest
from retrieval_helpers import HAS_MINILM

from sqlagent import ConfigError
from sqlagent.retrieval import (
    HashingEmbedder,
    SentenceTransformerEmbedder,
    default_embedder,
)
from sqlagent.retrieval._text import identifier_words, stem, terms


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_identifier_words_and_terms() -> None:
    assert identifier_words("Singer_ID") == ["singer", "id"]
    assert identifier_words("FlightNo") == ["flight", "no"]
    assert identifier_words("HTTPServer2xx") == ["http", "server", "2", "xx"]
    assert [stem(w) for w in ("singers", "countries", "matches", "status", "bus")] == [
        "singer", "country", "match", "status", "bus",
    ]  # fmt: skip
    assert terms("How many singers are from France?") == ["singer", "france"]


def test_hashing_embedder_is_deterministic_and_unit_length(hashing: HashingEmbedder) -> None:
    a, b, empty = hashing.embed(["singers by country", "singers by country", "?"])
    assert a == b
    assert len(a) == 2048
    assert math.isclose(math.sqrt(sum(v * v for v in a)), 1.0)
    assert not any(empty)  # nothing to hash: a zero vector, not an error
    assert hashing.name == "hashing-v2:2048"
    assert HashingEmbedder(64).name == "hashing-v2:64"
    with pytest.raises(ConfigError):
        HashingEmbedder(8)


@pytest.mark.slow
def test_hashing_embedder_is_stable_across_processes(hashing: HashingEmbedder) -> None:
    code = (
        "from sqlagent.retrieval import HashingEmbedder;"
        "v = HashingEmbedder().embed(['table singer: Singer_ID, Name'])[0];"
        "print(repr([i for i, x in enumerate(v) if x]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    [vector] = hashing.embed(["table singer: Singer_ID, Name"])
    assert out.stdout.strip() == repr([i for i, x in enumerate(vector) if x])


def test_hashing_embedder_matches_word_forms(hashing: HashingEmbedder) -> None:
    question, singer, stadium = hashing.embed(
        ["How many singers do we have?", "table singer: Singer_ID, Name, Country", "table stadium"]
    )
    assert _cosine(question, singer) > _cosine(question, stadium)


def test_default_embedder_prefers_minilm_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="sqlagent.retrieval"):
        embedder = default_embedder()
    expected = "sentence-transformers:all-MiniLM-L6-v2" if HAS_MINILM else "hashing-v2:2048"
    assert embedder.name == expected
    assert expected in caplog.text


def test_default_embedder_falls_back_to_hashing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "sentence_transformers" else real(name)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with caplog.at_level(logging.INFO, logger="sqlagent.retrieval"):
        embedder = default_embedder()
    assert isinstance(embedder, HashingEmbedder)
    assert "not installed" in caplog.text


@pytest.mark.slow
def test_nothing_heavy_is_imported_or_loaded_before_first_use() -> None:
    code = (
        "import sys, sqlagent.retrieval as r;"
        "e = r.SentenceTransformerEmbedder(); r.default_embedder(); r.RetrievalIndex;"
        "r.OnnxEmbedder('/nonexistent'); r.default_embedder('/nonexistent');"
        "r.ChromaVectorStore; r.InMemoryVectorStore(use_numpy=False);"
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers', 'chromadb',"
        " 'onnxruntime', 'tokenizers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sentence_transformer_embedder_checks_its_configuration(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        SentenceTransformerEmbedder(batch_size=0)
    missing = SentenceTransformerEmbedder(tmp_path / "nowhere")
    assert missing.name == "sentence-transformers:nowhere"
    assert missing.embed([]) == []  # nothing to embed: nothing is loaded
    with pytest.raises(ConfigError, match="model folder not found"):
        missing.embed(["x"])


@pytest.mark.slow
def test_minilm_embeds_offline_into_unit_vectors(minilm: SentenceTransformerEmbedder) -> None:
    question, singer, stadium = minilm.embed(
        ["How many singers do we have?", "table singer: name, country, age", "table stadium"]
    )
    assert len(question) == 384
    assert math.isclose(math.sqrt(sum(v * v for v in question)), 1.0, rel_tol=1e-5)
    assert _cosine(question, singer) > _cosine(question, stadium)
    assert minilm.model() is minilm.model()  # loaded once, kept in the instance
    assert "MiniLM" in repr(minilm)
