"""Step 1: turn text into exactly one syntax tree, or say precisely why not."""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, SqlglotError, TokenError

from sqlagent.dialects import analysis_dialect
from sqlagent.types import Violation, ViolationCode

__all__ = ["Parsed", "parse_one_statement"]


@dataclass(frozen=True, slots=True)
class Parsed:
    tree: exp.Expr | None
    violations: tuple[Violation, ...] = ()


def _executable_comment(sql: str, dialect: str) -> Violation | None:
    # MySQL and MariaDB run the body of /*! ... */ and /*M! ... */ comments as SQL, so text that
    # every parser treats as a comment can carry a second statement. Reject them everywhere.
    for token in analysis_dialect(dialect).tokenize(sql):
        for comment in token.comments:
            body = comment.lstrip()
            if body.startswith("!") or body[:2].upper() == "M!":
                return Violation(
                    ViolationCode.NOT_READ_ONLY,
                    "MySQL executable comments (/*! ... */) are not allowed: "
                    "their body runs as SQL.",
                )
    return None


def parse_one_statement(sql: str, dialect: str) -> Parsed:
    """Parse ``sql``: exactly one statement (comments and one trailing ``;`` are fine)."""
    if not sql.strip():
        return Parsed(None, (Violation(ViolationCode.PARSE_ERROR, "The SQL is empty."),))
    try:
        executable = _executable_comment(sql, dialect)
        if executable is not None:
            return Parsed(None, (executable,))
        statements = sqlglot.parse(sql, read=dialect, error_level=ErrorLevel.IMMEDIATE)
    except (ParseError, TokenError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Parsed(None, (Violation(ViolationCode.PARSE_ERROR, f"Invalid SQL: {message}"),))
    except SqlglotError as exc:
        return Parsed(None, (Violation(ViolationCode.PARSE_ERROR, f"Invalid SQL: {exc}"),))
    trees = [s for s in statements if s is not None and not isinstance(s, exp.Semicolon)]
    if not trees:
        return Parsed(None, (Violation(ViolationCode.PARSE_ERROR, "No SQL statement found."),))
    if len(trees) > 1:
        return Parsed(
            None,
            (
                Violation(
                    ViolationCode.MULTIPLE_STATEMENTS,
                    f"Found {len(trees)} statements; exactly one SELECT statement is allowed.",
                ),
            ),
        )
    return Parsed(trees[0])
