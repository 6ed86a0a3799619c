"""Vector stores: where document vectors live. One small protocol, in-memory and chromadb."""

from __future__ import annotations

import contextlib
import functools
import heapq
import math
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlagent.errors import ConfigError, RetrievalError, SQLAgentError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

__all__ = [
    "ChromaVectorStore",
    "Hit",
    "InMemoryVectorStore",
    "VectorStore",
    "http_chroma_client",
    "persistent_chroma_client",
]

_BATCH = 512


@dataclass(frozen=True, slots=True)
class Hit:
    """One stored record found by a query; ``score`` is the cosine similarity (higher wins)."""

    id: str
    score: float
    metadata: Mapping[str, str] = field(default_factory=dict)


class VectorStore(Protocol):
    """A collection of (id, vector, text, metadata) records, searched by cosine similarity.

    Metadata values are strings. ``where`` filters a query by metadata equality (every pair must
    match). ``upsert`` replaces records with the same id. Embeddings are always supplied by the
    caller: a store never computes one itself. Texts are stored for people and tools that read
    the store; queries return ids, scores and metadata only (a retriever answers from its own
    approved documents, never from text a store hands back).
    """

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: Sequence[Sequence[float]],
        texts: Sequence[str],
        metadatas: Sequence[Mapping[str, str]],
    ) -> None: ...

    def query(
        self, embedding: Sequence[float], k: int, where: Mapping[str, str] | None = None
    ) -> list[Hit]: ...

    def delete(self, ids: Sequence[str]) -> None: ...

    def metadata(self) -> dict[str, dict[str, str]]:
        """Every stored id with its metadata."""
        ...

    def count(self) -> int: ...


def _check_lengths(
    ids: Sequence[str],
    embeddings: Sequence[Sequence[float]],
    texts: Sequence[str],
    metadatas: Sequence[Mapping[str, str]],
) -> None:
    if not len(ids) == len(embeddings) == len(texts) == len(metadatas):
        raise ConfigError(
            f"upsert needs as many embeddings, texts and metadatas as ids: {len(ids)} ids, "
            f"{len(embeddings)} embeddings, {len(texts)} texts, {len(metadatas)} metadatas"
        )
    if len(set(ids)) != len(ids):
        raise ConfigError("upsert ids must be unique")


def _matches(metadata: Mapping[str, str], where: Mapping[str, str] | None) -> bool:
    return where is None or all(metadata.get(key) == value for key, value in where.items())


@dataclass(slots=True)
class _Record:
    vector: list[float]
    norm: float
    text: str
    metadata: dict[str, str]


class InMemoryVectorStore:
    """An exact (brute-force) store in process memory: for tests and single-process use.

    Uses numpy when it is installed (``use_numpy=None``), plain Python otherwise; both give the
    same scores. The rows matching a ``where`` filter are remembered until the next change, so
    a query over a few thousand vectors is one matrix-vector product. Thread-safe.
    """

    def __init__(self, *, use_numpy: bool | None = None) -> None:
        self._np: Any = None
        if use_numpy is None or use_numpy:
            try:
                import numpy
            except ImportError:
                if use_numpy:
                    raise ConfigError("use_numpy=True but numpy is not installed") from None
            else:
                self._np = numpy
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()
        # derived from _records, dropped on every change:
        self._filtered: dict[tuple[tuple[str, str], ...], tuple[list[str], Any]] = {}
        self._matrix: Any = None  # numpy: unit vectors, one row per record in insertion order

    def __repr__(self) -> str:
        return f"InMemoryVectorStore(count={len(self._records)})"

    def _changed(self) -> None:
        self._filtered.clear()
        self._matrix = None

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: Sequence[Sequence[float]],
        texts: Sequence[str],
        metadatas: Sequence[Mapping[str, str]],
    ) -> None:
        _check_lengths(ids, embeddings, texts, metadatas)
        with self._lock:
            for id_, vector, text, meta in zip(ids, embeddings, texts, metadatas, strict=True):
                values = [float(v) for v in vector]
                norm = math.sqrt(sum(v * v for v in values))
                self._records[id_] = _Record(values, norm, text, dict(meta))
            self._changed()

    def delete(self, ids: Sequence[str]) -> None:
        with self._lock:
            for id_ in ids:
                self._records.pop(id_, None)
            self._changed()

    def metadata(self) -> dict[str, dict[str, str]]:
        with self._lock:
            return {id_: dict(r.metadata) for id_, r in self._records.items()}

    def count(self) -> int:
        return len(self._records)

    def query(
        self, embedding: Sequence[float], k: int, where: Mapping[str, str] | None = None
    ) -> list[Hit]:
        if k <= 0:
            return []
        with self._lock:
            ids, rows = self._rows(where)
            if not ids:
                return []
            if self._np is not None:
                array = self._numpy_scores(embedding, rows)
                best = self._np.argsort(-array, kind="stable")[:k].tolist()
                scores = array.tolist()
            else:
                scores = _python_scores(embedding, [self._records[i] for i in ids])
                best = heapq.nsmallest(k, range(len(ids)), key=lambda n: (-scores[n], n))
            return [
                Hit(ids[n], float(scores[n]), dict(self._records[ids[n]].metadata))
                for n in best
            ]  # fmt: skip

    def _rows(self, where: Mapping[str, str] | None) -> tuple[list[str], Any]:
        """The ids matching ``where`` and (numpy) their row numbers, remembered per filter."""
        key = tuple(sorted((where or {}).items()))
        found = self._filtered.get(key)
        if found is None:
            ids = [id_ for id_, r in self._records.items() if _matches(r.metadata, where)]
            rows = None
            if self._np is not None:
                position = {id_: n for n, id_ in enumerate(self._records)}
                rows = self._np.asarray([position[i] for i in ids], dtype=self._np.intp)
            found = self._filtered[key] = (ids, rows)
        return found

    def _numpy_scores(self, embedding: Sequence[float], rows: Any) -> Any:
        np = self._np
        if self._matrix is None:
            matrix = np.asarray([r.vector for r in self._records.values()], dtype=np.float32)
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            self._matrix = matrix / np.where(norms == 0, 1.0, norms)
        query = np.asarray(embedding, dtype=np.float32)
        qnorm = float(np.linalg.norm(query))
        if qnorm == 0:
            return np.zeros(len(rows), dtype=np.float32)
        matrix = self._matrix if len(rows) == len(self._matrix) else self._matrix[rows]
        return matrix @ (query / qnorm)


