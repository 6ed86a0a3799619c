"""``sqlagent validate``: the scripted contract (exit codes, --json object, stdin, audit)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sqlagent.audit import verify_chain
from sqlagent.cli import main
from sqlagent.demo import demo_policy_text
from tests.conftest import FIXTURES


@pytest.fixture
def demo(demo_db: Path, tmp_path: Path) -> tuple[str, str]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(demo_policy_text())
    return f"sqlite:///{demo_db}", str(policy)


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["validate", *args], input=stdin)
    return result.exit_code, result.output


def test_allowed_json_contract(demo: tuple[str, str]) -> None:
    url, policy = demo
    code, out = run("--db", url, "--policy", policy, "--role", "analyst", "--json",
                    "SELECT first_name, salary FROM employees")  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert {"allowed", "sql", "violations", "tables", "columns"} <= set(data)
    assert data["allowed"] is True
    assert data["violations"] == []
    assert "'***' AS salary" in data["sql"]
    assert data["tables"] == ["employees"]
    assert data["columns"] == ["employees.first_name", "employees.salary"]


def test_rejected_json_contract(demo: tuple[str, str]) -> None:
    url, policy = demo
    code, out = run("--db", url, "--policy", policy, "--json", "SELECT emial FROM employees")
    assert code == 1
    data = json.loads(out)
    assert data["allowed"] is False
    assert data["sql"] is None
    (violation,) = data["violations"]
    assert set(violation) == {"code", "message", "suggestions"}
    assert violation["code"] == "unknown_column"


def test_every_contract_code_reachable_from_the_cli(demo: tuple[str, str]) -> None:
    url, policy = demo
    cases = {
        "parse_error": "SELEC 1",
        "multiple_statements": "SELECT 1; SELECT 2",
        "not_read_only": "UPDATE employees SET salary = 0",
        "forbidden_function": "SELECT load_extension('x')",
        "unknown_table": "SELECT * FROM staff",
        "unknown_column": "SELECT wage FROM employees",
        "ambiguous_column": "SELECT name FROM departments JOIN projects ON 1 = 1",
        "table_denied": "SELECT * FROM payroll",
        "column_denied": "SELECT national_id FROM employees",
        "masked_column_misuse": "SELECT avg(salary) FROM employees",
    }
    for code_name, sql in cases.items():
        role = "analyst" if code_name == "masked_column_misuse" else "viewer"
        code, out = run("--db", url, "--policy", policy, "--role", role, "--json", sql)
        assert code == 1, (code_name, out)
        assert code_name in [v["code"] for v in json.loads(out)["violations"]], (code_name, out)


def test_sql_from_stdin_and_schema_file() -> None:
    schema = str(FIXTURES / "catalog.json")
    code, out = run("--schema", schema, "--json", "-", stdin="SELECT name FROM departments;\n")
    assert code == 0
    assert json.loads(out)["sql"] == "SELECT name FROM departments"


def test_human_output(demo: tuple[str, str]) -> None:
    url, policy = demo
    code, out = run("--db", url, "--policy", policy, "--role", "analyst", "SELECT * FROM employees")
    assert code == 0
    assert "ALLOWED" in out
    assert "masked: employees.salary" in out
    code, out = run("--db", url, "DELETE FROM employees")
    assert code == 1
    assert "REJECTED" in out
    assert "not_read_only" in out


@pytest.mark.parametrize(
    "args",
    [
        ["--db", "sqlite:///nowhere/x.sqlite", "SELECT 1"],
        ["--schema", "missing.json", "SELECT 1"],
        ["--policy", str(FIXTURES / "catalog.json"), "SELECT 1"],
        ["--dialect", "db2", "SELECT 1"],
        ["--dialect", "postgres", "--db", "sqlite:///x.db", "SELECT 1"],
        ["--db", "sqlite:///a.db", "--schema", "b.json", "SELECT 1"],
        ["--db", "not a url", "SELECT 1"],
        ["--max-rows", "0", "SELECT 1"],
        [],
    ],
)
def test_usage_and_configuration_errors_exit_2_without_traceback(args: list[str]) -> None:
    code, out = run(*args)
    assert code == 2, out
    assert "Traceback" not in out


def test_bad_policy_file_exits_2(demo: tuple[str, str], tmp_path: Path) -> None:
    url, _ = demo
    bad = tmp_path / "bad.yaml"
    bad.write_text("default_role: x\nroles: {y: {}}\n")
    code, out = run("--db", url, "--policy", str(bad), "SELECT 1")
    assert code == 2
    assert "default_role" in out


def test_each_invocation_appends_one_audit_event(demo: tuple[str, str], tmp_path: Path) -> None:
    url, policy = demo
    log = tmp_path / "audit.jsonl"
    for sql in ["SELECT id FROM employees", "SELECT email FROM employees", "DROP TABLE x"]:
        run("--db", url, "--policy", policy, "--audit-log", str(log), sql)
    report = verify_chain(log)
    assert report.ok
    assert report.lines == 3


def test_the_audit_event_records_the_decision(demo: tuple[str, str], tmp_path: Path) -> None:
    """The command, not the guard, records the decision: one "validate" event with the fields
    the guard used to emit (role as judged, the role asked for, the SQL in and out ...)."""
    url, policy = demo
    log = tmp_path / "audit.jsonl"
    sql = "SELECT first_name, salary FROM employees"
    code, _ = run("--db", url, "--policy", policy, "--role", "intruder", "--audit-log", str(log),
                  "--json", sql)  # fmt: skip
    assert code == 1  # the default role (viewer) may not read salary
    code, _ = run("--db", url, "--policy", policy, "--role", "analyst", "--audit-log", str(log),
                  sql)  # fmt: skip
    assert code == 0
    rejected, allowed = (json.loads(line) for line in log.read_text().splitlines())
    assert rejected["name"] == allowed["name"] == "validate"
    assert (rejected["verdict"], rejected["role"], rejected["policy_mode"]) == (
        "rejected", "viewer", "policy",
    )  # fmt: skip
    assert rejected["extra"]["requested_role"] == "intruder"
    assert rejected["sql_in"] == sql
    assert rejected["sql_out"] is None
    assert rejected["violations"][0]["code"] == "column_denied"
    assert (allowed["verdict"], allowed["role"], allowed["dialect"]) == (
        "allowed", "analyst", "sqlite",
    )  # fmt: skip
    assert "requested_role" not in allowed["extra"]
    assert "'***' AS salary" in allowed["sql_out"]
    assert allowed["masked_columns"] == ["employees.salary"]
    assert allowed["tables"] == ["employees"]
    assert allowed["latency_ms"] >= 0


def test_config_file_and_allow_function(tmp_path: Path) -> None:
    schema = str(FIXTURES / "catalog.json")
    config = tmp_path / "sqlagent.yaml"
    config.write_text("safety:\n  max_rows: 5\n  allowed_functions:\n    sqlite: [business_days]\n")
    sql = "SELECT business_days(hire_date) FROM employees"
    code, out = run("--schema", schema, "--config", str(config), "--json", sql)
    assert code == 0
    assert json.loads(out)["sql"].endswith("LIMIT 5")
    code, _ = run("--schema", schema, sql)
    assert code == 1
    code, _ = run("--schema", schema, "--allow-function", "BUSINESS_DAYS", sql)
    assert code == 0
    # The one file reader: JSON and TOML too, and an agent config's safety section.
    as_json = tmp_path / "safety.json"
    as_json.write_text('{"max_rows": 7, "allowed_functions": {"sqlite": ["business_days"]}}')
    code, out = run("--schema", schema, "--config", str(as_json), "--json", sql)
    assert (code, json.loads(out)["sql"][-7:]) == (0, "LIMIT 7")
    agent = tmp_path / "agent.toml"
    agent.write_text('database = "sqlite:///x.db"\n[safety]\nmax_rows = 9\n')
    code, out = run("--schema", schema, "--config", str(agent), "--json", "SELECT 1")
    assert (code, json.loads(out)["sql"]) == (0, "SELECT 1 LIMIT 9")


def test_a_misspelt_safety_option_is_named(tmp_path: Path) -> None:
    config = tmp_path / "sqlagent.yaml"
    config.write_text("safety:\n  max_row: 5\n")
    code, out = run("--config", str(config), "SELECT 1")
    assert code == 2
    assert "max_row: unknown key" in out
    assert "Traceback" not in out


def test_an_unknown_role_warns_on_stderr(demo: tuple[str, str]) -> None:
    url, policy = demo
    sql = "SELECT name FROM departments"
    result = CliRunner().invoke(
        main, ["validate", "--db", url, "--policy", policy, "--role", "intruder", "--json", sql]
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout)["role"] == "viewer"
    assert "warning: role 'intruder' is not defined in the policy" in result.stderr
    assert "default role 'viewer'" in result.stderr
    result = CliRunner().invoke(main, ["validate", "--db", url, "--role", "analyst", sql])
    assert result.exit_code == 0
    assert "no policy is configured, so --role analyst has no effect" in result.stderr
    result = CliRunner().invoke(
        main, ["validate", "--db", url, "--policy", policy, "--role", "hr", sql]
    )
    assert result.stderr == ""
