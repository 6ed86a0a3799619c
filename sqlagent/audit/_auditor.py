"""The Auditor: fans one event out to every sink and applies the failure policy."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

from sqlagent.audit._events import AuditEvent
from sqlagent.audit._sinks import AuditSink
from sqlagent.errors import AuditError, ConfigError

__all__ = ["Auditor", "OnSinkError"]

OnSinkError = Literal["fail", "warn"]

_LOGGER_NAME = "sqlagent.audit"


class Auditor:
    """Send each event to every sink; decide what a failing sink means.

    ``on_sink_error`` is the configuration switch for audit failures:

    - ``"fail"`` (default): if any sink raises, :class:`~sqlagent.errors.AuditError` is raised
      *after* every other sink has been tried, naming each failed sink's class and cause (the
      first cause is chained). Use it when an unaudited request must not succeed.
    - ``"warn"``: failures are logged as warnings on the ``sqlagent.audit`` logger, with the
      traceback, and ``emit`` returns normally. Use it when availability matters more than a
      complete trail.

    In both modes one broken sink never keeps the event from the others. ``close()`` closes
    every sink under the same policy. Usable as a context manager.
    """

    def __init__(self, sinks: Sequence[AuditSink], *, on_sink_error: OnSinkError = "fail") -> None:
        if on_sink_error not in ("fail", "warn"):
            raise ConfigError(f"on_sink_error must be 'fail' or 'warn', not {on_sink_error!r}")
        for sink in sinks:
            if not isinstance(sink, AuditSink):
                raise ConfigError(f"{sink!r} is not an audit sink (it needs emit() and close())")
        self.sinks: tuple[AuditSink, ...] = tuple(sinks)
        self.on_sink_error: OnSinkError = on_sink_error
        self._logger = logging.getLogger(_LOGGER_NAME)

    def emit(self, event: AuditEvent) -> None:
        """Record ``event`` in every sink; raises :class:`AuditError` only in ``"fail"`` mode."""
        failures: list[tuple[AuditSink, Exception]] = []
        for sink in self.sinks:
            try:
                sink.emit(event)
            except Exception as exc:
                failures.append((sink, exc))
        self._handle(failures, f"could not record audit event {event.request_id}")

    def close(self) -> None:
        """Close every sink, even if one of them fails to close."""
        failures: list[tuple[AuditSink, Exception]] = []
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:
                failures.append((sink, exc))
        self._handle(failures, "could not close audit sink")

    def __enter__(self) -> Auditor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _handle(self, failures: list[tuple[AuditSink, Exception]], what: str) -> None:
        if not failures:
            return
        causes = [f"{type(sink).__name__}: {type(exc).__name__}: {exc}" for sink, exc in failures]
        if self.on_sink_error == "warn":
            for (_, exc), cause in zip(failures, causes, strict=True):
                self._logger.warning("%s in %s", what, cause, exc_info=exc)
            return
        raise AuditError(f"{what} in {'; '.join(causes)}") from failures[0][1]
