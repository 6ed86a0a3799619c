"""Building the agent's parts from an :class:`~sqlagent.config.AgentConfig`.

Kept apart from :mod:`sqlagent.agent` so the pipeline there reads top to bottom; everything here
runs once, when an agent is built (or, for a role's view, on the role's first question).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlagent.audit import AuditSink, LoggingAuditSink, open_audit_sink
from sqlagent.catalog import Catalog
from sqlagent.config import AgentConfig
from sqlagent.dialects import resolve_dialect
from sqlagent.errors import ConfigError, PrivilegeError, SQLAgentError
from sqlagent.execution import ReadOnlyExecutor, check_privileges, summarize_findings
from sqlagent.llm import LLM, ExampleSource, FallbackLLM, LLMSpec, MockLLM, parse_llm_spec
from sqlagent.prompt import question_of
from sqlagent.retrieval import (
    ChromaVectorStore,
    Embedder,
    HashingEmbedder,
    InMemoryVectorStore,
    RetrievalIndex,
    RetrievalSettings,
    SentenceTransformerEmbedder,
    VectorStore,
    default_embedder,
    http_chroma_client,
    minilm_embedder,
    persistent_chroma_client,
)
from sqlagent.types import Example

__all__ = [
    "RoleView",
    "build_audit_sink",
    "build_executor",
    "build_llm",
    "build_retrieval",
    "check_login",
    "guard_dialect",
]

_log = logging.getLogger("sqlagent.agent")


@dataclass(frozen=True, slots=True)
class RoleView:
    """What one role may see: its catalog (with samples only where it may read plain values)
    and its masked ``(table, column)`` pairs. ``role`` is ``None`` in single-user mode."""

    role: str | None
    catalog: Catalog
    masked: frozenset[tuple[str, str]]


def _one_llm(spec: str, config: AgentConfig, examples: ExampleSource) -> LLM:
    if LLMSpec.parse(spec).kind == "mock":
        # The mock matches the question (not the schema around it) against the stored examples,
        # and answers only when one is similar enough. It reads the store on each question, so
        # an example added later answers at once. With none yet it builds all the same
        # (`sqlagent examples add` and `index` need no model) and refuses every question.
        return MockLLM(
            examples=examples,
            question=question_of,
            min_similarity=config.mock_min_similarity,
        )
    return parse_llm_spec(spec, model=config.model)


def build_llm(config: AgentConfig, examples: ExampleSource) -> LLM:
    """The configured model, with its fallbacks (tried in order when it is unavailable); a mock
    answers from ``examples`` (the agent's example store)."""
    primary = _one_llm(config.llm, config, examples)
    if not config.fallbacks:
        return primary
    return FallbackLLM(primary, *(_one_llm(s, config, examples) for s in config.fallbacks))


def build_audit_sink(config: AgentConfig) -> AuditSink:
    if config.audit_log is not None:
        return open_audit_sink(config.audit_log)
    return LoggingAuditSink()


def _embedder(settings: RetrievalSettings) -> Embedder:
    """The configured embedder; MiniLM through onnxruntime from the export kept beside the
    index when it can (no torch import when answering), else through sentence-transformers."""
    cache = settings.embedder_dir()
    if settings.embedder == "minilm":
        found = minilm_embedder(cache, threads=settings.threads)
        return found if found is not None else SentenceTransformerEmbedder()  # fails on use
    if settings.embedder == "hashing":
        return HashingEmbedder()
    return default_embedder(cache, threads=settings.threads)


def _stores(config: AgentConfig) -> Callable[[str], VectorStore]:
    settings = config.retrieval
    kind = settings.store
    if kind == "auto":
        found = importlib.util.find_spec("chromadb") is not None
        kind = "chroma" if found or settings.url else "memory"
        if not found:
            _log.info("chromadb is not installed: the retrieval index is kept in memory")
    if kind == "memory":
        return lambda _name: InMemoryVectorStore()
    if settings.url:
        parts = urlsplit(settings.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"retrieval.url must be http(s)://host[:port], not {settings.url!r}")
        client = http_chroma_client(parts.hostname, parts.port or 8000, ssl=parts.scheme == "https")
    else:
        client = persistent_chroma_client(settings.index_dir())
    return lambda name: ChromaVectorStore(client, name)


def build_retrieval(
    config: AgentConfig,
    catalog: Catalog,
    dialect: str,
    examples: Sequence[Example],
    docs: Mapping[str, str],
) -> RetrievalIndex | None:
    """The configured retrieval index over ``catalog`` (``None`` when retrieval is off)."""
    settings = config.retrieval
    if not settings.enabled:
        return None
    return RetrievalIndex(
        catalog,
        embedder=_embedder(settings),
        stores=_stores(config),
        docs=docs,
        examples=examples,
        dialect=dialect,
        config=settings,
    )


def build_executor(config: AgentConfig) -> ReadOnlyExecutor:
    """The read-only executor with the configured time, row and size limits."""
    return ReadOnlyExecutor(
        config.database,
        timeout_s=config.timeout_s,
        max_rows=config.max_rows,
        max_result_bytes=config.max_result_bytes,
    )


def check_login(executor: ReadOnlyExecutor, config: AgentConfig) -> None:
    """The start-up least-privilege check of the database login.

    A login that can do more than read (see :func:`~sqlagent.execution.check_privileges`) is
    logged as a warning on the ``sqlagent.agent`` logger, or refused with
    :class:`~sqlagent.errors.PrivilegeError` when ``require_least_privilege`` is set; a check
    that cannot run is a warning, or a refusal under the same setting (fail closed).
    """
    try:
        findings = check_privileges(executor, timeout_s=min(config.timeout_s, 10.0))
    except SQLAgentError as exc:
        if config.require_least_privilege:
            raise PrivilegeError(
                "require_least_privilege is set, but the database login's privileges could not "
                f"be checked: {exc}"
            ) from exc
        _log.warning("could not check the database login's privileges: %s", exc)
        return
    if not findings:
        return
    summary = summarize_findings(findings)
    if config.require_least_privilege:
        raise PrivilegeError(
            f"refusing to start because require_least_privilege is set and {summary}",
            findings=tuple(findings),
        )
    _log.warning("%s; set require_least_privilege: true to refuse such a login", summary)


def guard_dialect(config: AgentConfig, executor: ReadOnlyExecutor) -> str:
    """The dialect the guard judges and renders SQL for: ``"mariadb"`` when the URL says
    ``mariadb+...`` or a MySQL-family server's version string says MariaDB (the two share
    analysis but not all syntax), else the configured (or URL's) dialect."""
    dialect = resolve_dialect(config.dialect or executor.dialect)
    if dialect != "mysql":
        return dialect
    if (config.dialect or "").strip().lower() == "mariadb" or executor.dialect == "mariadb":
        return "mariadb"
    try:
        return executor.server_dialect()
    except SQLAgentError as exc:  # reflection reached the server moments ago: unlikely
        _log.warning("could not tell MariaDB from MySQL (%s): using mysql", exc)
        return "mysql"
