"""Step 1: turn text into exactly one syntax tree, or say precisely why not."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import ErrorLevel
from sqlglot.tokenizer_core import Token, TokenType

from sqlagent.dialects import analysis_dialect
from sqlagent.types import Violation, ViolationCode

__all__ = ["Parsed", "parse_one_statement"]


@dataclass(frozen=True, slots=True)
class Parsed:
    tree: exp.Expr | None
    violations: tuple[Violation, ...] = ()
    tokens: tuple[Token, ...] = ()
    sql: str = ""
    dialect: str = ""

    def again(self) -> exp.Expr:
        """A second, independent tree of the same statement (parsed from the same tokens):
        cheaper than a deep copy, and never sharing a node with :attr:`tree`."""
        return _statements(list(self.tokens), self.sql, self.dialect)[0]


def _statements(tokens: list[Token], sql: str, dialect: str) -> list[exp.Expr]:
    """The statements parsed from ``tokens`` (empty ones and bare semicolons left out)."""
    parser = analysis_dialect(dialect).parser(error_level=ErrorLevel.IMMEDIATE)
    return [
        s for s in parser.parse(tokens, sql) if s is not None and not isinstance(s, exp.Semicolon)
    ]


def _fail(code: ViolationCode, message: str) -> Parsed:
    return Parsed(None, (Violation(code, message),))


def _executable_comment(tokens: list[Token]) -> bool:
    # MySQL and MariaDB run the body of /*! ... */ and /*M! ... */ comments as SQL, so text that
    # every parser treats as a comment can carry a second statement. Reject them everywhere.
    for token in tokens:
        for comment in token.comments:
            body = comment.lstrip()
            if body.startswith("!") or body[:2].upper() == "M!":
                return True
    return False


def _depth(tokens: list[Token]) -> int:
    depth = deepest = 0
    for token in tokens:
        if token.token_type == TokenType.L_PAREN:
            depth += 1
            deepest = max(deepest, depth)
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
    return deepest


def parse_one_statement(
    sql: str, dialect: str, *, max_chars: int | None = None, max_depth: int | None = None
) -> Parsed:
    """Parse ``sql``: exactly one statement (comments and one trailing ``;`` are fine).

    ``max_chars`` and ``max_depth`` (parenthesis nesting) bound the work spent on one input before
    parsing starts: analysis time grows faster than linearly with statement size.
    """
    if not sql.strip():
        return _fail(ViolationCode.PARSE_ERROR, "The SQL is empty.")
    if max_chars is not None and len(sql) > max_chars:
        return _fail(
            ViolationCode.PARSE_ERROR,
            f"The SQL is {len(sql):,} characters long; the limit is {max_chars:,}.",
        )
    sqlglot_dialect = analysis_dialect(dialect)
    try:
        tokens = sqlglot_dialect.tokenize(sql)
        if _executable_comment(tokens):
            return _fail(
                ViolationCode.NOT_READ_ONLY,
                "MySQL executable comments (/*! ... */) are not allowed: their body runs as SQL.",
            )
        if max_depth is not None and _depth(tokens) > max_depth:
            return _fail(
                ViolationCode.PARSE_ERROR,
                f"The SQL nests parentheses more than {max_depth} levels deep.",
            )
        trees = _statements(tokens, sql, dialect)
    except RecursionError:
        return _fail(ViolationCode.PARSE_ERROR, "The SQL is nested too deeply to parse.")
    except Exception as exc:  # ParseError, TokenError, and the parser's own internal errors
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return _fail(ViolationCode.PARSE_ERROR, f"Invalid SQL: {message}")
    if not trees:
        return _fail(ViolationCode.PARSE_ERROR, "No SQL statement found.")
    if len(trees) > 1:
        return _fail(
            ViolationCode.MULTIPLE_STATEMENTS,
            f"Found {len(trees)} statements; exactly one SELECT statement is allowed.",
        )
    return Parsed(trees[0], (), tuple(tokens), sql, dialect)
