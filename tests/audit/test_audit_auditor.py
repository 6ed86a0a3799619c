"""Auditor: fan-out to every sink and the fail/warn switch; the package's public API."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from audit_helpers import make_event

from sqlagent.audit import AuditEvent, Auditor, JsonlAuditSink, MemoryAuditSink, verify_chain
from sqlagent.errors import AuditError, ConfigError


class BrokenSink:
    """A real sink whose storage is gone."""

    def __init__(self) -> None:
        self.closed = False

    def emit(self, event: AuditEvent) -> None:
        raise OSError("disk full")

    def close(self) -> None:
        self.closed = True
        raise RuntimeError("cannot flush")


def test_emit_reaches_every_sink(tmp_path: Path) -> None:
    memory = MemoryAuditSink()
    with Auditor([memory, JsonlAuditSink(tmp_path / "a.jsonl")]) as auditor:
        auditor.emit(make_event(1))
        auditor.emit(make_event(2))
    assert len(memory.events) == 2
    assert verify_chain(tmp_path / "a.jsonl").lines == 2


def test_fail_mode_raises_after_trying_every_sink() -> None:
    before, after = MemoryAuditSink(), MemoryAuditSink()
    auditor = Auditor([before, BrokenSink(), after])  # "fail" is the default
    event = make_event(1)
    with pytest.raises(AuditError, match=r"BrokenSink: OSError: disk full") as info:
        auditor.emit(event)
    assert event.request_id in str(info.value)
    assert isinstance(info.value.__cause__, OSError)
    assert before.events == [event]
    assert after.events == [event]  # one broken sink does not silence the others


def test_fail_mode_names_every_failed_sink() -> None:
    auditor = Auditor([BrokenSink(), MemoryAuditSink(), BrokenSink()], on_sink_error="fail")
    with pytest.raises(AuditError) as info:
        auditor.emit(make_event(1))
    assert str(info.value).count("BrokenSink") == 2


def test_warn_mode_logs_and_returns(caplog: pytest.LogCaptureFixture) -> None:
    memory = MemoryAuditSink()
    auditor = Auditor([BrokenSink(), memory], on_sink_error="warn")
    event = make_event(1)
    with caplog.at_level(logging.WARNING, logger="sqlagent.audit"):
        auditor.emit(event)
    assert memory.events == [event]
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.name == "sqlagent.audit"
    assert "BrokenSink: OSError: disk full" in record.getMessage()
    assert record.exc_info is not None


def test_close_closes_every_sink_under_the_policy(caplog: pytest.LogCaptureFixture) -> None:
    broken, memory = BrokenSink(), MemoryAuditSink()
    with pytest.raises(AuditError, match="cannot flush"):
        Auditor([broken, memory]).close()
    assert broken.closed

    with caplog.at_level(logging.WARNING, logger="sqlagent.audit"):
        Auditor([BrokenSink()], on_sink_error="warn").close()
    assert "cannot flush" in caplog.text


def test_bad_configuration_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="on_sink_error"):
        Auditor([], on_sink_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not an audit sink"):
        Auditor([object()])  # type: ignore[list-item]


def test_no_sinks_is_a_quiet_auditor() -> None:
    with Auditor([]) as auditor:
        auditor.emit(make_event(1))
