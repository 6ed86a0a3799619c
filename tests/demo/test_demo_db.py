"""The HR demo database: schema, content, determinism, and the packaged policy."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest
import yaml

from sqlagent.config import AgentConfig
from sqlagent.demo import (
    DEMO_QUESTIONS,
    DemoPaths,
    build_demo_database,
    demo_policy_text,
    write_demo,
)
from sqlagent.errors import ConfigError
from sqlagent.memory import read_examples

TABLES = ("departments", "employees", "projects", "assignments", "payroll")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo_database(tmp_path_factory.mktemp("demo") / "hr.sqlite")


def query(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql, params).fetchall()


def dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Schema and every row, in a stable order: the database's content, not its bytes."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        out = {
            "sqlite_master": conn.execute("SELECT * FROM sqlite_master ORDER BY name").fetchall()
        }
        for table in TABLES:
            out[table] = conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
    return out


def test_returns_path(tmp_path: Path) -> None:
    target = tmp_path / "x.sqlite"
    assert build_demo_database(str(target)) == target
    assert target.is_file()


def test_row_counts(db: Path) -> None:
    counts = {t: query(db, f"SELECT COUNT(*) FROM {t}")[0][0] for t in TABLES}
    assert counts["departments"] == 7
    assert counts["employees"] == 60
    assert counts["projects"] == 12
    assert 80 <= counts["assignments"] <= 120  # type: ignore[operator]
    assert counts["payroll"] == 60 * 12


def test_schema_columns(db: Path) -> None:
    def columns(table: str) -> list[object]:
        return [row[1] for row in query(db, f"PRAGMA table_info({table})")]

    assert columns("departments") == ["id", "name", "location", "budget"]
    assert columns("employees") == [
        "id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "national_id",
        "salary",
        "title",
        "hire_date",
        "department_id",
        "manager_id",
    ]
    assert columns("projects") == [
        "id",
        "name",
        "department_id",
        "budget",
        "start_date",
        "end_date",
    ]
    assert columns("assignments") == ["employee_id", "project_id", "role", "hours_per_week"]
    assert columns("payroll") == ["id", "employee_id", "period", "gross_pay", "bonus"]


def test_foreign_keys_declared_and_intact(db: Path) -> None:
    assert query(db, "PRAGMA foreign_key_check") == []
    targets = {row[2] for row in query(db, "PRAGMA foreign_key_list(employees)")}
    assert targets == {"departments", "employees"}
    assert {row[2] for row in query(db, "PRAGMA foreign_key_list(assignments)")} == {
        "employees",
        "projects",
    }
    assert {row[2] for row in query(db, "PRAGMA foreign_key_list(payroll)")} == {"employees"}
    assert {row[2] for row in query(db, "PRAGMA foreign_key_list(projects)")} == {"departments"}


def test_managers_come_before_their_reports(db: Path) -> None:
    rows = query(db, "SELECT id, manager_id FROM employees WHERE manager_id IS NOT NULL")
    assert rows
    assert all(manager < employee for employee, manager in rows)  # type: ignore[operator]


def test_fake_personal_data_shapes(db: Path) -> None:
    rows = query(db, "SELECT email, national_id, hire_date FROM employees")
    for email, national_id, hire_date in rows:
        assert str(email).endswith("@example.com")
        assert str(national_id).startswith("NI-")
        assert len(str(national_id)) == len("NI-0000-0000")
        assert str(hire_date) < "2025-01-01"
    periods = query(db, "SELECT DISTINCT period FROM payroll ORDER BY period")
    assert [p for (p,) in periods] == [f"2025-{m:02d}" for m in range(1, 13)]


def test_salaries_follow_titles(db: Path) -> None:
    (vp_min,) = query(db, "SELECT MIN(salary) FROM employees WHERE title LIKE 'VP of %'")[0]
    (staff_max,) = query(db, "SELECT MAX(salary) FROM employees WHERE manager_id IS NOT NULL")[0]
    (sdr_max,) = query(
        db, "SELECT MAX(salary) FROM employees WHERE title = 'Sales Development Representative'"
    )[0]
    assert vp_min > sdr_max  # type: ignore[operator]
    assert staff_max < 250_000  # type: ignore[operator]


def test_tricky_rows(db: Path) -> None:
    assert query(db, "SELECT first_name FROM employees WHERE last_name = ?", ("O'Brien",))
    assert query(db, "SELECT id FROM projects WHERE name = 'Drop Table Cleanup'")
    empty = query(
        db,
        "SELECT d.name FROM departments d LEFT JOIN employees e ON e.department_id = d.id "
        "WHERE e.id IS NULL",
    )
    assert empty == [("Legal",)]
    assert query(db, "SELECT COUNT(*) FROM employees WHERE manager_id IS NULL")[0][0] >= 1  # type: ignore[operator]


def test_content_is_deterministic(tmp_path: Path, db: Path) -> None:
    again = build_demo_database(tmp_path / "again.sqlite")
    assert dump(again) == dump(db)


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "hr.sqlite"
    target.write_text("precious")
    with pytest.raises(ConfigError, match="already exists"):
        build_demo_database(target)
    assert target.read_text() == "precious"
    build_demo_database(target, overwrite=True)
    assert query(target, "SELECT COUNT(*) FROM employees") == [(60,)]
    assert [p.name for p in tmp_path.iterdir()] == ["hr.sqlite"]  # no temporary files left


def test_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        build_demo_database(tmp_path / "missing" / "hr.sqlite")


@pytest.mark.parametrize(("question", "sql"), DEMO_QUESTIONS, ids=[q for q, _ in DEMO_QUESTIONS])
def test_demo_questions_run(db: Path, question: str, sql: str) -> None:
    assert question.endswith("?")
    assert query(db, sql), f"no rows for {question!r}"


def test_demo_questions_are_unique() -> None:
    assert len(DEMO_QUESTIONS) >= 10
    assert len({q for q, _ in DEMO_QUESTIONS}) == len(DEMO_QUESTIONS)


def test_policy_structure() -> None:
    policy = yaml.safe_load(demo_policy_text())
    assert policy["default_role"] == "viewer"
    roles = policy["roles"]
    assert set(roles) == {"viewer", "analyst", "hr", "admin"}
    viewer = roles["viewer"]["tables"]
    assert viewer["departments"] == ["*"]
    assert set(viewer["employees"]) == {
        "id",
        "first_name",
        "last_name",
        "title",
        "department_id",
        "manager_id",
        "hire_date",
    }
    assert "payroll" not in viewer
    assert roles["analyst"]["inherits"] == ["viewer"]
    assert roles["analyst"]["tables"] == {"employees": ["salary"], "payroll": ["*"]}
    assert roles["analyst"]["masked"] == {
        "employees": ["salary"],
        "payroll": ["gross_pay", "bonus"],
    }
    assert roles["hr"]["inherits"] == ["viewer"]
    assert set(roles["hr"]["tables"]["employees"]) == {"email", "phone", "national_id", "salary"}
    assert "masked" not in roles["hr"]
    assert roles["admin"] == {"tables": {"*": ["*"]}}


def test_policy_names_only_real_tables_and_columns(db: Path) -> None:
    real = {t: {row[1] for row in query(db, f"PRAGMA table_info({t})")} for t in TABLES}
    policy = yaml.safe_load(demo_policy_text())
    for role in policy["roles"].values():
        for section in ("tables", "masked"):
            for table, cols in role.get(section, {}).items():
                if table == "*":
                    continue
                assert table in real
                assert set(cols) - {"*"} <= real[table]


def test_write_demo(tmp_path: Path) -> None:
    paths = write_demo(tmp_path / "nested" / "demo")
    assert isinstance(paths, DemoPaths)
    assert paths.database.is_absolute()
    assert paths.database.name == "hr.sqlite"
    assert paths.policy.read_text(encoding="utf-8") == demo_policy_text()
    assert paths.url == f"sqlite:///{paths.database.as_posix()}"
    assert [e.question for e in read_examples(paths.examples)] == [
        q.question for q in DEMO_QUESTIONS
    ]
    config = AgentConfig.from_file(paths.config)
    assert config.database == paths.url
    assert config.policy == paths.policy
    assert config.docs == (paths.glossary,)
    with pytest.raises(AttributeError):
        paths.url = "x"  # type: ignore[misc]


def test_write_demo_refuses_then_overwrites(tmp_path: Path) -> None:
    paths = write_demo(tmp_path)
    paths.policy.write_text("edited")
    with pytest.raises(ConfigError, match="already exists"):
        write_demo(tmp_path)
    assert paths.policy.read_text() == "edited"
    again = write_demo(tmp_path, overwrite=True)
    assert again == paths
    assert paths.policy.read_text(encoding="utf-8") == demo_policy_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".gitignore",
        "examples.jsonl",
        "glossary.md",
        "hr.sqlite",
        "policy.yaml",
        "sqlagent.yaml",
    ]


def test_write_demo_checks_both_files_before_writing(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text("mine")
    with pytest.raises(ConfigError, match=r"policy\.yaml"):
        write_demo(tmp_path)
    assert not (tmp_path / "hr.sqlite").exists()
