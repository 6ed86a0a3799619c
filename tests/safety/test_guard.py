"""The Guard: pure judgement, row caps, config, fail-closed behaviour."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sqlagent import (
    Catalog,
    ConfigError,
    Guard,
    Policy,
    RejectedError,
    SafetyConfig,
    check_sql,
)
from tests.conftest import SHARED

POLICY = Policy.from_mapping(
    {
        "default_role": "viewer",
        "roles": {
            "viewer": {"tables": {"employees": ["id", "first_name"], "departments": ["*"]}},
            "analyst": {"inherits": ["viewer"], "masked": {"employees": ["salary"]}},
        },
    }
)


def test_the_guard_is_pure(fixture_catalog: Catalog, caplog: pytest.LogCaptureFixture) -> None:
    """Judging records nothing: no audit parameter, no event on any logger. The callers that act
    on a verdict audit it (tests/agent/test_verdict_event.py, the validate command's tests)."""
    caplog.set_level("DEBUG")
    guard = Guard(catalog=fixture_catalog, policy=POLICY)
    assert guard.check("SELECT first_name FROM employees", role="viewer").allowed
    assert not guard.check("DROP TABLE employees", role="nobody").allowed
    assert check_sql("SELECT name FROM departments", catalog=fixture_catalog).allowed
    assert not check_sql("DELETE FROM departments").allowed
    assert caplog.records == []
    with pytest.raises(TypeError, match="audit"):
        Guard(catalog=fixture_catalog, audit=None)  # type: ignore[call-arg]


def test_single_user_mode_is_in_the_verdict(fixture_catalog: Catalog) -> None:
    verdict = Guard(catalog=fixture_catalog).check("SELECT salary FROM employees", role="x")
    assert verdict.allowed
    assert verdict.policy_mode == "single_user"
    assert verdict.role is None


def test_check_or_raise_carries_feedback_for_the_model(fixture_catalog: Catalog) -> None:
    guard = Guard(catalog=fixture_catalog)
    with pytest.raises(RejectedError) as info:
        guard.check_or_raise("SELECT nme FROM departments")
    assert "Did you mean: name?" in info.value.send_to_llm
    assert guard.check_or_raise("SELECT name FROM departments").allowed


def test_policy_needs_a_catalog() -> None:
    with pytest.raises(ConfigError, match="catalog"):
        Guard(policy=POLICY)


def test_unknown_dialect_and_bad_config() -> None:
    with pytest.raises(ConfigError, match="dialect"):
        Guard(dialect="db2")
    with pytest.raises(ConfigError, match="max_rows"):
        SafetyConfig(max_rows=0)
    with pytest.raises(ConfigError, match=r"invalid safety configuration: max_row: unknown key"):
        SafetyConfig.from_mapping({"max_row": 5})


@pytest.mark.parametrize(
    ("dialect", "sql", "cap", "expected"),
    [
        ("sqlite", "SELECT name FROM departments", 10, "LIMIT 10"),
        ("sqlite", "SELECT name FROM departments LIMIT 500", 10, "LIMIT 10"),
        ("sqlite", "SELECT name FROM departments LIMIT 3", 10, "LIMIT 3"),
        ("postgres", "SELECT name FROM departments UNION SELECT name FROM projects", 7, "LIMIT 7"),
        ("mysql", "SELECT name FROM departments LIMIT 2, 50", 5, "LIMIT 5"),
        ("oracle", "SELECT name FROM departments", 10, "FETCH FIRST 10 ROWS ONLY"),
        ("oracle", "SELECT name FROM departments FETCH FIRST 3 ROWS ONLY", 10, "FIRST 3 ROWS"),
        ("oracle", "SELECT name FROM departments FETCH FIRST 50 PERCENT ROWS ONLY", 10,
         "FETCH FIRST 10 ROWS ONLY"),
    ],
)  # fmt: skip
def test_row_cap_in_each_dialect(
    fixture_catalog: Catalog, dialect: str, sql: str, cap: int, expected: str
) -> None:
    verdict = check_sql(
        sql, dialect=dialect, catalog=fixture_catalog, config=SafetyConfig(max_rows=cap)
    )
    assert verdict.allowed, verdict.summary()
    assert verdict.sql is not None
    assert expected in verdict.sql


def test_extra_functions_are_allowed_per_dialect(fixture_catalog: Catalog) -> None:
    sql = "SELECT business_days(hire_date) FROM employees"
    assert not check_sql(sql, catalog=fixture_catalog).allowed
    config = SafetyConfig(allowed_functions={"sqlite": ["business_days"]})
    assert check_sql(sql, catalog=fixture_catalog, config=config).allowed
    assert not check_sql(sql, dialect="postgres", catalog=fixture_catalog, config=config).allowed


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("sqlite", "SELECT julianday('now') - julianday(hire_date) FROM employees"),
        ("sqlite", "SELECT first_name FROM employees WHERE hire_date > date('now', '-1 year')"),
        ("mysql", "SELECT first_name FROM employees WHERE hire_date > NOW() - INTERVAL 1 YEAR"),
        ("postgres", "SELECT age(CAST(hire_date AS DATE)) FROM employees"),
        ("oracle", "SELECT NUMTODSINTERVAL(1, 'DAY') FROM dual"),
    ],
)
def test_pure_engine_builtins_pass_unless_switched_off(
    fixture_catalog: Catalog, dialect: str, sql: str
) -> None:
    assert check_sql(sql, dialect=dialect, catalog=fixture_catalog).allowed
    strict = SafetyConfig(pure_builtins=False)
    verdict = check_sql(sql, dialect=dialect, catalog=fixture_catalog, config=strict)
    assert verdict.codes == ("forbidden_function",)


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("postgres", "SELECT query_to_xml('select * from payroll', true, true, '')"),
        ("postgres", "SELECT current_setting('data_directory')"),
        ("mysql", "SELECT SLEEP(5)"),
        ("mysql", "SELECT GET_LOCK('x', 10)"),
        ("sqlite", "SELECT load_extension('/tmp/evil.so')"),
        ("sqlite", "SELECT randomblob(1000000000)"),
        ("oracle", "SELECT SYS_CONTEXT('USERENV', 'SESSION_USER') FROM dual"),
    ],
)
def test_dangerous_builtins_stay_forbidden(dialect: str, sql: str) -> None:
    assert check_sql(sql, dialect=dialect).codes == ("forbidden_function",)


