"""An ``audit_log`` value to its sink, the doctor's probe, and a database that does not answer."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from audit_helpers import make_event
from click.testing import CliRunner
from sql_helpers import closed_port

from sqlagent.audit import (
    Auditor,
    JsonlAuditSink,
    SQLAuditSink,
    is_audit_url,
    open_audit_sink,
    probe_audit_target,
    verify_sql_chain,
)
from sqlagent.cli._audit import audit
from sqlagent.errors import AuditError, ConfigError
from tests.dbservers import PG_ADMIN_URL


def dead_urls() -> list[str]:
    port = closed_port()
    return [
        f"postgresql+psycopg://postgres:s3cret@127.0.0.1:{port}/audit",
        f"mysql+pymysql://root:s3cret@127.0.0.1:{port}/audit",
    ]


def test_is_audit_url() -> None:
    assert is_audit_url("postgresql://u@h/db")
    assert is_audit_url("sqlite:///audit.db")
    assert not is_audit_url("logs/audit.jsonl")
    assert not is_audit_url(Path("postgresql://u@h/db"))  # a PathLike is always a file


def test_open_audit_sink_picks_the_sink(tmp_path: Path) -> None:
    for target in (tmp_path / "a.jsonl", str(tmp_path / "b.jsonl")):
        sink = open_audit_sink(target)
        assert isinstance(sink, JsonlAuditSink)
        sink.close()
    url = f"sqlite:///{tmp_path / 'a.db'}?audit_table=events&audit_head_table=events_tip"
    sql = open_audit_sink(url)
    try:
        assert isinstance(sql, SQLAuditSink)
        assert (sql.table.name, sql.head_table.name) == ("events", "events_tip")
        assert "audit_table" not in str(sql.engine.url)  # not passed on to the driver
        sql.emit(make_event(1))
    finally:
        sql.close()
    report = verify_sql_chain(f"sqlite:///{tmp_path / 'a.db'}", table_name="events",
                              head_table_name="events_tip")  # fmt: skip
    assert (report.ok, report.lines) == (True, 1)


def test_a_url_without_driver_gets_the_projects_driver() -> None:
    sink = open_audit_sink("postgresql://postgres@127.0.0.1/audit")
    try:
        assert isinstance(sink, SQLAuditSink)
        assert sink.engine.url.drivername == "postgresql+psycopg"
    finally:
        sink.close()


@pytest.mark.parametrize(
    ("target", "match"),
    [
        ("postgresql://u@h:notaport/db", "not a database URL"),
        ("nosuchdb://u@h/db", "not a database URL|driver"),
        ("sqlite:///a.db?audit_table=drop table", "audit table name"),
        ("sqlite:///a.db?audit_table=x&audit_head_table=x", "two names"),
    ],
)
def test_bad_urls_are_config_errors(target: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        open_audit_sink(target)


def test_nothing_is_done_before_the_first_event(tmp_path: Path) -> None:
    for url in dead_urls():
        SQLAuditSink(url).close()  # no connection attempt, no error
    assert not (tmp_path / "never.db").exists()
    SQLAuditSink(f"sqlite:///{tmp_path / 'never.db'}").close()
    assert not (tmp_path / "never.db").exists()


@pytest.mark.parametrize("which", [0, 1], ids=["postgres", "mysql"])
def test_unreachable_database_is_an_audit_error(which: int) -> None:
    url = dead_urls()[which]
    with SQLAuditSink(url) as sink:
        with pytest.raises(AuditError, match="could not record audit event") as info:
            sink.emit(make_event(1))
        assert "s3cret" not in str(info.value)
        assert "***" in str(info.value)
        with pytest.raises(AuditError):  # and again: nothing was cached as ready
            sink.emit(make_event(2))
    with pytest.raises(AuditError, match="not reachable"):
        probe_audit_target(url)


def test_unreachable_sqlite_file_is_an_audit_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'audit.db'}"
    with SQLAuditSink(url) as sink, pytest.raises(AuditError, match="unable to open"):
        sink.emit(make_event(1))


def test_auditor_refuses_or_warns_when_the_database_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = dead_urls()[0]
    failing = Auditor([SQLAuditSink(url)], on_sink_error="fail")
    with failing, pytest.raises(AuditError, match="SQLAuditSink: AuditError"):
        failing.emit(make_event(1))
    warning = Auditor([SQLAuditSink(url)], on_sink_error="warn")
    with warning, caplog.at_level(logging.WARNING, logger="sqlagent.audit"):
        warning.emit(make_event(1))
    assert "could not record audit event" in caplog.text


def test_cli_verify_unreachable_url_exits_2() -> None:
    result = CliRunner().invoke(audit, ["verify", dead_urls()[0]])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: postgresql+psycopg://postgres:***@127.0.0.1:")
    assert "cannot read the audit chain" in result.stderr


def test_cli_verify_bad_url_exits_2() -> None:
    result = CliRunner().invoke(audit, ["verify", "postgresql://u@h:notaport/db"])
    assert result.exit_code == 2
    assert "not a database URL" in result.stderr


def test_probe_files(tmp_path: Path) -> None:
    assert probe_audit_target(tmp_path / "new" / "a.jsonl").endswith("will be created")
    existing = tmp_path / "a.jsonl"
    existing.write_text("", encoding="utf-8")
    assert probe_audit_target(existing).endswith("appendable")
    with pytest.raises(AuditError, match="is not a file"):
        probe_audit_target(tmp_path)
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(AuditError, match="not a writable folder"):
            probe_audit_target(locked / "a.jsonl")


def test_probe_sqlite_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    url = f"sqlite:///{db}"
    assert probe_audit_target(url).endswith("the database file and chain tables will be created")
    assert not db.exists()
    with pytest.raises(AuditError, match="not a writable folder"):
        probe_audit_target(f"sqlite:///{tmp_path / 'missing' / 'audit.db'}")
    db.touch()
    assert probe_audit_target(url).endswith("reachable; the chain tables will be created")
    with SQLAuditSink(url) as sink:
        sink.emit(make_event(1))
        sink.emit(make_event(2))
    assert probe_audit_target(url).endswith("reachable; 2 events in the chain")


@pytest.mark.postgres
def test_probe_postgres() -> None:
    # The admin database is only read: the probe creates nothing.
    try:
        detail = probe_audit_target(PG_ADMIN_URL + "?audit_table=sqlagent_probe_only")
    except AuditError as exc:
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    assert "reachable; the chain tables will be created" in detail


def test_cli_verify_missing_sqlite_file_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "missing.db"
    result = CliRunner().invoke(audit, ["verify", f"sqlite:///{db}"])
    assert result.exit_code == 2
    assert "unable to open database file" in result.stderr
    assert not db.exists()  # verify opens SQLite read-only
