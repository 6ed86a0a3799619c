"""Audit: one event per request, sent to pluggable sinks, with a verifiable JSONL hash chain.

An :class:`Auditor` fans each :class:`AuditEvent` out to its :class:`AuditSink` objects and
decides whether a failing sink fails the request (``on_sink_error``). :class:`JsonlAuditSink`
writes a tamper-evident chain that :func:`verify_chain` (or ``sqlagent audit verify``) checks.
"""

from sqlagent.audit._auditor import Auditor, OnSinkError
from sqlagent.audit._chain import (
    GENESIS_HASH,
    ChainProblem,
    ChainReport,
    ProblemKind,
    verify_chain,
)
from sqlagent.audit._events import AuditEvent, new_request_id
from sqlagent.audit._sinks import (
    AuditSink,
    JsonlAuditSink,
    LoggingAuditSink,
    MemoryAuditSink,
    SqlAuditSink,
)

__all__ = [
    "AuditEvent",
    "AuditSink",
    "Auditor",
    "ChainProblem",
    "ChainReport",
    "GENESIS_HASH",
    "JsonlAuditSink",
    "LoggingAuditSink",
    "MemoryAuditSink",
    "OnSinkError",
    "ProblemKind",
    "SqlAuditSink",
    "new_request_id",
    "verify_chain",
]
