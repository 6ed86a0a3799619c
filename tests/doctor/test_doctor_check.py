"""``doctor check`` on real files and databases: the demo, model and adapter directories, the
read-only probe against a database that refuses writes and against ones that do not."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sqlagent.config import AgentConfig
from sqlagent.demo import write_demo
from sqlagent.doctor import (
    PROBE_TABLE,
    CheckContext,
    CheckResult,
    CudaDevice,
    probe_read_only,
    run_checks,
)
from sqlagent.doctor._check import (
    check_audit,
    check_database,
    check_gpu_packages,
    check_models,
    check_packages,
    check_retrieval,
    check_torch,
)
from sqlagent.doctor._packages import requirements, satisfies
from sqlagent.errors import ExecutionError
from sqlagent.execution import ExecutionResult, ReadOnlyExecutor
from sqlagent.llm import write_adapter_manifest


def _by_name(rows: list[CheckResult] | tuple[CheckResult, ...]) -> dict[str, CheckResult]:
    return {r.name: r for r in rows}


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return write_demo(tmp_path / "demo").config


def _tables(db: Path) -> set[str]:
    with closing(sqlite3.connect(db)) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


# --- the demo -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_is_ready_and_the_probe_is_refused(demo: Path) -> None:
    db = demo.parent / "hr.sqlite"
    before = _tables(db)
    report = run_checks(AgentConfig.from_file(demo), config_path=demo)
    rows = _by_name(report.checks)
    assert report.ok, report.to_markdown()
    assert rows["database"].status == "pass"
    assert rows["read-only"].status == "pass"
    assert "refused" in rows["read-only"].detail
    assert rows["privileges"].status == "skip"  # SQLite: opened read-only, no login
    assert rows["audit sink"].status == "pass"
    assert rows["chromadb path"].status in ("pass", "skip")
    assert rows["model"].status == "pass"  # the demo's mock model and its examples
    assert "13 stored example(s)" in rows["model"].detail
    assert "0.90" in rows["model"].detail
    assert rows["policy"].status == "pass"
    assert rows["policy names"].status == "pass"
    assert _tables(db) == before
    assert PROBE_TABLE not in _tables(db)


def test_report_markdown(demo: Path) -> None:
    report = run_checks(AgentConfig.from_file(demo), config_path=demo)
    text = report.to_markdown()
    assert text.startswith("# sqlagent doctor report")
    assert "| read-only | pass |" in text
    assert "**Ready**" in text
    data = report.to_dict()
    json.dumps(data)
    assert data["ok"] is True
    assert data["summary"]["fail"] == 0


# --- the read-only probe ------------------------------------------------------------------------


class _EngineExecutor:
    """A deliberately unsafe executor: a plain read-write SQLAlchemy engine, each statement
    committed or rolled back (which does not undo DDL: pysqlite opens no transaction for it)."""

    def __init__(self, engine: sa.Engine, *, commit: bool = True) -> None:
        self.engine = engine
        self.commit = commit

    def run(self, sql: str) -> ExecutionResult:
        with self.engine.connect() as conn:
            try:
                result = conn.execute(sa.text(sql))
                rows = tuple(tuple(r) for r in result) if result.returns_rows else ()
            except sa.exc.DBAPIError as exc:
                raise ExecutionError(str(exc.orig)) from exc
            if self.commit:
                conn.commit()
            else:
                conn.rollback()
        return ExecutionResult((), rows, len(rows), False, 0.0)

    def close(self) -> None:
        self.engine.dispose()


class _RollbackExecutor:
    """Unsafe too, but every statement runs in an explicit transaction that is rolled back
    (DDL included: Python's sqlite3 does not open a transaction for DDL by itself)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def run(self, sql: str) -> ExecutionResult:
        with closing(sqlite3.connect(self.path, isolation_level=None)) as conn:
            conn.execute("BEGIN")
            try:
                rows = tuple(conn.execute(sql).fetchall())
            except sqlite3.Error as exc:
                raise ExecutionError(str(exc)) from exc
            finally:
                conn.execute("ROLLBACK")
        return ExecutionResult((), rows, len(rows), False, 0.0)

    def close(self) -> None:
        pass


@pytest.fixture
def writable_db(tmp_path: Path) -> Iterator[tuple[Path, sa.Engine]]:
    path = tmp_path / "rw.sqlite"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.commit()
    engine = sa.create_engine(f"sqlite:///{path}")
    yield path, engine
    engine.dispose()


@pytest.mark.parametrize("commit", [True, False], ids=["commit", "rollback"])
def test_probe_fails_on_a_writable_engine_and_cleans_up(
    writable_db: tuple[Path, sa.Engine], commit: bool
) -> None:
    path, engine = writable_db
    row = probe_read_only(_EngineExecutor(engine, commit=commit))
    assert row.status == "fail"
    assert row.blocking
    assert "ACCEPTED" in row.detail
    assert "persisted and was dropped" in row.detail
    assert _tables(path) == {"t"}


def test_probe_fails_on_a_writable_transaction_that_rolls_back(
    writable_db: tuple[Path, sa.Engine],
) -> None:
    path, _ = writable_db
    row = probe_read_only(_RollbackExecutor(path))
    assert row.status == "fail"
    assert row.blocking
    assert "nothing persisted" in row.detail
    assert _tables(path) == {"t"}


def test_probe_passes_through_the_read_only_executor(
    writable_db: tuple[Path, sa.Engine],
) -> None:
    path, _ = writable_db
    with ReadOnlyExecutor(f"sqlite:///{path}") as executor:
        row = probe_read_only(executor)
    assert row.status == "pass", row.detail
    assert _tables(path) == {"t"}


def test_probe_warns_when_the_failure_is_not_a_refusal() -> None:
    class Broken:
        def run(self, sql: str) -> ExecutionResult:
            raise ExecutionError("syntax error somewhere")

        def close(self) -> None:
            pass

    row = probe_read_only(Broken())
    assert row.status == "warn"
    assert not row.blocking


# --- database ------------------------------------------------------------------------------------


def test_missing_database_is_blocking(tmp_path: Path) -> None:
    report = run_checks(database=f"sqlite:///{tmp_path / 'absent.sqlite'}", checks=[check_database])
    rows = _by_name(report.checks)
    assert rows["database"].status == "fail"
    assert rows["database"].blocking
    assert rows["read-only"].status == "skip"
    assert not report.ok
    assert not (tmp_path / "absent.sqlite").exists()


def test_no_config_no_database_skips(tmp_path: Path) -> None:
    ctx = CheckContext()
    for check in (check_database, check_models, check_retrieval, check_audit):
        assert {r.status for r in check(ctx)} == {"skip"}


# --- model files and adapters ------------------------------------------------------------------


def _model_dir(path: Path, *, seed: bytes = b"w") -> Path:
    path.mkdir(parents=True)
    config = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 100}  # fmt: skip
    (path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (path / "model.safetensors").write_bytes(seed * 1000)
    (path / "tokenizer.json").write_text("{}", encoding="utf-8")
    return path


def _adapter_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text("{}", encoding="utf-8")
    (path / "adapter_model.safetensors").write_bytes(b"a" * 100)
    return path


def _config(tmp_path: Path, **options: Any) -> AgentConfig:
    return AgentConfig.from_mapping(
        {"database": "sqlite:///x.sqlite", **options}, base_dir=tmp_path
    )


def test_model_files_present(tmp_path: Path) -> None:
    model = _model_dir(tmp_path / "m")
    rows = check_models(CheckContext(config=_config(tmp_path, llm=f"transformers:{model}")))
    assert rows[0].status == "pass", rows[0].detail
    assert "1 weight file" in rows[0].detail


def test_model_plan_on_the_detected_gpu(tmp_path: Path) -> None:
    model = _model_dir(tmp_path / "m")
    config = _config(tmp_path, llm=f"transformers:{model}")
    h100 = CudaDevice("NVIDIA H100 80GB HBM3", (9, 0), 85_028_896_768)
    row = check_models(CheckContext(config=config, cuda_devices=(h100,)))[0]
    assert row.status == "pass", row.detail
    assert "fits on NVIDIA H100" in row.detail
    big = json.loads((model / "config.json").read_text(encoding="utf-8"))
    big.update(hidden_size=8192, num_hidden_layers=80, intermediate_size=28672, vocab_size=128256)
    (model / "config.json").write_text(json.dumps(big), encoding="utf-8")
    t4 = CudaDevice("Tesla T4", (7, 5), 15_828_320_256)
    row = check_models(CheckContext(config=config, cuda_devices=(t4,)))[0]
    assert row.status == "warn"
    assert not row.blocking
    assert "does not fit on Tesla T4" in row.detail


def test_model_missing_or_incomplete_is_blocking(tmp_path: Path) -> None:
    rows = check_models(CheckContext(config=_config(tmp_path, llm=f"transformers:{tmp_path}/nope")))
    assert rows[0].status == "fail"
    assert rows[0].blocking
    model = _model_dir(tmp_path / "m")
    (model / "tokenizer.json").unlink()
    rows = check_models(CheckContext(config=_config(tmp_path, llm=f"transformers:{model}")))
    assert rows[0].status == "fail"
    assert "tokenizer" in rows[0].detail


def test_adapter_manifest(tmp_path: Path) -> None:
    model = _model_dir(tmp_path / "m")
    other = _model_dir(tmp_path / "other", seed=b"o")
    adapter = _adapter_dir(tmp_path / "a")
    ctx = CheckContext(config=_config(tmp_path, llm=f"transformers:{model}@{adapter}"))
    rows = check_models(ctx)
    assert [r.status for r in rows] == ["pass", "warn"]  # no manifest: cannot be checked
    write_adapter_manifest(adapter, base_model=model)
    assert [r.status for r in check_models(ctx)] == ["pass", "pass"]
    write_adapter_manifest(adapter, base_model=other)
    rows = check_models(ctx)
    assert rows[1].status == "fail"
    assert rows[1].blocking
    assert "base model" in rows[1].detail


def test_fallback_and_served_models(tmp_path: Path) -> None:
    config = _config(tmp_path, llm="openai:http://127.0.0.1:1/v1", model="m",
                     fallbacks=[f"transformers:{tmp_path}/missing"])  # fmt: skip
    rows = _by_name(check_models(CheckContext(config=config)))
    assert rows["model"].status == "skip"
    assert rows["model (fallback 1)"].status == "fail"


# --- paths: chromadb and audit ------------------------------------------------------------------


@pytest.mark.slow
def test_unwritable_chroma_path_is_blocking(tmp_path: Path) -> None:
    pytest.importorskip("chromadb")
    (tmp_path / "file").write_text("", encoding="utf-8")
    config = _config(tmp_path, retrieval={"path": "file/index", "store": "chroma"})
    row = check_retrieval(CheckContext(config=config))[0]
    assert row.status == "fail"
    assert row.blocking
    ok = check_retrieval(CheckContext(config=_config(tmp_path, retrieval={"path": "idx"})))[0]
    assert ok.status == "pass"
    assert not (tmp_path / "idx").exists()  # checked, not created


def test_audit_sink(tmp_path: Path) -> None:
    from sqlagent.audit import AuditEvent, JsonlAuditSink

    log = tmp_path / "audit.jsonl"
    config = _config(tmp_path, audit_log="audit.jsonl")
    assert check_audit(CheckContext(config=config))[0].status == "pass"
    assert not log.exists()
    with JsonlAuditSink(log) as sink:
        sink.emit(AuditEvent(name="ask", verdict="allowed", question="q"))
    row = check_audit(CheckContext(config=config))[0]
    assert row.status == "pass"
    assert "chain intact (1 lines)" in row.detail
    log.write_text(log.read_text(encoding="utf-8").replace('"q"', '"edited"'), encoding="utf-8")
    assert check_audit(CheckContext(config=config))[0].status == "warn"
    (tmp_path / "file").write_text("", encoding="utf-8")
    bad = _config(tmp_path, audit_log="file/audit.jsonl")
    row = check_audit(CheckContext(config=bad))[0]
    assert row.status == "fail"
    assert row.blocking
    lenient = _config(tmp_path, audit_log="file/audit.jsonl", on_audit_error="warn")
    assert check_audit(CheckContext(config=lenient))[0].status == "warn"


# --- environment ----------------------------------------------------------------------------------


def test_cuda_rows_from_a_described_machine() -> None:
    t4 = CudaDevice("Tesla T4", (7, 5), 15_828_320_256)
    h100 = CudaDevice("NVIDIA H100 80GB HBM3", (9, 0), 85_028_896_768)
    rows = check_torch(CheckContext(torch_version="2.13.0", cuda_version="12.8",
                                    cuda_devices=(t4, h100)))  # fmt: skip
    assert [r.name for r in rows] == ["torch", "cuda:0", "cuda:1"]
    assert "no bf16" in rows[1].detail
    assert "7.5" in rows[1].detail
    assert "bf16 yes" in rows[2].detail


def test_no_torch_is_blocking_only_for_local_models(tmp_path: Path) -> None:
    assert check_torch(CheckContext())[0].status == "skip"
    assert check_torch(CheckContext(torch_error="torch fails to import"))[0].status == "warn"
    for llm in (f"transformers:{tmp_path}", "smollm2"):  # smollm2 runs through transformers
        config = _config(tmp_path, llm=llm)
        row = check_torch(CheckContext(config=config))[0]
        assert (row.status, row.blocking) == ("fail", True), llm


def test_gpu_packages_are_not_imported_without_cuda() -> None:
    rows = check_gpu_packages(CheckContext(torch_version="2.13.0"))
    assert {r.name for r in rows} == {"unsloth", "bitsandbytes"}
    assert {r.status for r in rows} == {"skip"}
    assert "unsloth" not in sys.modules


def test_packages_against_installed_pins() -> None:
    reqs = requirements()
    names = {r.name.lower() for r in reqs if r.extra is None}
    assert {"sqlglot", "sqlalchemy", "click"} <= names
    assert all(not r.name.lower().startswith("sqlagent") for r in reqs)
    rows = _by_name(check_packages(CheckContext()))
    assert rows["packages"].status == "pass", rows["packages"].detail
    assert rows["packages [local]"].status in ("pass", "warn")


@pytest.mark.parametrize(
    ("version", "spec", "ok"),
    [
        ("2.13.0+cpu", "==2.13.0", True),
        ("2.1.9", ">=2.0,<2.2", True),
        ("2.2.0", ">=2.0,<2.2", False),
        ("30.30.0", "==30.30.0", True),
        ("30.30.1", "==30.30.0", False),
        ("0.28.1", "<0.29,>=0.27", True),
        ("1.4.2", "~=1.4", True),
        ("2.0", "~=1.4", False),
        ("2.5", "==2.*", True),
        ("1.0rc1", ">=1.0", True),
        ("1.0", "", True),
        ("1.0", "=>1", False),
    ],
)
def test_version_specifiers(version: str, spec: str, ok: bool) -> None:
    assert satisfies(version, spec) is ok


def test_a_crashing_check_is_reported() -> None:
    def check_boom(ctx: CheckContext) -> list[CheckResult]:
        raise RuntimeError("bug")

    report = run_checks(checks=[check_boom], context=CheckContext())
    row = _by_name(report.checks)["boom"]
    assert row.status == "fail"
    assert "RuntimeError" in row.detail


# --- PostgreSQL ---------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_read_only_probe() -> None:
    from tests.dbservers import create_test_database, drop_test_database

    url = create_test_database("postgres", "sqlagent_doctor_test")
    try:
        report = run_checks(database=url, checks=[check_database], context=None)
        rows = _by_name(report.checks)
        assert rows["database"].status == "pass", rows["database"].detail
        assert rows["read-only"].status == "pass", rows["read-only"].detail
        engine = sa.create_engine(url)
        try:
            assert PROBE_TABLE not in sa.inspect(engine).get_table_names()
        finally:
            engine.dispose()
    finally:
        drop_test_database("postgres", "sqlagent_doctor_test")


# --- least privilege -----------------------------------------------------------------------------


@pytest.fixture(params=[
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
])  # fmt: skip
def server_logins(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(admin URL, reader URL) of a small database on a server."""
    from tests.dbservers import create_test_database, drop_test_database, execute_sql
    from tests.execution.readers import create_reader, drop_reader

    kind = str(request.param)
    admin = create_test_database(kind, "sqlagent_doctor_lp")
    execute_sql(admin, "CREATE TABLE t (x INTEGER)")
    reader = create_reader(kind, admin, "sqlagent_doctor_reader")
    yield admin, reader
    drop_test_database(kind, "sqlagent_doctor_lp")
    drop_reader(kind, "sqlagent_doctor_reader")


@pytest.mark.slow
def test_privileges_row(server_logins: tuple[str, str], tmp_path: Path) -> None:
    admin, reader = server_logins
    rows = _by_name(run_checks(database=reader, checks=[check_database]).checks)
    assert rows["privileges"].status == "pass", rows["privileges"].detail
    assert rows["read-only"].status == "pass"

    rows = _by_name(run_checks(database=admin, checks=[check_database]).checks)
    assert rows["privileges"].status == "warn"
    assert not rows["privileges"].blocking
    assert "beyond reading" in rows["privileges"].detail

    demo = write_demo(tmp_path / "demo").config
    strict = AgentConfig.from_file(demo).model_copy(
        update={"database": admin, "require_least_privilege": True}
    )
    report = run_checks(strict, checks=[check_database])
    row = _by_name(report.checks)["privileges"]
    assert (row.status, row.blocking) == ("fail", True)
    assert "require_least_privilege" in row.detail
    assert not report.ok

    report = run_checks(strict.model_copy(update={"database": reader}), checks=[check_database])
    assert _by_name(report.checks)["privileges"].status == "pass"
    assert report.ok
