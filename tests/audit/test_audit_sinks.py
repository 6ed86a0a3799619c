"""The sinks, on real files and a real SQLite database."""

from __future__ import annotations

import json
import logging
import multiprocessing
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from audit_helpers import make_event, read_lines, records, write_chain

from sqlagent.audit import (
    GENESIS_HASH,
    AuditEvent,
    AuditSink,
    JsonlAuditSink,
    LoggingAuditSink,
    MemoryAuditSink,
    SQLAuditSink,
    verify_chain,
    verify_sql_chain,
)
from sqlagent.errors import AuditError


@pytest.mark.parametrize(
    "sink_type", [JsonlAuditSink, LoggingAuditSink, MemoryAuditSink, SQLAuditSink]
)
def test_every_sink_is_an_audit_sink(tmp_path: Path, sink_type: type) -> None:
    sink: AuditSink
    if sink_type is JsonlAuditSink:
        sink = sink_type(tmp_path / "a.jsonl")
    elif sink_type is SQLAuditSink:
        sink = sink_type(f"sqlite:///{tmp_path / 'a.db'}")
    else:
        sink = sink_type()
    try:
        assert isinstance(sink, AuditSink)
    finally:
        sink.close()


# JsonlAuditSink ------------------------------------------------------------------------------


def test_jsonl_writes_one_chained_line_per_event(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "audit.jsonl"  # parent dirs are created
    event = make_event(1)
    with JsonlAuditSink(path, fsync=True) as sink:
        sink.emit(event)
        sink.emit(make_event(2))
        assert len(read_lines(path)) == 2  # on disk before close
    first, second = records(path)
    assert (first["seq"], first["prev"]) == (0, GENESIS_HASH)
    assert (second["seq"], second["prev"]) == (1, first["hash"])
    fields = {k: v for k, v in first.items() if k not in ("seq", "prev", "hash")}
    assert AuditEvent.from_dict(fields) == event
    assert verify_chain(path).ok


def test_jsonl_continues_the_chain_of_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_chain(path, 3)
    with JsonlAuditSink(path) as first, JsonlAuditSink(path) as second:
        first.emit(make_event(3))
        second.emit(make_event(4))  # sees the line `first` just wrote
        first.emit(make_event(5))
    assert [r["seq"] for r in records(path)] == list(range(6))
    report = verify_chain(path)
    assert report.ok
    assert report.lines == 6


def test_jsonl_refuses_a_file_without_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_chain(path, 2)
    content = path.read_text(encoding="utf-8")
    path.write_text(content[:-20], encoding="utf-8")  # a writer crashed mid-line
    with JsonlAuditSink(path) as sink, pytest.raises(AuditError, match="incomplete"):
        sink.emit(make_event(2))
    assert path.read_text(encoding="utf-8") == content[:-20]  # nothing appended


def test_jsonl_refuses_to_chain_onto_a_foreign_last_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text('{"hello": "world"}\n', encoding="utf-8")
    with JsonlAuditSink(path) as sink, pytest.raises(AuditError, match="not a chained"):
        sink.emit(make_event(0))


def test_jsonl_long_last_line_is_read_across_chunks(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with JsonlAuditSink(path) as sink:
        sink.emit(make_event(0))
        sink.emit(AuditEvent(name="ask", verdict="allowed", question="x" * 50_000))
        sink.emit(make_event(2))
    assert [r["seq"] for r in records(path)] == [0, 1, 2]
    assert verify_chain(path).ok


def test_jsonl_emit_after_close_raises(tmp_path: Path) -> None:
    sink = JsonlAuditSink(tmp_path / "audit.jsonl")
    sink.close()
    with pytest.raises(AuditError, match="closed"):
        sink.emit(make_event(0))


def test_jsonl_threads_share_one_sink(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with JsonlAuditSink(path) as shared, JsonlAuditSink(path) as other:

        def work(sink: JsonlAuditSink) -> None:
            for i in range(25):
                sink.emit(make_event(i))

        threads = [threading.Thread(target=work, args=(s,)) for s in [shared] * 6 + [other] * 2]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    report = verify_chain(path)
    assert report.ok
    assert report.lines == 200


def _append_from_process(path: str, worker: int, count: int) -> None:
    with JsonlAuditSink(path) as sink:
        for i in range(count):
            sink.emit(AuditEvent(name="validate", verdict="allowed", extra={"w": worker, "i": i}))


@pytest.mark.slow
def test_jsonl_concurrent_processes(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    ctx = multiprocessing.get_context("spawn")
    processes = [
        ctx.Process(target=_append_from_process, args=(str(path), w, 50)) for w in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    report = verify_chain(path)
    assert report.ok, report.problems
    assert report.lines == 200
    recs = records(path)
    assert [r["seq"] for r in recs] == list(range(200))
    assert sorted((r["extra"]["w"], r["extra"]["i"]) for r in recs) == [
        (w, i) for w in range(4) for i in range(50)
    ]


# LoggingAuditSink ----------------------------------------------------------------------------


def test_logging_sink_logs_one_json_line(caplog: pytest.LogCaptureFixture) -> None:
    event = make_event(1)
    sink = LoggingAuditSink()
    with caplog.at_level(logging.INFO, logger="sqlagent.audit"):
        sink.emit(event)
    sink.close()
    [record] = caplog.records
    assert record.name == "sqlagent.audit"
    assert record.levelno == logging.INFO
    assert json.loads(record.getMessage()) == event.to_dict()
    assert getattr(record, "audit_event") == event.to_dict()  # noqa: B009


def test_logging_sink_custom_logger_and_level(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("myapp.audit")
    sink = LoggingAuditSink(logger, level=logging.WARNING)
    with caplog.at_level(logging.WARNING, logger="myapp.audit"):
        sink.emit(make_event(2))
    assert [(r.name, r.levelno) for r in caplog.records] == [("myapp.audit", logging.WARNING)]


# MemoryAuditSink -----------------------------------------------------------------------------


def test_memory_sink_keeps_events_in_order() -> None:
    sink = MemoryAuditSink()
    events = [make_event(i) for i in range(3)]
    for event in events:
        sink.emit(event)
    sink.close()
    assert sink.events == events


# SQLAuditSink --------------------------------------------------------------------------------


def test_sql_sink_on_a_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    event = AuditEvent(
        name="ask",
        verdict="rejected",
        role="analyst",
        policy_mode="policy",
        dialect="sqlite",
        question="who earns most?",
        sql_in="SELECT salary FROM staff",
        violations=({"code": "column_denied", "message": "no", "suggestions": ["name"]},),
        tables=("staff",),
        columns=("staff.salary",),
        masked_columns=("staff.email",),
        row_count=None,
        latency_ms=12.5,
        extra={"trace": "abc"},
    )
    with SQLAuditSink(f"sqlite:///{db}") as sink:
        sink.emit(event)
        sink.emit(make_event(7))
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM sqlagent_audit ORDER BY name")).mappings()
            first, second = (dict(row) for row in rows)
    finally:
        engine.dispose()
    assert first["request_id"] == event.request_id
    assert first["created"] == event.created
    assert (first["verdict"], first["role"], first["policy_mode"]) == (
        "rejected",
        "analyst",
        "policy",
    )
    assert first["latency_ms"] == 12.5
    assert first["row_count"] is None
    assert json.loads(first["violations"]) == [event.violations[0]]
    assert json.loads(first["columns"]) == ["staff.salary"]
    assert json.loads(first["masked_columns"]) == ["staff.email"]
    assert json.loads(first["extra"]) == {"trace": "abc"}
    assert second["name"] == "validate"


def test_sql_sink_reuses_an_existing_table_and_a_callers_engine(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    try:
        with SQLAuditSink(engine, table_name="audit_log") as sink:
            sink.emit(make_event(1))
        with SQLAuditSink(engine, table_name="audit_log") as sink:  # table already there
            sink.emit(make_event(2))
        # The caller's engine was not disposed by the sink: it still works.
        with engine.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one()
        assert count == 2
    finally:
        engine.dispose()


def test_sql_sink_records_a_repeated_request_id(tmp_path: Path) -> None:
    # As in the JSONL chain: the log records what happened, twice if it was emitted twice.
    event = make_event(1)
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    with SQLAuditSink(url) as sink:
        sink.emit(event)
        sink.emit(event)
    report = verify_sql_chain(url)
    assert (report.ok, report.lines) == (True, 2)


def test_sql_sink_emit_after_close_raises(tmp_path: Path) -> None:
    sink = SQLAuditSink(f"sqlite:///{tmp_path / 'audit.db'}")
    sink.close()
    sink.close()  # idempotent
    with pytest.raises(AuditError, match="closed"):
        sink.emit(make_event(1))
