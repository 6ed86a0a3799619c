"""Where audit events go: one small protocol and its file, logging and memory implementations.

The SQL implementation, :class:`~sqlagent.audit.SQLAuditSink`, lives in :mod:`._sql`.

A sink raises when it cannot record an event; whether that fails the request is the
:class:`~sqlagent.audit.Auditor`'s decision, not the sink's.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from os import PathLike
from pathlib import Path
from typing import Protocol, runtime_checkable

from sqlagent.audit._chain import GENESIS_HASH, seal
from sqlagent.audit._events import AuditEvent
from sqlagent.errors import AuditError

__all__ = [
    "AuditSink",
    "JsonlAuditSink",
    "LoggingAuditSink",
    "MemoryAuditSink",
]

_LOGGER_NAME = "sqlagent.audit"
_TAIL_CHUNK = 8192


@runtime_checkable
class AuditSink(Protocol):
    """Records audit events. ``emit`` raises if the event could not be recorded."""

    def emit(self, event: AuditEvent) -> None: ...

    def close(self) -> None: ...


class JsonlAuditSink:
    """Append events to a hash-chained JSON Lines file (see :func:`~sqlagent.audit.verify_chain`).

    Guarantees: each event is one complete line written with a single ``write`` and no user-space
    buffering (``fsync=True`` also forces it to disk); an existing file's chain is continued;
    several sinks, threads and processes may append to the same file at once, because every
    append takes an exclusive ``flock`` and re-reads the last line under it. The file is opened
    per event, so a sink survives ``fork`` and log rotation (a new file starts a new chain).
    POSIX only (``fcntl``). A file whose last line is incomplete is refused with
    :class:`~sqlagent.errors.AuditError` rather than chained onto.
    """

    def __init__(self, path: str | PathLike[str], *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._lock = threading.Lock()
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def emit(self, event: AuditEvent) -> None:
        import fcntl  # POSIX only; imported here so that importing sqlagent works everywhere

        fields = event.to_dict()
        with self._lock:
            if self._closed:
                raise AuditError(f"{self.path}: the audit sink is closed")
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                seq, prev = self._tail(fd)
                data = seal(fields, seq, prev).encode("utf-8")
                while data:
                    data = data[os.write(fd, data) :]
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)  # also releases the flock

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def __enter__(self) -> JsonlAuditSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"JsonlAuditSink({str(self.path)!r}, fsync={self.fsync})"

    def _tail(self, fd: int) -> tuple[int, str]:
        """The next seq and prev hash, from the last line of the file (read under the lock)."""
        size = os.fstat(fd).st_size
        if size == 0:
            return 0, GENESIS_HASH
        if os.pread(fd, 1, size - 1) != b"\n":
            raise AuditError(
                f"{self.path}: the last line is incomplete (no final newline; a writer may have "
                "crashed mid-line). Refusing to chain onto it: check the file with "
                "`sqlagent audit verify` and repair it."
            )
        end = size - 1
        pos = end
        chunks: list[bytes] = []
        while pos > 0:
            start = max(0, pos - _TAIL_CHUNK)
            chunk = os.pread(fd, pos - start, start)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                chunks.append(chunk[cut + 1 :])
                break
            chunks.append(chunk)
            pos = start
        last = b"".join(reversed(chunks))
        try:
            record = json.loads(last.decode("utf-8"))
            seq, digest = record["seq"], record["hash"]
        except (ValueError, TypeError, KeyError) as exc:
            raise AuditError(
                f"{self.path}: the last line is not a chained audit record ({exc})"
            ) from exc
        if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(digest, str):
            raise AuditError(f"{self.path}: the last line has no valid 'seq' and 'hash'")
        return seq + 1, digest


class LoggingAuditSink:
    """Log each event as one JSON line, with the dict in ``extra["audit_event"]``.

    Meant for shipping audit events through an existing logging pipeline; it adds no
    integrity guarantee of its own.
    """

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.INFO) -> None:
        self.logger = logger if logger is not None else logging.getLogger(_LOGGER_NAME)
        self.level = level

    def emit(self, event: AuditEvent) -> None:
        if not self.logger.isEnabledFor(self.level):
            return  # the application's logging configuration drops it: skip the serialization
        data = event.to_dict()
        self.logger.log(
            self.level,
            json.dumps(data, ensure_ascii=False, default=str),
            extra={"audit_event": data},
        )

    def close(self) -> None:
        """Nothing to release: the logger's handlers belong to the application."""


class MemoryAuditSink:
    """Keep events in ``events``, in order; for tests and for applications that inspect them."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def emit(self, event: AuditEvent) -> None:
        self.events.append(event)

    def close(self) -> None:
        """Events stay readable after close."""
