"""Incremental sync: make a store hold exactly a set of documents, embedding only what changed."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlagent.errors import ConfigError
from sqlagent.retrieval._documents import Document
from sqlagent.retrieval._embedders import Embedder
from sqlagent.retrieval._stores import VectorStore

__all__ = ["SyncReport", "sync_documents"]


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one sync did: ids added, updated (content changed) and removed; how many kept."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: int = 0
    elapsed_ms: float = 0.0

    @property
    def embedded(self) -> int:
        """How many documents were embedded (added + updated)."""
        return len(self.added) + len(self.updated)


def sync_documents(
    store: VectorStore,
    embedder: Embedder,
    documents: Sequence[Document],
    *,
    batch_size: int = 256,
    progress: bool = False,
) -> SyncReport:
    """Make ``store`` hold exactly ``documents``.

    A document whose id is stored with the same content hash is left alone (not embedded again);
    a new or changed one is embedded and upserted; every other stored id is deleted. ``progress``
    shows a rich progress bar on stderr while embedding.
    """
    start = time.perf_counter()
    ids = [d.id for d in documents]
    if len(set(ids)) != len(ids):
        raise ConfigError("document ids must be unique")
    stored = store.metadata()
    wanted = {d.id for d in documents}
    stale = [id_ for id_ in stored if id_ not in wanted]
    todo = [d for d in documents if stored.get(d.id, {}).get("hash") != d.content_hash]
    added = tuple(d.id for d in todo if d.id not in stored)
    updated = tuple(d.id for d in todo if d.id in stored)
    if stale:
        store.delete(stale)
    if todo:
        _embed_into(store, embedder, todo, batch_size, progress)
    return SyncReport(
        added=added,
        updated=updated,
        removed=tuple(stale),
        unchanged=len(documents) - len(todo),
        elapsed_ms=(time.perf_counter() - start) * 1000.0,
    )


def _embed_into(
    store: VectorStore,
    embedder: Embedder,
    documents: Sequence[Document],
    batch_size: int,
    progress: bool,
) -> None:
    def batches() -> list[Sequence[Document]]:
        return [documents[i : i + batch_size] for i in range(0, len(documents), batch_size)]

    def write(batch: Sequence[Document]) -> None:
        vectors = embedder.embed([d.text for d in batch])
        if len(vectors) != len(batch):
            raise ConfigError(
                f"embedder {embedder.name!r} returned {len(vectors)} vectors for {len(batch)} texts"
            )
        store.upsert(
            [d.id for d in batch],
            vectors,
            [d.text for d in batch],
            [d.store_metadata() for d in batch],
        )

    if not progress:
        for batch in batches():
            write(batch)
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"Embedding {len(documents)} documents", total=len(documents))
        for batch in batches():
            write(batch)
            bar.advance(task, len(batch))
