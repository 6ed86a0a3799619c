"""The shared prompt renderer: DDL of the role's view, masking notes, samples, messages."""

from __future__ import annotations

import sqlglot

from sqlagent.catalog import Catalog, Column, ForeignKey, Table
from sqlagent.prompt import (
    PROMPT_FORMAT_VERSION,
    build_messages,
    correction_messages,
    count_tokens,
    question_of,
    render_answer,
    render_schema,
    render_table,
)
from sqlagent.types import Example

PEOPLE = Table(
    "people",
    (
        Column("id", "INTEGER", nullable=False, primary_key=True),
        Column("name", "TEXT", nullable=False, comment="Full  name\nas written"),
        Column("team", "TEXT", samples=("Ops", "R&D", "O'Hare")),
        Column("salary", "INTEGER", samples=("100",)),
        Column("select", "TEXT"),
        Column("Mixed Case", "TEXT"),
        Column("team_id", "INTEGER"),
    ),
    comment="Everyone on the payroll",
    foreign_keys=(ForeignKey(("team_id",), "teams", ("id",)),),
)
TEAMS = Table("teams", (Column("id", "INTEGER", primary_key=True), Column("name", "TEXT")))
LINKS = Table(
    "links",
    (Column("a", "INTEGER", primary_key=True), Column("b", "INTEGER", primary_key=True)),
    is_view=True,
)
CATALOG = Catalog((PEOPLE, TEAMS, LINKS))


def test_ddl_parses_in_every_dialect() -> None:
    for dialect in ("sqlite", "postgres", "mysql", "oracle"):
        ddl = render_schema(CATALOG, dialect)
        statements = [s for s in sqlglot.parse(ddl.replace(");", ")\n;"), read=dialect) if s]
        assert len(statements) == 3, dialect


def test_table_rendering_details() -> None:
    text = render_table(PEOPLE, "sqlite", masked={"salary"})
    assert text.startswith("-- Everyone on the payroll\nCREATE TABLE people (")
    assert "id INTEGER PRIMARY KEY," in text
    assert "name TEXT NOT NULL, -- Full name as written" in text
    assert "e.g. 'Ops', 'R&D', 'O''Hare'" in text
    assert "FOREIGN KEY (team_id) REFERENCES teams(id)" in text
    assert '"select" TEXT' in text
    assert '"Mixed Case" TEXT' in text
    salary_line = next(line for line in text.splitlines() if "salary" in line)
    assert "masked" in salary_line
    assert "100" not in salary_line
    assert "CREATE VIEW links" in render_table(LINKS, "sqlite")
    assert "PRIMARY KEY (a, b)" in render_table(LINKS, "sqlite")


def test_dialect_quoting() -> None:
    assert "`Mixed Case`" in render_table(PEOPLE, "mysql")
    table = Table("Orders", (Column("Id", "INT"),))
    assert 'CREATE TABLE "Orders"' in render_table(table, "postgres")
    assert "CREATE TABLE Orders" in render_table(table, "sqlite")


def test_schema_selects_and_orders_tables() -> None:
    text = render_schema(CATALOG, "sqlite", tables=["teams", "nope", "people"])
    assert text.index("CREATE TABLE teams") < text.index("CREATE TABLE people")
    assert "links" not in text
    masked = render_schema(CATALOG, "sqlite", masked={("people", "salary")})
    assert "salary INTEGER, -- masked" in masked


def test_messages_and_question_round_trip() -> None:
    examples = [Example("How many teams?", "SELECT COUNT(*) FROM teams")]
    messages = build_messages(
        "Who is in\nOps?",
        schema="CREATE TABLE t (a INT);",
        dialect="oracle",
        examples=examples,
        docs=["Ops means operations."],
    )
    assert [m.role for m in messages] == ["system", "user"]
    assert "Oracle" in messages[0].content
    assert "FETCH FIRST" in messages[0].content
    user = messages[1].content
    assert user.index("### Schema") < user.index("### Notes") < user.index("### Examples")
    assert render_answer("SELECT COUNT(*) FROM teams") in user
    assert question_of(messages) == "Who is in Ops?"
    followup = messages + correction_messages("SELECT x", "unknown column x")
    assert [m.role for m in followup][-2:] == ["assistant", "user"]
    assert "unknown column x" in followup[-1].content
    assert question_of(followup) == "Who is in Ops?"


def test_token_count_and_version() -> None:
    assert count_tokens("SELECT a, b FROM t;") == 7
    assert PROMPT_FORMAT_VERSION.startswith("sqlagent-prompt/")
