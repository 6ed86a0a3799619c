"""SchemaRetriever: the tables, examples and notes one role's view needs for one question."""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlagent.catalog import Catalog
from sqlagent.errors import ConfigError
from sqlagent.retrieval._documents import (
    Document,
    DocumentKind,
    column_documents,
    example_documents,
    markdown_documents,
    table_documents,
)
from sqlagent.retrieval._embedders import Embedder
from sqlagent.retrieval._filter import (
    check_view,
    hidden_names,
    hidden_pattern,
    strip_masked_samples,
    visible_examples,
)
from sqlagent.retrieval._rank import Lexicon, foreign_key_bridges, foreign_key_graph
from sqlagent.retrieval._settings import RetrievalSettings
from sqlagent.retrieval._stores import Hit, VectorStore
from sqlagent.retrieval._sync import SyncReport, sync_documents
from sqlagent.types import Example

__all__ = ["Retrieval", "SchemaRetriever"]


@dataclass(frozen=True, slots=True)
class Retrieval:
    """What one question retrieved, for the prompt.

    ``tables`` lists the ranked tables (best first), then the ``expanded`` ones added by
    foreign-key expansion; ``scores`` is aligned with ``tables``. ``complete`` is true when the
    view had no more than ``k`` tables and all of them were returned (ranked, none expanded).
    Every name, example and note here is visible to the view the retriever was built for.
    """

    question: str
    tables: tuple[str, ...]
    scores: tuple[float, ...]
    expanded: tuple[str, ...]
    examples: tuple[Example, ...]
    docs: tuple[str, ...]
    complete: bool
    elapsed_ms: float

    @property
    def ranked(self) -> tuple[str, ...]:
        """The ranked tables, without the expanded ones."""
        return self.tables[: len(self.tables) - len(self.expanded)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, for audit events and ``--json`` output."""
        return {
            "question": self.question,
            "tables": list(self.tables),
            "scores": [round(s, 4) for s in self.scores],
            "expanded": list(self.expanded),
            "examples": [e.to_dict() for e in self.examples],
            "docs": list(self.docs),
            "complete": self.complete,
            "elapsed_ms": round(self.elapsed_ms, 3),
        }


class SchemaRetriever:
    """Retrieval over one role's view of the catalog: tables, example pairs and note chunks.

    ``catalog`` is the role's view (:meth:`sqlagent.Guard.catalog_for`) and is all the retriever
    ever indexes; ``full_catalog`` is the whole catalog, needed only to recognise notes that name
    what the view hides (required when ``docs`` are given; pass the view itself in single-user
    mode). ``masked`` columns never carry sample values into the index. ``docs`` maps a source
    name to Markdown; a chunk is kept back when it (or its source name) names a hidden table or
    column as a whole word. ``examples`` are question/SQL pairs, kept only when the safety core
    would let the role run their SQL (read-only, grounded in the view, masked columns only
    projected; parsed in ``dialect``). Results are checked again at query time: only tables of
    the view, and only the very examples and chunks approved here, ever come back.

    The store should be this view's own (see :class:`RetrievalIndex`): :meth:`sync` makes it hold
    exactly this retriever's documents. :meth:`retrieve` syncs first if that has not happened.
    """

    def __init__(
        self,
        catalog: Catalog,
        embedder: Embedder,
        store: VectorStore,
        *,
        full_catalog: Catalog | None = None,
        docs: Mapping[str, str] | None = None,
        examples: Sequence[Example] = (),
        dialect: str = "sqlite",
        masked: Collection[tuple[str, str]] = (),
        config: RetrievalSettings | None = None,
    ) -> None:
        self.config = config or RetrievalSettings()
        if docs and full_catalog is None:
            raise ConfigError(
                "docs need full_catalog= to keep back notes that name hidden tables or columns "
                "(in single-user mode pass the catalog itself)"
            )
        if full_catalog is not None:
            check_view(catalog, full_catalog)
        self.catalog = strip_masked_samples(catalog, masked)
        self.embedder = embedder
        self.store = store
        self._hidden = hidden_pattern(
            hidden_names(catalog, full_catalog) if full_catalog is not None else ()
        )
        self._examples = {
            doc.id: example
            for example, doc in _example_pairs(visible_examples(examples, catalog, dialect, masked))
        }
        documents = table_documents(self.catalog)
        if self.config.column_documents:
            documents += column_documents(self.catalog)
        self._docs = {
            d.id: d
            for d in markdown_documents(docs or {})
            if not self._names_hidden(f"{d.metadata['source']}\n{d.text}")
        }
        documents += list(self._docs.values())
        documents += example_documents(self._examples.values())
        self.documents: tuple[Document, ...] = tuple(documents)
        self._lexicon = Lexicon(self.catalog)
        self._graph = foreign_key_graph(self.catalog)
        self._synced = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"SchemaRetriever(tables={len(self.catalog)}, docs={len(self._docs)}, "
            f"examples={len(self._examples)}, embedder={self.embedder.name!r})"
        )

    def _names_hidden(self, text: str) -> bool:
        return self._hidden is not None and self._hidden.search(text) is not None

    # -- indexing ------------------------------------------------------------------------------
    def sync(self, *, progress: bool = False, embedder: Embedder | None = None) -> SyncReport:
        """Make the store hold exactly this retriever's documents (only changes are embedded).

        ``embedder`` may stand in for the retriever's own while indexing (a cache in front of
        the same model, say); it must produce the same vectors under the same name.
        """
        indexer = embedder if embedder is not None else self.embedder
        if indexer.name != self.embedder.name:
            raise ConfigError(
                f"sync embedder {indexer.name!r} is not the retriever's {self.embedder.name!r}"
            )
        with self._lock:
            report = sync_documents(self.store, indexer, self.documents, progress=progress)
            self._synced = True
            return report

    # -- querying ------------------------------------------------------------------------------
    def retrieve(self, question: str, *, k: int | None = None) -> Retrieval:
        """Rank the view's tables for ``question``, expand join paths, add examples and notes."""
        start = time.perf_counter()
        if not self._synced:
            with self._lock:
                if not self._synced:
                    sync_documents(self.store, self.embedder, self.documents)
                    self._synced = True
        k = self.config.k_tables if k is None else k
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        [vector] = self.embedder.embed([question])
        ranked = self._rank(question, vector)
        complete = len(self.catalog) <= k
        if complete:
            top = ranked
            expanded: tuple[str, ...] = ()
        else:
            top = ranked[:k]
            expanded = ()
            if self.config.expand_foreign_keys:
                expanded = foreign_key_bridges(
                    self._graph, [name for name, _ in top], max_hops=self.config.max_hops
                )
        score_of = dict(ranked)
        tables = tuple(name for name, _ in top) + expanded
        return Retrieval(
            question=question,
            tables=tables,
            scores=tuple(score_of.get(name, 0.0) for name in tables),
            expanded=expanded,
            examples=self._retrieve_examples(vector),
            docs=self._retrieve_docs(vector),
            complete=complete,
            elapsed_ms=(time.perf_counter() - start) * 1000.0,
        )

    def _rank(self, question: str, vector: Sequence[float]) -> list[tuple[str, float]]:
        config = self.config
        n = min(len(self.catalog), config.candidates)
        hits = self.store.query(vector, n, {"kind": str(DocumentKind.TABLE)})
        similarity = {
            h.metadata.get("table", ""): h.score
            for h in hits
            if h.metadata.get("table", "") in self.catalog  # defence in depth: the view only
        }
        floor = (
            min(similarity.values(), default=0.0) if len(similarity) < len(self.catalog) else 0.0
        )
        scores = {t: similarity.get(t, floor) for t in self.catalog.table_names}
        if config.column_documents:
            columns = self.store.query(vector, 4 * n, {"kind": str(DocumentKind.COLUMN)})
            best: dict[str, float] = {}
            for hit in columns:
                table = hit.metadata.get("table", "")
                if table in self.catalog and hit.score > best.get(table, -1.0):
                    best[table] = hit.score
            column_floor = min(best.values(), default=0.0)
            for table in scores:
                scores[table] += config.column_weight * best.get(table, column_floor)
        if config.lexical_weight:
            for table, share in self._lexicon.score(question).items():
                scores[table] += config.lexical_weight * share
        if config.neighbour_weight:
            base = dict(scores)
            for table, neighbours in self._graph.items():
                if neighbours:
                    scores[table] += config.neighbour_weight * max(base[n] for n in neighbours)
        order = {name: i for i, name in enumerate(self.catalog.table_names)}
        return sorted(scores.items(), key=lambda item: (-item[1], order[item[0]]))

    def _retrieve_examples(self, vector: Sequence[float]) -> tuple[Example, ...]:
        if not self.config.k_examples or not self._examples:
            return ()
        hits = self.store.query(vector, self.config.k_examples, {"kind": str(DocumentKind.EXAMPLE)})
        found = []
        for hit in hits:  # only examples this view approved, never what the store says
            example = self._examples.get(hit.id)
            if example is not None and _same_example(hit, example):
                found.append(example)
        return tuple(found)

    def _retrieve_docs(self, vector: Sequence[float]) -> tuple[str, ...]:
        if not self.config.k_docs or not self._docs:
            return ()
        hits = self.store.query(vector, self.config.k_docs, {"kind": str(DocumentKind.DOC)})
        found = []
        for hit in hits:
            doc = self._docs.get(hit.id)
            if doc is not None and not self._names_hidden(doc.text):
                found.append(doc.text)
        return tuple(found)


def _example_pairs(examples: Mapping[Example, None]) -> list[tuple[Example, Document]]:
    docs = example_documents(examples)
    return list(zip(examples, docs, strict=True))


def _same_example(hit: Hit, example: Example) -> bool:
    return hit.metadata.get("question") == example.question and hit.metadata.get("sql") == (
        example.sql
    )
