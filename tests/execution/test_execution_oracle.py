"""Oracle: the parts that can be checked without a server (none is available here).

The Oracle backend's transaction handling has never run against a real database; what is
tested here is the lexical backstop it applies before sending anything, and that a missing
driver is a clean configuration error.
"""

from __future__ import annotations

import importlib.util

import pytest

from sqlagent.errors import ConfigError, ReadOnlyViolationError
from sqlagent.execution import ReadOnlyExecutor
from sqlagent.execution._oracle import _refuse_non_query, leading_words


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("SELECT 1 FROM dual", ["SELECT"]),
        ("  /* note */ -- line\n ( select x FROM t", ["SELECT", "X"]),
        ("with x as (select 1 from dual) select * from x", ["WITH", "X"]),
        ("/* unterminated SELECT", []),
        ("", []),
    ],
)
def test_leading_words(sql: str, words: list[str]) -> None:
    assert leading_words(sql) == words


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM employees",
        "  -- a comment\nselect 1 from dual",
        "WITH x AS (SELECT 1 AS a FROM dual) SELECT a FROM x",
        "(SELECT 1 FROM dual) UNION (SELECT 2 FROM dual)",
    ],
)
def test_queries_pass_the_backstop(sql: str) -> None:
    _refuse_non_query(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM employees",
        "CREATE TABLE evil (a NUMBER)",
        "DROP TABLE employees",
        "BEGIN DELETE FROM employees; COMMIT; END;",
        "DECLARE x NUMBER; BEGIN NULL; END;",
        "CALL evil()",
        "WITH FUNCTION f RETURN NUMBER IS BEGIN RETURN 1; END; SELECT f FROM dual",
        "/* SELECT */ TRUNCATE TABLE employees",
        "/* unterminated SELECT 1",
        "",
    ],
)
def test_everything_else_is_refused_before_it_is_sent(sql: str) -> None:
    with pytest.raises(ReadOnlyViolationError, match="only queries"):
        _refuse_non_query(sql)


def test_a_missing_driver_is_a_configuration_error() -> None:
    if importlib.util.find_spec("oracledb") is not None:
        pytest.skip("python-oracledb is installed here")
    with pytest.raises(ConfigError, match="not installed"):
        ReadOnlyExecutor("oracle://scott:tiger@127.0.0.1:1521/?service_name=x")
