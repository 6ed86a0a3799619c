"""Audit: one event per request, sent to pluggable sinks, kept in a verifiable hash chain.

An :class:`Auditor` fans each :class:`AuditEvent` out to its :class:`AuditSink` objects and
decides whether a failing sink fails the request (``on_sink_error``). Two sinks keep a
tamper-evident chain of the same sealed records: :class:`JsonlAuditSink` in a file
(:func:`verify_chain`) and :class:`SQLAuditSink` in a database table shared by every writer
(:func:`verify_sql_chain`); ``sqlagent audit verify`` checks either. :func:`open_audit_sink`
turns a configured ``audit_log`` (a path or a database URL) into the right one.
"""

from typing import Any

from sqlagent.audit._auditor import Auditor, OnSinkError
from sqlagent.audit._chain import (
    GENESIS_HASH,
    ChainProblem,
    ChainReport,
    ProblemKind,
    verify_chain,
)
from sqlagent.audit._events import AuditEvent, new_request_id, verdict_event
from sqlagent.audit._sinks import (
    AuditSink,
    JsonlAuditSink,
    LoggingAuditSink,
    MemoryAuditSink,
)
from sqlagent.audit._sql import SQLAuditSink, verify_sql_chain
from sqlagent.audit._targets import is_audit_url, open_audit_sink, probe_audit_target

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
    "SQLAuditSink",
    "is_audit_url",
    "new_request_id",
    "open_audit_sink",
    "probe_audit_target",
    "verdict_event",
    "verify_chain",
    "verify_sql_chain",
]


def __getattr__(name: str) -> Any:
    if name == "SqlAuditSink":  # the spelling before 0.2
        import warnings

        warnings.warn(
            "sqlagent.audit.SqlAuditSink is now SQLAuditSink (one spelling of SQL)",
            DeprecationWarning,
            stacklevel=2,
        )
        return SQLAuditSink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