def test_comments_never_reach_the_statement_that_runs() -> None:
    verdict = check_sql("SELECT 1 /* hidden */ -- trailing\n;")
    assert verdict.allowed
    assert verdict.sql == "SELECT 1"


def test_unexpected_internal_failure_is_a_rejection(
    fixture_catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlagent.safety._guard as guard_module

    def explode(*args: object, **kwargs: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(guard_module, "analyze", explode)
    verdict = Guard(catalog=fixture_catalog).check("SELECT name FROM departments")
    assert not verdict.allowed
    assert "boom" in verdict.violations[0].message


@pytest.mark.skipif(
    not (SHARED / "safety" / "readonly_examples.jsonl").exists(), reason="../shared absent"
)
def test_shared_public_examples() -> None:
    lines = (SHARED / "safety" / "readonly_examples.jsonl").read_text().splitlines()
    for line in lines:
        case = json.loads(line)
        verdict = check_sql(case["sql"], dialect=case["dialect"])
        assert verdict.allowed == (case["expect"] == "allow"), (case, verdict.summary())


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("postgres", "SELECT * FROM employees, LATERAL (SELECT 1 AS x) s"),
        ("postgres", "SELECT x FROM unnest(ARRAY[1, 2]) AS u(x)"),
        ("postgres", "SELECT e.id, s.n FROM employees e, LATERAL (SELECT count(*) AS n "
                     "FROM projects p WHERE p.department_id = e.department_id) s"),
        ("postgres", "SELECT e FROM employees e"),  # whole-row reference, single-user mode
        ("oracle", "SELECT level FROM dual CONNECT BY level <= 3"),
        ("oracle", "SELECT rowid, rownum FROM employees WHERE rownum < 3"),
        ("mysql", "SELECT 1 FROM DUAL"),
    ],
)  # fmt: skip
def test_derived_sources_and_pseudocolumns_are_grounded(
    fixture_catalog: Catalog, dialect: str, sql: str
) -> None:
    verdict = check_sql(sql, dialect=dialect, catalog=fixture_catalog)
    assert verdict.allowed, verdict.summary()


