"""RetrievalIndex: one index per distinct role view, built lazily, cached, synced incrementally."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Collection, Mapping, Sequence

from sqlagent.catalog import Catalog
from sqlagent.retrieval._documents import DOCUMENT_FORMAT_VERSION
from sqlagent.retrieval._embedders import Embedder, default_embedder
from sqlagent.retrieval._filter import strip_masked_samples
from sqlagent.retrieval._retriever import Retrieval, SchemaRetriever
from sqlagent.retrieval._settings import RetrievalSettings
from sqlagent.retrieval._stores import InMemoryVectorStore, VectorStore
from sqlagent.types import Example

__all__ = ["RetrievalIndex", "catalog_fingerprint"]


def catalog_fingerprint(catalog: Catalog) -> str:
    """A SHA-256 over everything a catalog says (names, types, keys, comments, samples).

    Two views with the same fingerprint index the same documents and may share an index.
    """
    canonical = [
        [
            t.name,
            t.schema,
            t.comment,
            t.is_view,
            [
                [c.name, c.type, c.nullable, c.primary_key, c.comment, list(c.samples)]
                for c in t.columns
            ],
            [[list(fk.columns), fk.ref_table, list(fk.ref_columns)] for fk in t.foreign_keys],
        ]
        for t in catalog
    ]
    text = json.dumps(canonical, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_NAME_CACHE = 256


def _in_memory(_name: str) -> VectorStore:
    return InMemoryVectorStore()


class _IndexingCache:
    """The index's embedder with a memory of every document text it embedded.

    Role views share most of their documents (tables seen alike, notes, examples), so each text
    is embedded once per index, however many views hold it. Used for indexing only: questions
    go to the embedder itself and are never kept.
    """

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self._vectors: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._embedder.name

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            vectors = self._embedder.embed(missing)
            with self._lock:
                self._vectors.update(zip(missing, vectors, strict=True))
        with self._lock:
            return [self._vectors[t] for t in texts]


class RetrievalIndex:
    """Retrievers for every role view of one catalog: each view gets its own collection.

    ``catalog`` is the *full* catalog; :meth:`retriever` takes a role's view of it (what
    :meth:`sqlagent.Guard.catalog_for` returns) and the role's masked columns. Views are keyed by
    a fingerprint of the view (after dropping masked samples), its masked columns and the
    embedder's name, so roles that see the same schema the same way share one collection, and a
    role never reads a collection built for a wider view: its collection holds nothing the view
    hides. All views share this index's ``docs`` and ``examples``; two indexes with different
    ones must not share a chroma server's collections (each sync would undo the other's).

    ``stores`` makes the store for a collection name (default: in memory; for chroma,
    ``lambda name: ChromaVectorStore(client, name)`` over one ``persistent_chroma_client(path)``
    or ``http_chroma_client(host)``). A view's retriever is built and synced on first use, then
    cached: unchanged documents of an existing collection are not embedded again, and a text
    that several views share is embedded once per index. A changed catalog makes new views, so
    new collections (old ones stay in the store until removed). Thread-safe.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        embedder: Embedder | None = None,
        stores: Callable[[str], VectorStore] | None = None,
        docs: Mapping[str, str] | None = None,
        examples: Sequence[Example] = (),
        dialect: str = "sqlite",
        config: RetrievalSettings | None = None,
        progress: bool = False,
    ) -> None:
        self.catalog = catalog
        self.embedder = embedder if embedder is not None else default_embedder()
        self._indexing = _IndexingCache(self.embedder)
        self.config = config or RetrievalSettings()
        self._stores = stores or _in_memory
        self._docs = dict(docs or {})
        self._examples = tuple(examples)
        self._dialect = dialect
        self._progress = progress
        self._retrievers: dict[str, SchemaRetriever] = {}
        self._building: dict[str, threading.Lock] = {}
        self._names: dict[tuple[Catalog, frozenset[tuple[str, str]]], str] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RetrievalIndex(tables={len(self.catalog)}, views={len(self._retrievers)})"

    def collection_name(
        self, view: Catalog | None = None, *, masked: Collection[tuple[str, str]] = ()
    ) -> str:
        """The collection that serves ``view``: ``sqlagent-`` and 32 hex digits."""
        view = self.catalog if view is None else view
        key = (view, frozenset(masked))
        name = self._names.get(key)
        if name is None:
            # masked columns count too: they decide which examples the view may see
            masked_here = sorted((t, c) for t, c in masked if t in view)
            text = "\0".join(
                [
                    DOCUMENT_FORMAT_VERSION,
                    self.embedder.name,
                    catalog_fingerprint(strip_masked_samples(view, masked)),
                    json.dumps(masked_here, ensure_ascii=False),
                ]
            )
            name = "sqlagent-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
            if len(self._names) >= _NAME_CACHE:  # views of an old catalog: start afresh
                self._names.clear()
            self._names[key] = name
        return name

    def retriever(
        self,
        view: Catalog | None = None,
        *,
        masked: Collection[tuple[str, str]] = (),
        progress: bool | None = None,
    ) -> SchemaRetriever:
        """The synced retriever for ``view`` (default: the full catalog, single-user mode).

        The first call for a view builds and syncs its index (with a progress bar on stderr when
        ``progress``, by default the index's setting); other views are served meanwhile.
        """
        name = self.collection_name(view, masked=masked)
        retriever = self._retrievers.get(name)
        if retriever is not None:
            return retriever
        with self._lock:
            building = self._building.setdefault(name, threading.Lock())
        with building:
            retriever = self._retrievers.get(name)
            if retriever is None:
                retriever = SchemaRetriever(
                    self.catalog if view is None else view,
                    self.embedder,
                    self._stores(name),
                    full_catalog=self.catalog,
                    docs=self._docs,
                    examples=self._examples,
                    dialect=self._dialect,
                    masked=masked,
                    config=self.config,
                )
                retriever.sync(
                    progress=self._progress if progress is None else progress,
                    embedder=self._indexing,
                )
                self._retrievers[name] = retriever
        return retriever

    def retrieve(
        self,
        question: str,
        view: Catalog | None = None,
        *,
        masked: Collection[tuple[str, str]] = (),
        k: int | None = None,
    ) -> Retrieval:
        """``retriever(view, masked=masked).retrieve(question, k=k)``."""
        return self.retriever(view, masked=masked).retrieve(question, k=k)
