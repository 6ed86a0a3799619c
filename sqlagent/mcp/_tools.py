"""The six tools: their arguments, results and hints, and how a role's view becomes a result.

Arguments and results are pydantic models, so the JSON schemas a client sees (``inputSchema``,
``outputSchema``) and what the server accepts and returns come from one definition. Everything
here is pure: it reads a :class:`~sqlagent.agent.RoleView` (hidden tables and columns are
not in it) and never the whole catalog, so nothing a result holds can name what the role may not
see.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pydantic
from mcp import types

from sqlagent import prompt
from sqlagent.agent import RoleView
from sqlagent.catalog import Table
from sqlagent.retrieval import Retrieval
from sqlagent.types import Answer, Verdict

__all__ = [
    "AskArgs",
    "AskResult",
    "DEFAULT_MAX_QUESTION_CHARS",
    "DEFAULT_MAX_ROWS",
    "DescribeTableArgs",
    "MAX_K",
    "NoArgs",
    "QueryResult",
    "RunSQLArgs",
    "SchemaSearch",
    "SearchSchemaArgs",
    "SQLArgs",
    "TOOLS",
    "TOOL_NAMES",
    "TableDescription",
    "TableList",
    "ToolError",
    "ToolSpec",
    "Validation",
    "answer_result",
    "describe",
    "find_table",
    "json_safe",
    "query_result",
    "schema_search",
    "table_list",
    "tool_definitions",
    "validation",
]

#: Rows ``run_sql`` returns when the caller gives no ``max_rows`` (never above the agent's cap).
DEFAULT_MAX_ROWS = 100
#: The longest question ``ask``/``search_schema`` take over stdio (HTTP: the serve limits').
DEFAULT_MAX_QUESTION_CHARS = 2000
#: The most tables ``search_schema`` ranks for one question.
MAX_K = 50


class ToolError(Exception):
    """A tool call that ends in an MCP tool error (``isError``); the message is for the caller."""


# -- arguments -------------------------------------------------------------------------------------
class _Args(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)


class NoArgs(_Args):
    pass


class DescribeTableArgs(_Args):
    table: str = pydantic.Field(
        min_length=1, max_length=512, description="A table name, as list_tables shows it."
    )


class SearchSchemaArgs(_Args):
    question: str = pydantic.Field(min_length=1, description="The question, in words.")
    k: int | None = pydantic.Field(
        default=None,
        ge=1,
        le=MAX_K,
        description="How many tables to rank (default: the server's configured number).",
    )


class SQLArgs(_Args):
    sql: str = pydantic.Field(min_length=1, description="One SQL statement.")


class RunSQLArgs(SQLArgs):
    max_rows: int | None = pydantic.Field(
        default=None,
        ge=1,
        description=f"Return at most this many rows (default {DEFAULT_MAX_ROWS}; the server's "
        "row cap always applies).",
    )


class AskArgs(_Args):
    question: str = pydantic.Field(min_length=1, description="The question, in words.")


# -- results ---------------------------------------------------------------------------------------
class _Out(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True)


class TableSummary(_Out):
    name: str
    kind: Literal["table", "view"]
    description: str | None = pydantic.Field(description="The first line of the table comment.")
    columns: list[str] = pydantic.Field(description="The columns this role may read.")
    masked_columns: list[str] = pydantic.Field(
        description="Columns readable only as a mask: select them, never filter, join or sort."
    )


class TableList(_Out):
    role: str | None
    tables: list[TableSummary]


class ColumnInfo(_Out):
    name: str
    type: str
    nullable: bool
    primary_key: bool
    description: str | None
    masked: bool = pydantic.Field(description="Readable only as a mask ('***').")
    samples: list[str] = pydantic.Field(description="A few values, only where readable in clear.")


class ForeignKeyInfo(_Out):
    columns: list[str]
    references_table: str
    references_columns: list[str]


class TableDescription(_Out):
    role: str | None
    name: str
    kind: Literal["table", "view"]
    description: str | None
    columns: list[ColumnInfo]
    primary_key: list[str]
    foreign_keys: list[ForeignKeyInfo]
    ddl: str = pydantic.Field(description="The table as the agent's own prompt shows it.")


class ExampleInfo(_Out):
    question: str
    sql: str


class SchemaSearch(_Out):
    role: str | None
    question: str
    tables: list[str] = pydantic.Field(description="Ranked tables, then those joined to them.")
    scores: list[float]
    expanded: list[str]
    examples: list[ExampleInfo] = pydantic.Field(description="Stored question/SQL pairs.")
    notes: list[str] = pydantic.Field(description="Business-glossary passages.")
    complete: bool = pydantic.Field(description="True when every table of the view is listed.")
    ddl: str = pydantic.Field(description="The listed tables as DDL, masked columns marked.")


class ViolationInfo(_Out):
    code: str
    message: str
    suggestions: list[str]


class Validation(_Out):
    allowed: bool
    sql: str | None = pydantic.Field(description="The statement that would run (rewritten).")
    violations: list[ViolationInfo]
    feedback: str | None = pydantic.Field(description="Why it was refused and what to use.")
    tables: list[str]
    columns: list[str]
    masked_columns: list[str]
    role: str | None
    policy_mode: str
    dialect: str
    audit_id: str


class QueryResult(_Out):
    role: str | None
    sql: str | None = pydantic.Field(description="The statement that ran (the guard's rewrite).")
    columns: list[str]
    rows: list[list[Any]]
    row_count: int
    truncated: bool = pydantic.Field(description="More rows matched than were returned.")
    masked_columns: list[str]
    audit_id: str | None


class AskResult(QueryResult):
    question: str
    model: str | None = pydantic.Field(description="The model backend that wrote the SQL.")
    attempts: int


# -- the tools -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool as clients see it: its name, arguments, result and description."""

    name: str
    title: str
    args: type[_Args]
    result: type[_Out]
    description: str


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "list_tables",
        "List tables",
        NoArgs,
        TableList,
        "The tables you may read, each with a one-line description, its readable columns and "
        "the columns you may read only masked. Tables and columns you may not read are not "
        "listed at all.",
    ),
    ToolSpec(
        "describe_table",
        "Describe a table",
        DescribeTableArgs,
        TableDescription,
        "One table of your view: columns, types, keys, sample values (only for columns you may "
        "read in clear), masked columns marked, and its DDL.",
    ),
    ToolSpec(
        "search_schema",
        "Search the schema",
        SearchSchemaArgs,
        SchemaSearch,
        "The tables, stored example queries and glossary notes most relevant to a question "
        "(the agent's retrieval step), with the tables as DDL. Use it before writing SQL.",
    ),
    ToolSpec(
        "validate_sql",
        "Validate SQL",
        SQLArgs,
        Validation,
        "Check one SQL statement against the safety rules and your role's policy without "
        "running it: allowed or not, the rewritten SQL that would run, and each violation "
        "with a message and suggestions.",
    ),
    ToolSpec(
        "run_sql",
        "Run SQL (read-only)",
        RunSQLArgs,
        QueryResult,
        "Run one read-only SELECT: checked like validate_sql, then executed on a read-only "
        "connection with a time limit and a row cap. A refused statement is a tool error whose "
        "message says why and what to use instead.",
    ),
    ToolSpec(
        "ask",
        "Ask a question",
        AskArgs,
        AskResult,
        "Answer a question in words with the server's own model: it writes SQL for your role, "
        "the guard checks it, and it runs read-only. Fails with a tool error when the server "
        "has no model that can answer.",
    ),
)