def test_a_table_alias_is_not_a_column_outside_postgres(fixture_catalog: Catalog) -> None:
    verdict = check_sql("SELECT e FROM employees e", dialect="sqlite", catalog=fixture_catalog)
    assert verdict.codes == ("unknown_column",)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT employees.salary FROM employees",
        "SELECT main.employees.salary FROM employees",
        "SELECT first_name FROM employees AS payroll WHERE payroll.salary > 1",
        "SELECT x.national_id FROM (SELECT * FROM employees) x",
        "SELECT national_id FROM (SELECT * FROM employees) x",
        "WITH a AS (SELECT * FROM employees), b AS (SELECT * FROM a) SELECT b.email FROM b",
        "SELECT u.email FROM (SELECT * FROM employees UNION SELECT * FROM employees) u",
    ],
)
def test_hidden_columns_are_denied_however_they_are_reached(
    fixture_catalog: Catalog, sql: str
) -> None:
    verdict = Guard(catalog=fixture_catalog, policy=POLICY).check(sql, role="viewer")
    assert verdict.codes == ("column_denied",), verdict.summary()


def test_suggestions_never_reveal_hidden_columns(fixture_catalog: Catalog) -> None:
    guard = Guard(catalog=fixture_catalog, policy=POLICY)
    hidden = guard.check("SELECT e.emial FROM employees e", role="viewer")
    assert hidden.codes == ("unknown_column",)
    assert hidden.violations[0].suggestions == ()
    visible = guard.check("SELECT e.frist_name FROM employees e", role="viewer")
    assert visible.violations[0].suggestions == ("first_name",)


@pytest.mark.parametrize(
    ("dialect", "sql", "label"),
    [
        ("sqlite", "SELECT e.first_name FROM employees e JOIN departments d USING (id)",
         "first_name"),
        ("mysql", "SELECT e.title FROM employees e JOIN projects p USING (department_id)", "title"),
    ],
)  # fmt: skip
def test_rewritten_labels_are_stable(
    fixture_catalog: Catalog, dialect: str, sql: str, label: str
) -> None:
    admin = Policy.from_mapping({"default_role": "a", "roles": {"a": {"tables": {"*": ["*"]}}}})
    guard = Guard(dialect=dialect, catalog=fixture_catalog, policy=admin)
    outputs = {guard.check(sql).sql for _ in range(30)}
    assert len(outputs) == 1
    (out,) = outputs
    assert out is not None
    assert out.split(" FROM ")[0].endswith(f"AS {label}")


def test_oracle_case_hint_names_the_real_spelling(fixture_catalog: Catalog) -> None:
    verdict = check_sql('SELECT "first_name" FROM "employees"', dialect="oracle",
                        catalog=fixture_catalog)  # fmt: skip
    assert verdict.codes == ("unknown_table",)
    assert '"EMPLOYEES"' in verdict.violations[0].message


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("SELECT 1 . FROM & 1", "parse back"),  # renders as text that means something else
        ("SELECT 1 .x", "parse back"),
        ("SELECT ->> 1", "Invalid SQL"),  # the parser's own internal error
        ("SELECT", "must list"),
        ("SELECT *", "FROM clause"),
        ("SELECT " + "(" * 65 + "1" + ")" * 65, "levels deep"),
        ("SELECT 1 FROM t WHERE " + " AND ".join(["a = 1"] * 3000), "characters long"),
    ],
)
def test_inputs_that_cannot_be_judged_faithfully_are_refused(sql: str, fragment: str) -> None:
    verdict = check_sql(sql)
    assert verdict.codes == ("parse_error",)
    assert fragment in verdict.violations[0].message


