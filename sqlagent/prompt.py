"""The one prompt format, shared by the runtime, ``sqlagent train`` and ``sqlagent eval``.

A fine-tuned adapter is only as good as the match between what it saw in training and what it is
shown at run time, so every prompt is rendered here and nowhere else, and the format carries a
version (:data:`PROMPT_FORMAT_VERSION`) that adapters record and :class:`TransformersLLM` checks.
Change the rendering, bump the version.

The schema is rendered as CREATE TABLE-style DDL of the *role-filtered* catalog: a prompt never
names a table or column the role cannot read, and masked columns are marked as such and never
carry sample values.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence

from sqlglot import exp

from sqlagent.catalog import Catalog, Table
from sqlagent.dialects import RESERVED_WORDS, resolve_dialect
from sqlagent.types import Example, Message, Turn

__all__ = [
    "COMPATIBLE_PROMPT_FORMATS",
    "PROMPT_FORMAT_VERSION",
    "bound_history",
    "build_messages",
    "conversation_of",
    "correction_messages",
    "count_tokens",
    "question_of",
    "render_answer",
    "render_schema",
    "render_table",
]

#: Bump on any change to what the functions below render.
PROMPT_FORMAT_VERSION = "sqlagent-prompt/2"
#: Formats whose adapters still match this renderer. Version 2 added the conversation section
#: (present only when a question has history); a single question renders byte for byte as in
#: version 1, so a version-1 adapter is still shown exactly what it learned for single turns.
COMPATIBLE_PROMPT_FORMATS = frozenset({"sqlagent-prompt/1", PROMPT_FORMAT_VERSION})

_DIALECT_NAMES = {
    "sqlite": "SQLite",
    "postgres": "PostgreSQL",
    "mysql": "MySQL/MariaDB",
    "oracle": "Oracle",
}
_DIALECT_HINTS = {
    "sqlite": "Use LIMIT n to limit rows; dates are text: use strftime() and date().",
    "postgres": "Use LIMIT n to limit rows; quote identifiers with double quotes when needed.",
    "mysql": "Use LIMIT n to limit rows; quote identifiers with backticks when needed.",
    "oracle": (
        "Use FETCH FIRST n ROWS ONLY (not LIMIT) to limit rows; no trailing semicolon; "
        "quote identifiers with double quotes when needed."
    ),
}
_QUESTION_HEADING = "### Question\n"
_HISTORY_HEADING = "### Conversation so far\n"
_HISTORY_RULE = (
    "- The question may follow up on the conversation so far: read it in that context, and "
    "write a query that answers it on its own."
)
_NO_QUERY = "(no query ran)"
_MASKED_NOTE = "masked for you: may be selected (shows '***'), never filtered, joined or sorted on"
_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN = re.compile(r"\w+|[^\w\s]")


def _ident(name: str, dialect: str) -> str:
    unsafe = not _SAFE_NAME.match(name) or name.upper() in RESERVED_WORDS
    if dialect == "postgres" and name != name.lower():
        unsafe = True  # PostgreSQL folds unquoted names to lower case
    return exp.to_identifier(name, quoted=unsafe).sql(dialect=dialect)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _sample_text(samples: Sequence[str]) -> str:
    return "e.g. " + ", ".join("'" + s.replace("'", "''") + "'" for s in samples)


def render_table(table: Table, dialect: str, *, masked: Collection[str] = ()) -> str:
    """One table as DDL: types, keys, comments, sample values; ``masked`` columns marked."""
    dialect = resolve_dialect(dialect)
    lines = []
    pk = [c.name for c in table.columns if c.primary_key]
    for column in table.columns:
        parts = [_ident(column.name, dialect)]
        if column.type:
            parts.append(column.type)
        if len(pk) == 1 and column.primary_key:
            parts.append("PRIMARY KEY")
        elif not column.nullable:
            parts.append("NOT NULL")
        notes = []
        if column.comment:
            notes.append(_one_line(column.comment))
        if column.name in masked:
            notes.append(_MASKED_NOTE)
        elif column.samples:
            notes.append(_sample_text(column.samples))
        lines.append((" ".join(parts), "; ".join(notes)))
    if len(pk) > 1:
        lines.append((f"PRIMARY KEY ({', '.join(_ident(n, dialect) for n in pk)})", ""))
    for fk in table.foreign_keys:
        cols = ", ".join(_ident(n, dialect) for n in fk.columns)
        refs = ", ".join(_ident(n, dialect) for n in fk.ref_columns)
        lines.append(
            (f"FOREIGN KEY ({cols}) REFERENCES {_ident(fk.ref_table, dialect)}({refs})", "")
        )
    body = []
    for i, (text, note) in enumerate(lines):
        comma = "," if i < len(lines) - 1 else ""
        body.append(f"  {text}{comma}" + (f" -- {note}" if note else ""))
    head = ""
    if table.comment:
        head = f"-- {_one_line(table.comment)}\n"
    kind = "VIEW" if table.is_view else "TABLE"
    return head + f"CREATE {kind} {_ident(table.name, dialect)} (\n" + "\n".join(body) + "\n);"


def render_schema(
    catalog: Catalog,
    dialect: str,
    *,
    tables: Iterable[str] | None = None,
    masked: Collection[tuple[str, str]] = (),
) -> str:
    """DDL for ``tables`` (in that order; default: the whole catalog, in catalog order).

    ``catalog`` must already be the role's view (:meth:`sqlagent.Guard.catalog_for`); ``masked``
    holds the role's masked ``(table, column)`` pairs. Unknown names in ``tables`` are skipped.
    """
    names = catalog.table_names if tables is None else tables
    parts = []
    for name in names:
        table = catalog.table(name)
        if table is not None:
            cols = {c for t, c in masked if t == name}
            parts.append(render_table(table, dialect, masked=cols))
    return "\n\n".join(parts)


def render_answer(sql: str) -> str:
    """The answer a model is trained to give and asked to give: the SQL in one fenced block."""
    return f"```sql\n{sql.strip()}\n```"


def build_messages(
    question: str,
    *,
    schema: str,
    dialect: str,
    examples: Sequence[Example] = (),
    docs: Sequence[str] = (),
    history: Sequence[Turn] = (),
) -> list[Message]:
    """The chat messages for one question: instructions, then schema, notes, examples, the
    conversation so far (``history``, oldest first: each earlier question with the SQL that
    answered it, never rows; bound it first with :func:`bound_history`), question."""
    dialect = resolve_dialect(dialect)
    system = (
        f"You write {_DIALECT_NAMES[dialect]} SQL that answers questions about a database.\n"
        "- Write exactly one read-only query (SELECT, or WITH ... SELECT); never change data.\n"
        "- Use only the tables and columns of the schema; never guess other names.\n"
        f"- {_DIALECT_HINTS[dialect]}\n"
        + (f"{_HISTORY_RULE}\n" if history else "")
        + "- Answer with the SQL in one ```sql code block and nothing else."
    )
    sections = [f"### Schema\n{schema.strip()}"]
    if docs:
        sections.append("### Notes\n" + "\n\n".join(d.strip() for d in docs))
    if examples:
        shots = "\n\n".join(
            f"Question: {_one_line(e.question)}\n{render_answer(e.sql)}" for e in examples
        )
        sections.append(f"### Examples\n{shots}")
    if history:
        turns = "\n\n".join(
            f"Question: {_one_line(t.question)}\n" + (render_answer(t.sql) if t.sql else _NO_QUERY)
            for t in history
        )
        sections.append(_HISTORY_HEADING + turns)
    sections.append(_QUESTION_HEADING + _one_line(question))
    return [Message.system(system), Message.user("\n\n".join(sections))]


def bound_history(turns: Sequence[Turn], *, max_turns: int, max_tokens: int) -> list[Turn]:
    """The most recent ``turns`` that fit: at most ``max_turns`` of them and at most
    ``max_tokens`` (:func:`count_tokens`) together, oldest dropped first; a turn that does not
    fit ends the history there (nothing older is kept around a gap)."""
    kept: list[Turn] = []
    budget = max_tokens
    for turn in reversed(turns[-max_turns:] if max_turns > 0 else []):
        cost = count_tokens(turn.question) + count_tokens(turn.sql or _NO_QUERY)
        if cost > budget:
            break
        budget -= cost
        kept.append(turn)
    kept.reverse()
    return kept


def correction_messages(answer: str, feedback: str) -> list[Message]:
    """The turn that sends a rejected or failed attempt back to the model for another try."""
    return [
        Message.assistant(answer),
        Message.user(
            f"That query cannot be used:\n{feedback.strip()}\n"
            "Write a corrected query. Answer with the SQL in one ```sql code block."
        ),
    ]


def question_of(messages: Sequence[Message]) -> str:
    """The question of a prompt rendered by :func:`build_messages` (the first user message's
    question section), or the last user message when the prompt was not rendered here."""
    for message in messages:
        if message.role == "user" and _QUESTION_HEADING in message.content:
            return message.content.rpartition(_QUESTION_HEADING)[2].strip()
    for message in reversed(messages):
        if message.role == "user":
            return message.content
    return ""


def conversation_of(messages: Sequence[Message]) -> tuple[str, ...]:
    """The earlier questions of a prompt rendered by :func:`build_messages` with history
    (oldest first, as rendered); ``()`` for a single question."""
    for message in messages:
        if message.role == "user" and _HISTORY_HEADING in message.content:
            section = message.content.split(_HISTORY_HEADING, 1)[1]
            section = section.split("\n\n" + _QUESTION_HEADING, 1)[0]
            return tuple(
                line.removeprefix("Question: ")
                for line in section.splitlines()
                if line.startswith("Question: ")
            )
    return ()


def count_tokens(text: str) -> int:
    """A tokenizer-free token count (words and punctuation marks), for budgets and benchmarks.

    It tracks model tokenizers to within a small factor on SQL and DDL, which is enough to
    compare prompts with one another; it is not any particular model's count.
    """
    return len(_TOKEN.findall(text))
