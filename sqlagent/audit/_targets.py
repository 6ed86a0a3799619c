"""One ``audit_log`` value, a file path or a database URL, to its sink (and a probe for doctor)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlagent.audit._sinks import AuditSink, JsonlAuditSink
from sqlagent.audit._sql import SQLAuditSink, probe_sql_target
from sqlagent.errors import AuditError

__all__ = ["is_audit_url", "open_audit_sink", "probe_audit_target"]


def is_audit_url(target: str | os.PathLike[str]) -> bool:
    """Whether an ``audit_log`` value names a database: a string holding ``://``.

    A :class:`os.PathLike` is always a file. A string with ``://`` that is not a valid URL is
    not taken for a file name: opening or probing it raises
    :class:`~sqlagent.errors.ConfigError`, so a mistyped URL never becomes a local file.
    """
    return isinstance(target, str) and "://" in target


def open_audit_sink(target: str | os.PathLike[str]) -> AuditSink:
    """The sink for an ``audit_log`` value: :class:`SQLAuditSink` for a database URL (tables
    from the URL's ``audit_table``/``audit_head_table`` keys), else :class:`JsonlAuditSink`.

    Neither connects nor writes here (a JSONL sink creates missing parent folders): the first
    event does, and a failure then raises :class:`~sqlagent.errors.AuditError` from ``emit``.
    Raises :class:`~sqlagent.errors.ConfigError` for a malformed URL, a bad table name or a
    database driver that is not installed.
    """
    if is_audit_url(target):
        return SQLAuditSink(os.fspath(target))
    return JsonlAuditSink(target)


def probe_audit_target(target: str | os.PathLike[str]) -> str:
    """Check, changing nothing, that events could be recorded at ``target``; describe it.

    For a URL: the database answers within 5 s and its tables, if any, are a chain of this
    schema version (a SQLite file not there yet needs a writable folder). For a file: it is a
    file that can be appended to, or it can be created (its nearest existing folder is
    writable). The chain itself is not verified (use :func:`verify_chain` /
    :func:`verify_sql_chain`). Raises :class:`~sqlagent.errors.AuditError` with the reason, or
    :class:`~sqlagent.errors.ConfigError` for a malformed URL.
    """
    if is_audit_url(target):
        return probe_sql_target(os.fspath(target))
    path = Path(target)
    if path.exists():
        if not path.is_file():
            raise AuditError(f"{path} is not a file")
        try:
            with path.open("ab"):  # appending nothing: the file is left as it is
                pass
        except OSError as exc:
            raise AuditError(f"{path} is not appendable: {exc}") from exc
        return f"{path} appendable"
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise AuditError(f"{path} cannot be created: {folder} is not a writable folder")
    return f"{path} will be created"