def test_input_limits_are_configurable() -> None:
    deep = "SELECT " + "(" * 70 + "1" + ")" * 70
    assert check_sql(deep, config=SafetyConfig(max_nesting=100)).allowed
    assert check_sql(deep, config=SafetyConfig(max_nesting=None)).allowed
    with pytest.raises(ConfigError, match="max_nesting"):
        SafetyConfig(max_nesting=0)


def test_outermost_labels_match_what_the_user_wrote(fixture_catalog: Catalog) -> None:
    admin = Policy.from_mapping({"default_role": "a", "roles": {"a": {"tables": {"*": ["*"]}}}})
    guard = Guard(catalog=fixture_catalog, policy=admin)
    assert guard.check("SELECT count(*) FROM employees").sql == ("SELECT COUNT(*) FROM employees")
    nested = guard.check("SELECT * FROM (SELECT count(*) FROM employees) x").sql
    assert nested is not None
    assert "x._col_0" in nested  # still referenced, so the alias stays


# -- the function allow-list, its documentation, and the leak rules (no catalog) ------------------

DOCS_FUNCTIONS = Path(__file__).resolve().parents[2] / "docs" / "functions.md"


def test_every_allow_listed_function_class_exists_once() -> None:
    from sqlglot import exp

    from sqlagent.safety._functions import FUNCTION_GROUPS

    names = [n for g in FUNCTION_GROUPS for n in g.names]
    assert len(names) == len(set(names)), "a class is listed in two groups"
    for name in names:
        cls = getattr(exp, name, None)
        assert isinstance(cls, type), f"{name} is not a class of the pinned sqlglot"
        assert issubclass(cls, exp.Func), name


def test_pure_builtins_are_lower_case_and_never_dangerous() -> None:
    from sqlagent.dialects import BUILTIN_GROUPS, PURE_BUILTINS

    dangerous = {
        "pg_sleep", "sleep", "benchmark", "get_lock", "pg_advisory_lock", "load_file",
        "load_extension", "readfile", "pg_read_file", "lo_import", "set_config", "setseed",
        "current_setting", "nextval", "setval", "currval", "lastval", "query_to_xml", "dblink",
        "sys_context", "userenv", "user", "database", "version", "connection_id", "changes",
        "to_regclass", "pg_get_viewdef", "has_table_privilege", "array_fill", "sformat",
    }  # fmt: skip
    assert set(PURE_BUILTINS) == {"sqlite", "postgres", "mysql", "oracle"}
    for group in BUILTIN_GROUPS:
        assert group.reason, group.category
        for dialect, names in group.names.items():
            assert dialect in PURE_BUILTINS
            assert all(n == n.lower() and n.isidentifier() for n in names), group.category
            assert not names & dangerous, (group.category, names & dangerous)


def test_docs_name_every_allow_listed_function() -> None:
    from sqlagent.dialects import BUILTIN_GROUPS
    from sqlagent.safety._functions import FUNCTION_GROUPS

    text = DOCS_FUNCTIONS.read_text(encoding="utf-8")
    for group in FUNCTION_GROUPS:
        assert f"#### {group.category}" in text, group.category
        missing = [n for n in group.names if f"`{n}`" not in text]
        assert not missing, (group.category, missing)
    for builtin in BUILTIN_GROUPS:
        assert f"#### {builtin.category}" in text, builtin.category
        missing = [n for names in builtin.names.values() for n in names if f"`{n}`" not in text]
        assert not missing, (builtin.category, missing)