#: The tools' names, in the order ``tools/list`` gives them.
TOOL_NAMES = tuple(spec.name for spec in TOOLS)


def tool_definitions() -> list[types.Tool]:
    """The tools as ``tools/list`` returns them; every one read-only and closed-world."""
    return [
        types.Tool(
            name=spec.name,
            title=spec.title,
            description=spec.description,
            inputSchema=_schema(spec.args),
            outputSchema=_schema(spec.result),
            annotations=types.ToolAnnotations(
                title=spec.title,
                readOnlyHint=True,
                destructiveHint=False,
                idempotentHint=True,
                openWorldHint=False,
            ),
        )
        for spec in TOOLS
    ]


def _schema(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    if model.model_config.get("extra") == "forbid":
        schema["additionalProperties"] = False
    schema.setdefault("properties", {})
    return schema


# -- results from the agent's values ---------------------------------------------------------------
def table_list(view: RoleView) -> TableList:
    return TableList(
        role=view.role,
        tables=[
            TableSummary(
                name=t.name,
                kind="view" if t.is_view else "table",
                description=_first_line(t.comment),
                columns=list(t.column_names),
                masked_columns=_masked(view, t),
            )
            for t in view.catalog
        ],
    )


def describe(view: RoleView, name: str, dialect: str) -> TableDescription:
    """``name`` in ``view`` (exact, else the one table matching it without case); a hidden or
    unknown table raises the same :class:`ToolError`, so the answer never tells them apart."""
    table = find_table(view, name)
    masked = set(_masked(view, table))
    return TableDescription(
        role=view.role,
        name=table.name,
        kind="view" if table.is_view else "table",
        description=table.comment,
        columns=[
            ColumnInfo(
                name=c.name,
                type=c.type,
                nullable=c.nullable,
                primary_key=c.primary_key,
                description=c.comment,
                masked=c.name in masked,
                samples=[] if c.name in masked else list(c.samples),
            )
            for c in table.columns
        ],
        primary_key=[c.name for c in table.columns if c.primary_key],
        foreign_keys=[
            ForeignKeyInfo(
                columns=list(fk.columns),
                references_table=fk.ref_table,
                references_columns=list(fk.ref_columns),
            )
            for fk in table.foreign_keys
        ],
        ddl=prompt.render_schema(view.catalog, dialect, tables=[table.name], masked=view.masked),
    )


def find_table(view: RoleView, name: str) -> Table:
    table = view.catalog.table(name)
    if table is None:
        folded = [t for t in view.catalog if t.name.casefold() == name.casefold()]
        table = folded[0] if len(folded) == 1 else None
    if table is None:
        raise ToolError(
            f"no table {name!r} in your view; list_tables shows the tables you may read"
        )
    return table


def schema_search(view: RoleView, found: Retrieval, dialect: str) -> SchemaSearch:
    return SchemaSearch(
        role=view.role,
        question=found.question,
        tables=list(found.tables),
        scores=[round(s, 4) for s in found.scores],
        expanded=list(found.expanded),
        examples=[ExampleInfo(question=e.question, sql=e.sql) for e in found.examples],
        notes=list(found.docs),
        complete=found.complete,
        ddl=prompt.render_schema(view.catalog, dialect, tables=found.tables, masked=view.masked),
    )


def validation(verdict: Verdict, audit_id: str) -> Validation:
    data = verdict.to_dict()
    return Validation(
        **{k: data[k] for k in Validation.model_fields if k in data},
        feedback=verdict.feedback() or None,
        audit_id=audit_id,
    )


def query_result(answer: Answer) -> QueryResult:
    return QueryResult(**_answer_fields(answer))


def answer_result(answer: Answer) -> AskResult:
    return AskResult(
        **_answer_fields(answer),
        question=answer.question,
        model=answer.model,
        attempts=len(answer.attempts),
    )


def _answer_fields(answer: Answer) -> dict[str, Any]:
    return {
        "role": answer.role,
        "sql": answer.sql,
        "columns": list(answer.columns),
        "rows": json_safe([list(r) for r in answer.rows]),
        "row_count": answer.row_count,
        "truncated": answer.truncated,
        "masked_columns": list(answer.masked_columns),
        "audit_id": answer.audit_id,
    }


def json_safe(value: Any) -> Any:
    """``value`` with what JSON cannot hold (dates, decimals, bytes) as ``str()``, as the CLI's
    ``--json`` and ``sqlagent serve`` write database values."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def _masked(view: RoleView, table: Table) -> list[str]:
    return [c for c in table.column_names if (table.name, c) in view.masked]


def _first_line(text: str | None) -> str | None:
    if not text:
        return None
    lines: Sequence[str] = [line.strip() for line in text.strip().splitlines()]
    return lines[0] if lines else None
