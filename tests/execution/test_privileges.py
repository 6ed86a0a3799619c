"""check_privileges on the real servers: the admin logins are flagged, reader logins are clean,
and each extra grant given to a reader shows up as its own finding."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sqlagent.errors import ConfigError, ExecutionError
from sqlagent.execution import (
    PrivilegeFinding,
    ReadOnlyExecutor,
    check_privileges,
    summarize_findings,
)
from tests.dbservers import (
    DB_SUFFIX,
    MYSQL_ADMIN_URL,
    create_test_database,
    drop_test_database,
    execute_sql,
)
from tests.execution.readers import create_reader, drop_reader

DB = "sqlagent_priv_test"


def _tables(url: str) -> None:
    execute_sql(
        url,
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(20))",
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body VARCHAR(20))",
    )


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    url = create_test_database("postgres", DB)
    _tables(url)
    yield url
    drop_test_database("postgres", DB)
    for name in ("sqlagent_priv_reader", "sqlagent_priv_writer", "sqlagent_priv_files"):
        drop_reader("postgres", name)


@pytest.fixture(scope="module")
def mysql_url() -> Iterator[str]:
    url = create_test_database("mysql", DB)
    _tables(url)
    yield url
    drop_test_database("mysql", DB)
    for name in ("sqlagent_priv_reader", "sqlagent_priv_writer", "sqlagent_priv_role"):
        drop_reader("mysql", name)
    admin = sa.create_engine(MYSQL_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP ROLE IF EXISTS sqlagent_priv_filer{DB_SUFFIX}"))
    finally:
        admin.dispose()


def _by_privilege(findings: list[PrivilegeFinding]) -> dict[str, PrivilegeFinding]:
    return {f.privilege: f for f in findings}


def test_sqlite_has_nothing_to_check(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite"
    sa.create_engine(f"sqlite:///{path}").dispose()
    path.touch()
    assert check_privileges(f"sqlite:///{path}") == []
    with ReadOnlyExecutor(f"sqlite:///{path}") as executor:
        assert check_privileges(executor) == []
    with pytest.raises(ConfigError, match="not a database URL"):
        check_privileges("nope")


def test_summary_puts_the_gravest_first() -> None:
    findings = [
        PrivilegeFinding("write", "INSERT", "table a", "changes data"),
        PrivilegeFinding("server_files", "FILE", "all databases", "reads files"),
    ]
    text = summarize_findings(findings, limit=1)
    assert text.startswith("the database login holds 2 privilege(s) beyond reading: FILE")
    assert "and 1 more" in text
    assert findings[0].to_dict()["kind"] == "write"


@pytest.mark.postgres
def test_postgres_superuser_is_flagged(pg_url: str) -> None:
    findings = check_privileges(pg_url)
    assert [(f.kind, f.privilege) for f in findings] == [("superuser", "SUPERUSER")]


@pytest.mark.postgres
def test_postgres_reader_is_clean_and_extra_grants_are_found(pg_url: str) -> None:
    reader = create_reader("postgres", pg_url, "sqlagent_priv_reader")
    assert check_privileges(reader) == []
    with ReadOnlyExecutor(reader) as executor:  # an executor works too
        assert check_privileges(executor) == []

    writer = create_reader(
        "postgres",
        pg_url,
        "sqlagent_priv_writer",
        extra=(
            "GRANT INSERT ON items TO {user}",
            "GRANT UPDATE (body) ON notes TO {user}",
            "GRANT TRUNCATE ON notes TO {user}",
            "GRANT CREATE ON SCHEMA public TO {user}",
            "ALTER ROLE {user} CREATEDB",
        ),
    )
    found = _by_privilege(check_privileges(writer))
    assert set(found) == {"INSERT", "UPDATE", "TRUNCATE", "CREATE", "CREATEDB"}
    assert found["INSERT"].scope == "1 table(s): public.items"
    assert found["UPDATE"].scope == "1 table(s): public.notes"  # a column grant counts
    assert found["CREATE"].scope == "schema public"
    assert {f.kind for f in found.values()} == {"write"}

    files = create_reader(
        "postgres",
        pg_url,
        "sqlagent_priv_files",
        extra=("GRANT pg_read_server_files TO {user}", "GRANT pg_signal_backend TO {user}"),
    )
    found = _by_privilege(check_privileges(files))
    assert found["pg_read_server_files"].kind == "server_files"
    assert found["pg_signal_backend"].kind == "admin"


@pytest.mark.mysql
def test_mariadb_root_is_flagged(mysql_url: str) -> None:
    found = _by_privilege(check_privileges(mysql_url))
    assert found["FILE"].kind == "server_files"
    assert found["SUPER"].kind == "admin"
    assert found["INSERT"].kind == "write"
    assert found["INSERT"].scope == "all databases"
    assert "SELECT" not in found


@pytest.mark.mysql
@pytest.mark.slow
def test_mariadb_reader_is_clean_and_extra_grants_are_found(mysql_url: str) -> None:
    db = sa.make_url(mysql_url).database
    reader = create_reader("mysql", mysql_url, "sqlagent_priv_reader")
    assert check_privileges(reader) == []

    writer = create_reader(
        "mysql",
        mysql_url,
        "sqlagent_priv_writer",
        extra=(
            f"GRANT INSERT ON `{db}`.`items` TO {{user}}",
            f"GRANT UPDATE (body) ON `{db}`.`notes` TO {{user}}",
            f"GRANT CREATE, DROP ON `{db}`.* TO {{user}}",
            "GRANT PROCESS ON *.* TO {user}",
        ),
    )
    found = _by_privilege(check_privileges(writer))
    assert set(found) == {"INSERT", "UPDATE", "CREATE", "DROP", "PROCESS"}
    assert found["INSERT"].scope == f"table {db}.items"
    assert found["UPDATE"].scope == f"column {db}.notes.body"
    assert found["CREATE"].scope == f"database {db}"
    assert found["PROCESS"].kind == "admin"

    # Privileges held through a role are not in information_schema for its members: they are
    # read from SHOW GRANTS FOR the role (nested roles included).
    role = f"sqlagent_priv_filer{DB_SUFFIX}"
    through_role = create_reader(
        "mysql",
        mysql_url,
        "sqlagent_priv_role",
        extra=(
            f"DROP ROLE IF EXISTS {role}",
            f"CREATE ROLE {role}",
            f"GRANT FILE ON *.* TO {role}",
            f"GRANT DELETE ON `{db}`.`items` TO {role}",
            f"GRANT {role} TO {{user}}",
        ),
    )
    # Not enabled at login: MariaDB will not show the role's grants, so the role is reported.
    found = _by_privilege(check_privileges(through_role))
    assert set(found) == {f"role {role}"}
    admin = sa.create_engine(MYSQL_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            user = sa.make_url(through_role).username
            conn.execute(sa.text(f"SET DEFAULT ROLE {role} FOR '{user}'@'%'"))
    finally:
        admin.dispose()
    found = _by_privilege(check_privileges(through_role))
    assert set(found) == {"FILE", "DELETE"}
    assert found["FILE"].scope == f"all databases (through role {role})"
    assert found["DELETE"].scope == f"table {db}.items (through role {role})"


@pytest.mark.postgres
def test_an_unreachable_server_is_an_execution_error() -> None:
    with pytest.raises(ExecutionError, match="cannot connect"):
        check_privileges("postgresql://postgres@127.0.0.1:1/nothing")


def test_grant_lines_are_split_outside_parentheses() -> None:
    from sqlagent.execution._privileges import _parse_grant

    line = "GRANT INSERT, UPDATE (`host`, `db`) ON `mysql`.`db` TO `r2`"
    assert _parse_grant(line, via="r1") == [
        ("table", "INSERT", "mysql.db", "r1"),
        ("column", "UPDATE", "mysql.db", "r1"),
    ]
    assert _parse_grant("GRANT FILE ON *.* TO `r2`", via="r1") == [("global", "FILE", "*.*", "r1")]
    assert _parse_grant("GRANT `r2` TO `r1`", via="r1") == []  # a role, listed with its grants
    assert _parse_grant("GRANT EXECUTE ON PROCEDURE `d`.`p` TO `r1`", via="r1") == [
        ("routine", "EXECUTE", "d.p", "r1")
    ]


@pytest.mark.slow
def test_oracle_classification_from_its_catalog_views() -> None:
    # UNTESTED against a server: the rows Oracle's documentation says these views return.
    from sqlagent.execution._privileges import _oracle

    answers = {
        "SESSION_PRIVS": [("CREATE SESSION",), ("CREATE TABLE",), ("ALTER SYSTEM",)],
        "USER_TAB_PRIVS_RECD": [("INSERT", 2)],
        "USER_TABLES": [(3,)],
        "ALL_DIRECTORIES": [("DATA_PUMP_DIR",)],
    }

    def run(sql: str) -> list[tuple[object, ...]]:
        return next(rows for view, rows in answers.items() if view in sql)

    found = {f.privilege: f for f in _oracle(run)}
    assert set(found) == {"CREATE TABLE", "ALTER SYSTEM", "INSERT", "OWNER", "DIRECTORY access"}
    assert found["ALTER SYSTEM"].kind == "admin"
    assert found["CREATE TABLE"].kind == "write"
    assert found["DIRECTORY access"].kind == "server_files"