@pytest.mark.parametrize(
    ("dialect", "sql", "code", "fragment"),
    [
        # Oracle without a catalog: sequences, package calls without parentheses, database links,
        # bare names over DUAL (zero-argument function calls).
        ("oracle", "SELECT seq.NEXTVAL FROM dual", "not_read_only", "NEXTVAL"),
        ("oracle", "SELECT hr.seq.CURRVAL FROM dual", "not_read_only", "CURRVAL"),
        ("oracle", "SELECT UTL_INADDR.GET_HOST_NAME FROM dual", "unknown_table", "UTL_INADDR"),
        ("oracle", "SELECT x FROM secrets@remote_db", "unknown_table", "database links"),
        ("oracle", "SELECT get_secret FROM dual", "unknown_column", "get_secret"),
        ("oracle", "SELECT USER FROM dual", "unknown_column", "USER"),
        ("oracle", "SELECT 1 FROM dual WHERE get_secret IS NOT NULL", "unknown_column", "get_"),
        ("postgres", "SELECT pg_catalog.now FROM t", "unknown_table", "pg_catalog"),
        ("sqlite", "SELECT nope.x FROM t", "unknown_table", "nope"),
        # PostgreSQL reg* casts and user-defined types confirm that catalog objects exist.
        ("postgres", "SELECT 'secrets'::regclass", "forbidden_function", "REGCLASS"),
        ("postgres", "SELECT CAST('admin' AS regrole)", "forbidden_function", "REGROLE"),
        ("postgres", "SELECT 'f'::regproc", "forbidden_function", "REGPROC"),
        ("postgres", "SELECT 'hidden'::regnamespace", "forbidden_function", "REGNAMESPACE"),
        ("postgres", "SELECT 'secret_type'::regtype", "forbidden_function", "REGTYPE"),
        ("postgres", "SELECT x::secret_enum FROM t", "forbidden_function", "secret_enum"),
        # Huge constructed strings and blobs.
        ("postgres", "SELECT repeat('x', 1000000000)", "forbidden_function", "repeat()"),
        ("postgres", "SELECT rpad('x', 1000000000)", "forbidden_function", "rpad()"),
        ("postgres", "SELECT format('%*s', 1000000000, 'x')", "forbidden_function", "format()"),
        ("mysql", "SELECT SPACE(1000000000)", "forbidden_function", "space()"),
        ("mysql", "SELECT LPAD('', 1000000000, 'x')", "forbidden_function", "lpad()"),
        ("sqlite", "SELECT printf('%.*c', 1000000000, 'x')", "forbidden_function", "printf()"),
        ("sqlite", "SELECT printf('%900000000c', 'x')", "forbidden_function", "printf()"),
        ("sqlite", "SELECT zeroblob(1000000000)", "forbidden_function", "zeroblob()"),
        ("sqlite", "SELECT randomblob(1e9)", "forbidden_function", "randomblob()"),
        ("oracle", "SELECT RPAD('x', 100000000) FROM dual", "forbidden_function", "rpad()"),
        ("postgres", "SELECT repeat('#', n) FROM t", "forbidden_function", "LEAST"),
    ],
)  # fmt: skip
def test_leak_rules_hold_without_a_catalog(
    dialect: str, sql: str, code: str, fragment: str
) -> None:
    verdict = check_sql(sql, dialect=dialect)
    assert code in verdict.codes, verdict.summary()
    assert any(fragment in v.message for v in verdict.violations), verdict.summary()


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("oracle", "SELECT dummy FROM dual"),
        ("oracle", "SELECT LEVEL AS n FROM dual CONNECT BY LEVEL <= 3 ORDER BY n"),
        ("oracle", "SELECT (SELECT MAX(salary) FROM employees) AS top FROM dual"),
        ("oracle", "SELECT e.first_name FROM hr.employees e"),
        ("postgres", "SELECT g.n FROM generate_series(1, 3) AS g(n)"),
        ("postgres", "SELECT t.tag FROM products p CROSS JOIN LATERAL unnest(p.tags) AS t(tag)"),
        ("postgres", "SELECT repeat('#', least(n, 50)::int), lpad(code, 8, '0') FROM t"),
        ("postgres", "SELECT 'a'::text, 1::numeric(10, 2), '{}'::jsonb, ARRAY[1]::int[]"),
        ("postgres", "SELECT * FROM t TABLESAMPLE BERNOULLI (10) REPEATABLE (1)"),
        ("sqlite", "SELECT printf('%08d', 7), length(zeroblob(16))"),
        ("mysql", "SELECT CONVERT(name USING utf8mb4), CAST(x AS SIGNED) FROM t"),
    ],
)
def test_ordinary_queries_pass_the_leak_rules(dialect: str, sql: str) -> None:
    verdict = check_sql(sql, dialect=dialect)
    assert verdict.allowed, verdict.summary()