def _python_scores(embedding: Sequence[float], records: Iterable[_Record]) -> list[float]:
    qnorm = math.sqrt(sum(v * v for v in embedding))
    scores = []
    for record in records:
        if qnorm == 0 or record.norm == 0:
            scores.append(0.0)
            continue
        dot = sum(a * b for a, b in zip(embedding, record.vector, strict=False))
        scores.append(dot / (qnorm * record.norm))
    return scores


# -- chromadb --------------------------------------------------------------------------------------


def _chroma() -> Any:
    try:
        import chromadb
    except ImportError as exc:
        raise ConfigError(
            "ChromaVectorStore needs chromadb: pip install 'sqlagent[retrieval]'"
        ) from exc
    return chromadb


def _settings() -> Any:
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False)


def persistent_chroma_client(path: str | os.PathLike[str]) -> ClientAPI:
    """A chromadb client storing collections under ``path``; telemetry off."""
    client: ClientAPI = _chroma().PersistentClient(path=os.fspath(path), settings=_settings())
    return client


def http_chroma_client(
    host: str,
    port: int = 8000,
    *,
    ssl: bool = False,
    headers: Mapping[str, str] | None = None,
) -> ClientAPI:
    """A client for a shared chroma server at ``host:port``; telemetry off.

    Only the server is contacted: sqlagent supplies every embedding, so neither side downloads
    a model. chromadb contacts the server here: one that cannot be reached raises
    :class:`~sqlagent.errors.RetrievalError` naming it.
    """
    where = f"server {'https' if ssl else 'http'}://{host}:{port}"
    with _server_errors(where):
        client: ClientAPI = _chroma().HttpClient(
            host=host, port=port, ssl=ssl, headers=dict(headers or {}), settings=_settings()
        )
    return client


@contextlib.contextmanager
def _server_errors(where: str) -> Iterator[None]:
    """Failures to reach or use a chroma store (connection refused, timeouts, server errors) as
    one :class:`~sqlagent.errors.RetrievalError` naming ``where``; sqlagent's own errors pass."""
    try:
        yield
    except SQLAgentError:
        raise
    except Exception as exc:
        raise RetrievalError(f"chroma {where} failed: {type(exc).__name__}: {exc}") from exc


@functools.cache
def _supplied_embeddings_class() -> type[Any]:
    """chroma's EmbeddingFunction that marks a collection's vectors as sqlagent-supplied.

    Every collection gets one, so chroma never instantiates its default embedding function
    (which would download an ONNX model). It holds nothing, builds from its config for free
    whenever chroma deserializes a collection's schema, and refuses to embed.
    """
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

    class SQLAgentSuppliedEmbeddings(EmbeddingFunction[Documents]):
        def __init__(self, embedder: str = "") -> None:
            self._embedder = embedder

        def __call__(self, input: Documents) -> Embeddings:
            raise ConfigError(
                "chroma was asked to embed text itself; sqlagent supplies every embedding"
            )

        @staticmethod
        def name() -> str:
            return "sqlagent-supplied"

        def get_config(self) -> dict[str, Any]:
            return {"embedder": self._embedder}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> SQLAgentSuppliedEmbeddings:
            return SQLAgentSuppliedEmbeddings(str(config.get("embedder", "")))

        def default_space(self) -> Any:
            return "cosine"

        def supported_spaces(self) -> list[Any]:
            return ["cosine"]

    return SQLAgentSuppliedEmbeddings


def _stored_embedder(configuration: Mapping[str, Any]) -> str:
    function = configuration.get("embedding_function") or {}
    config = function.get("config") or {}
    return str(config.get("embedder", "")) if function.get("name") == "sqlagent-supplied" else ""


