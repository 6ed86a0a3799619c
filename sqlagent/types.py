"""Value types shared across sqlagent: violations and verdicts.

They are frozen and JSON-friendly (:meth:`Verdict.to_dict`): the CLI's ``--json`` output, the
audit events and the self-correction feedback are all rendered from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["Example", "Verdict", "Violation", "ViolationCode"]


class ViolationCode(StrEnum):
    """Why a statement was refused. The values are a public contract (CLI ``--json``)."""

    PARSE_ERROR = "parse_error"
    MULTIPLE_STATEMENTS = "multiple_statements"
    NOT_READ_ONLY = "not_read_only"
    FORBIDDEN_FUNCTION = "forbidden_function"
    UNKNOWN_TABLE = "unknown_table"
    UNKNOWN_COLUMN = "unknown_column"
    AMBIGUOUS_COLUMN = "ambiguous_column"
    TABLE_DENIED = "table_denied"
    COLUMN_DENIED = "column_denied"
    MASKED_COLUMN_MISUSE = "masked_column_misuse"


@dataclass(frozen=True, slots=True)
class Violation:
    """One reason for a rejection; ``message`` is written so a model can act on it."""

    code: ViolationCode
    message: str
    suggestions: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": str(self.code),
            "message": self.message,
            "suggestions": list(self.suggestions),
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """The safety core's decision on one statement.

    ``sql`` is the statement that would run: regenerated from the validated syntax tree (comments
    dropped), with ``*`` expanded to the granted columns, masked columns replaced by a mask and the
    row cap applied. It is ``None`` when the statement is rejected. ``tables`` and ``columns``
    name the catalog objects the statement reads (``"table.column"``), in first-seen order.
    """

    allowed: bool
    sql: str | None
    original_sql: str
    dialect: str
    violations: tuple[Violation, ...] = ()
    tables: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    masked_columns: tuple[str, ...] = ()
    role: str | None = None
    policy_mode: str = "single_user"

    @property
    def codes(self) -> tuple[ViolationCode, ...]:
        return tuple(v.code for v in self.violations)

    def summary(self) -> str:
        if self.allowed:
            return "allowed"
        return "; ".join(f"{v.code}: {v.message}" for v in self.violations) or "rejected"

    def feedback(self) -> str:
        """Text for a model: what was wrong and how to fix it (the self-correction loop)."""
        if self.allowed:
            return ""
        lines = ["The SQL was rejected:"]
        for v in self.violations:
            line = f"- {v.message}"
            if v.suggestions:
                line += " Did you mean: " + ", ".join(v.suggestions) + "?"
            lines.append(line)
        lines.append(
            "Write one read-only SELECT statement that uses only the tables and columns shown."
        )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The CLI's ``--json`` object (a public contract) plus a few extra keys."""
        return {
            "allowed": self.allowed,
            "sql": self.sql,
            "violations": [v.to_dict() for v in self.violations],
            "tables": list(self.tables),
            "columns": list(self.columns),
            "masked_columns": list(self.masked_columns),
            "role": self.role,
            "policy_mode": self.policy_mode,
            "dialect": self.dialect,
        }


@dataclass(frozen=True, slots=True)
class Example:
    """A question with the SQL that answers it: few-shot memory, training data, eval items."""

    question: str
    sql: str

    def to_dict(self) -> dict[str, str]:
        return {"question": self.question, "sql": self.sql}