def test_constructed_length_bound_is_configurable() -> None:
    sql = "SELECT repeat('x', 500)"
    assert check_sql(sql, dialect="postgres").allowed
    small = SafetyConfig(max_constructed_length=100)
    verdict = check_sql(sql, dialect="postgres", config=small)
    assert verdict.codes == ("forbidden_function",)
    assert "at most 100 characters" in verdict.violations[0].message
    assert check_sql("SELECT repeat('x', 100)", dialect="postgres", config=small).allowed
    config = SafetyConfig.from_mapping({"max_constructed_length": 2000})
    assert config.max_constructed_length == 2000
    for bad in (0, -1, True, "10"):
        with pytest.raises(ConfigError, match="max_constructed_length"):
            SafetyConfig(max_constructed_length=bad)  # type: ignore[arg-type]


def test_messages_name_functions_and_operators_as_written() -> None:
    import sqlglot

    from sqlagent.safety._functions import function_name, written_operator

    tree = sqlglot.parse_one(
        "SELECT unnest(tags), a @> b, a ? 'k' FROM generate_series(1, 2) AS g(n)", read="postgres"
    )
    unnest, contains, has_key = tree.expressions
    assert function_name(unnest, "postgres") == "unnest"  # sqlglot: Explode
    assert written_operator(contains, "postgres") == "@>"  # sqlglot: ArrayContainsAll
    assert written_operator(has_key, "postgres") == "?"  # sqlglot: JSONBContainsTopKey
    series = tree.args["from_"].this.this
    assert function_name(series, "postgres") == "generate_series"  # ExplodingGenerateSeries
    internal = ("explode", "exploding", "array_contains", "current_version", "distance")
    for dialect, sql, written in [
        ("postgres", "SELECT version()", "Function version()"),
        ("postgres", "SELECT a <-> b FROM t", "operator <->"),
        ("postgres", "SELECT name FROM t WHERE body @@ 'cat'", "Operator @@"),
        ("sqlite", "SELECT sqlite_version()", "Function sqlite_version()"),
    ]:
        verdict = check_sql(sql, dialect=dialect)
        assert not verdict.allowed
        messages = " ".join(v.message for v in verdict.violations)
        assert written in messages, messages
        assert not any(word in messages.lower() for word in internal), messages


def test_json_arrow_inside_a_call_is_the_json_operator() -> None:
    import sqlglot
    from sqlglot import exp

    from sqlagent.safety._readonly import undo_arrow_lambdas

    sql = "SELECT coalesce(a -> 'x' -> 'y', jsonb_array_length(b -> 'z'), c ->> 'w') FROM t"
    tree = sqlglot.parse_one(sql, read="postgres")
    assert tree.find(exp.Lambda) is not None  # sqlglot's reading
    undo_arrow_lambdas(tree, "postgres")
    assert tree.find(exp.Lambda) is None
    assert {c.name for c in tree.find_all(exp.Column)} == {"a", "b", "c"}
    assert tree.sql("postgres") == sqlglot.parse_one(sql, read="postgres").sql("postgres")
    verdict = check_sql("SELECT f(x -> 1) FROM t", dialect="oracle")
    assert "x -> 1 (read as a lambda)" in " ".join(v.message for v in verdict.violations)