class ChromaVectorStore:
    """One chroma collection, with sqlagent-supplied embeddings and cosine distance.

    Build it over any chroma client (``ChromaVectorStore(client, "name")``), or use
    :meth:`persistent` (a local folder, the default deployment) or :meth:`http` (a shared
    server). Guarantees: telemetry is off for the clients built here, and chroma never computes
    an embedding nor instantiates its default embedding function (which would download a model):
    the collection is created with a placeholder function that refuses to embed, and every
    vector is supplied by the caller. ``embedder`` (an :attr:`Embedder.name`) is recorded with
    a new collection; opening it later with another embedder's name raises
    :class:`~sqlagent.errors.ConfigError` instead of mixing vectors. The collection is opened on
    first use, not here.
    """

    def __init__(self, client: ClientAPI, collection: str, *, embedder: str = "") -> None:
        self._client = client
        self._name = collection
        self._embedder = embedder
        self._collection: Collection | None = None
        self._lock = threading.Lock()

    @classmethod
    def persistent(
        cls, path: str | os.PathLike[str], collection: str, *, embedder: str = ""
    ) -> ChromaVectorStore:
        """A collection in a local chroma folder (created if missing)."""
        return cls(persistent_chroma_client(path), collection, embedder=embedder)

    @classmethod
    def http(
        cls,
        host: str,
        collection: str,
        *,
        port: int = 8000,
        ssl: bool = False,
        headers: Mapping[str, str] | None = None,
        embedder: str = "",
    ) -> ChromaVectorStore:
        """A collection on a shared chroma server."""
        client = http_chroma_client(host, port, ssl=ssl, headers=headers)
        return cls(client, collection, embedder=embedder)

    def __repr__(self) -> str:
        return f"ChromaVectorStore(collection={self._name!r})"

    @property
    def name(self) -> str:
        return self._name

    def _where(self) -> str:
        return f"collection {self._name!r}"

    def _get(self) -> Collection:
        with self._lock, _server_errors(self._where()):
            if self._collection is None:
                from chromadb.errors import InvalidArgumentError

                supplied = _supplied_embeddings_class()(self._embedder)
                try:
                    self._collection = self._client.get_or_create_collection(
                        self._name,
                        embedding_function=supplied,
                        configuration={"hnsw": {"space": "cosine"}},
                    )
                except (ValueError, InvalidArgumentError) as exc:  # a bad name, a foreign EF
                    raise ConfigError(
                        f"cannot open chroma collection {self._name!r}: {exc}"
                    ) from exc
                stored = _stored_embedder(self._collection.configuration_json)
                if self._embedder and stored and stored != self._embedder:
                    self._collection = None
                    raise ConfigError(
                        f"chroma collection {self._name!r} holds vectors of embedder "
                        f"{stored!r}, not {self._embedder!r}"
                    )
            return self._collection

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: Sequence[Sequence[float]],
        texts: Sequence[str],
        metadatas: Sequence[Mapping[str, str]],
    ) -> None:
        _check_lengths(ids, embeddings, texts, metadatas)
        collection = self._get()
        for start in range(0, len(ids), _BATCH):
            end = start + _BATCH
            vectors: list[Sequence[float]] = [list(map(float, v)) for v in embeddings[start:end]]
            with _server_errors(self._where()):
                collection.upsert(
                    ids=list(ids[start:end]),
                    embeddings=vectors,
                    documents=list(texts[start:end]),
                    metadatas=[dict(m) for m in metadatas[start:end]],
                )

    def delete(self, ids: Sequence[str]) -> None:
        collection = self._get()
        for start in range(0, len(ids), _BATCH):
            with _server_errors(self._where()):
                collection.delete(ids=list(ids[start : start + _BATCH]))

    def metadata(self) -> dict[str, dict[str, str]]:
        collection = self._get()
        with _server_errors(self._where()):
            got = collection.get(include=["metadatas"])
        metadatas = got["metadatas"] or []
        return {
            id_: {str(k): str(v) for k, v in (meta or {}).items()}
            for id_, meta in zip(got["ids"], metadatas, strict=True)
        }

    def count(self) -> int:
        collection = self._get()
        with _server_errors(self._where()):
            return collection.count()

    def query(
        self, embedding: Sequence[float], k: int, where: Mapping[str, str] | None = None
    ) -> list[Hit]:
        if k <= 0:
            return []
        collection = self._get()
        clause: Any = None
        if where:
            pairs = [{key: value} for key, value in where.items()]
            clause = pairs[0] if len(pairs) == 1 else {"$and": pairs}
        query: list[Sequence[float]] = [list(map(float, embedding))]
        with _server_errors(self._where()):
            result = collection.query(
                query_embeddings=query,
                n_results=k,  # chroma returns fewer when fewer match
                where=clause,
                include=["metadatas", "distances"],
            )
        ids = result["ids"][0]
        metadatas = (result["metadatas"] or [[]])[0]
        distances = (result["distances"] or [[]])[0]
        return [
            Hit(
                id_,
                1.0 - float(distance),
                {str(key): str(value) for key, value in (meta or {}).items()},
            )
            for id_, meta, distance in zip(ids, metadatas, distances, strict=True)
        ]
