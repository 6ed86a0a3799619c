"""Step 5: regenerate SQL from the validated tree, in the syntax of the engine that will run it.

MySQL and MariaDB share an analysis dialect (their name resolution is the same) but not all of
their syntax: sqlglot's MySQL generator writes ``REGEXP_LIKE(a, b)`` and ``a ->> '$.k'``, which
MariaDB does not have. For the ``mariadb`` target those nodes are first rewritten into forms both
servers run, with the same meaning (NULLs included): ``(REGEXP_INSTR(a, b) > 0)`` and
``JSON_UNQUOTE(JSON_EXTRACT(a, '$.k'))``; MariaDB's ``MEDIAN(x) OVER (...)`` stays as written.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError
from sqlglot.tokenizer_core import TokenType

from sqlagent.dialects import analysis_dialect

__all__ = ["TARGETS", "Quoted", "faithful", "render"]

#: Render targets beyond the analysis dialects: target -> analysis dialect.
TARGETS = {"mariadb": "mysql"}


def _for_mariadb(tree: exp.Expr) -> exp.Expr:
    for node in list(tree.find_all(exp.RegexpLike)):
        if node.args.get("flag") is not None:
            raise UnsupportedError("REGEXP_LIKE with match flags: MariaDB has no REGEXP_LIKE")
        instr = exp.RegexpInstr(this=node.this, expression=node.expression)
        node.replace(exp.Paren(this=exp.GT(this=instr, expression=exp.Literal.number(0))))
    for median in list(tree.find_all(exp.Median)):
        # MariaDB's MEDIAN() is a window function; sqlglot writes PERCENTILE_CONT(x, 0.5)
        median.replace(exp.Anonymous(this="MEDIAN", expressions=[median.this]))
    for scalar in list(tree.find_all(exp.JSONExtractScalar)):
        extract = exp.JSONExtract(this=scalar.this, expression=scalar.expression)
        scalar.replace(exp.Anonymous(this="JSON_UNQUOTE", expressions=[extract]))
    return tree


def render(tree: exp.Expr, target: str) -> str:
    """``tree`` as SQL text for ``target`` (an analysis dialect, or ``mariadb``), without
    comments; anything the generator cannot render faithfully raises instead of being dropped.

    The tree may be changed: every tree rendered here is discarded afterwards (``copy=False``;
    copying large trees dominated validation time).
    """
    dialect = TARGETS.get(target, target)
    if target == "mariadb":
        tree = _for_mariadb(tree)
    return tree.sql(dialect=dialect, comments=False, unsupported_level=ErrorLevel.RAISE, copy=False)


# -- checking the text against the tree ----------------------------------------------------------

_STRING_NODES = (
    exp.National, exp.HexString, exp.BitString, exp.ByteString, exp.RawString, exp.UnicodeString
)  # fmt: skip
_STRING_TOKENS = frozenset({
    TokenType.STRING, TokenType.NATIONAL_STRING, TokenType.RAW_STRING, TokenType.BYTE_STRING,
    TokenType.BIT_STRING, TokenType.HEX_STRING, TokenType.UNICODE_STRING,
    TokenType.HEREDOC_STRING, TokenType.NATIONAL_RAW_STRING,
})  # fmt: skip
# Keywords that begin or carry a write, a session change or a second statement. None of them
# can come from a validated tree; SET and REPLACE also occur in harmless SQL (CHARACTER SET,
# REPLACE()), which then takes the slow path.
_UNSAFE_TOKENS = frozenset({
    TokenType.SEMICOLON, TokenType.INSERT, TokenType.UPDATE, TokenType.DELETE, TokenType.MERGE,
    TokenType.INTO, TokenType.CREATE, TokenType.DROP, TokenType.ALTER, TokenType.TRUNCATE,
    TokenType.COPY, TokenType.COMMAND, TokenType.COMMIT, TokenType.ROLLBACK, TokenType.EXECUTE,
    TokenType.PRAGMA, TokenType.GRANT, TokenType.REVOKE, TokenType.ATTACH, TokenType.DETACH,
    TokenType.USE, TokenType.SHOW, TokenType.DESCRIBE, TokenType.LOCK, TokenType.RETURNING,
    TokenType.SET, TokenType.REPLACE,
})  # fmt: skip


# Clause keywords and the nodes that write them: their counts must agree, so a rendering whose
# clauses fall apart differently (``1 . FROM`` written as ``1.FROM``) is noticed. Functions
# that write such a keyword inside (EXTRACT(x FROM y), WITH ORDINALITY ...) take the slow path.
_CLAUSES: dict[TokenType, type[exp.Expr]] = {
    TokenType.SELECT: exp.Select, TokenType.FROM: exp.From, TokenType.WHERE: exp.Where,
    TokenType.HAVING: exp.Having, TokenType.UNION: exp.Union,
    TokenType.INTERSECT: exp.Intersect, TokenType.EXCEPT: exp.Except, TokenType.WITH: exp.With,
}  # fmt: skip
_CLAUSE_NODES = tuple(_CLAUSES.values())


@dataclass(frozen=True, slots=True)
class Quoted:
    """What of a tree must come back, exactly, when the text rendered from it is tokenized:
    its string literals, quoted names and numbers, and how many of each clause it has (one
    multiset of ``(kind, value)`` pairs)."""

    parts: Counter[tuple[str, object]]

    @classmethod
    def of(cls, tree: exp.Expr) -> Quoted:
        parts: Counter[tuple[str, object]] = Counter()
        for node in tree.walk():
            if isinstance(node, exp.Identifier):
                if node.quoted:
                    parts["name", str(node.this)] += 1
            elif isinstance(node, exp.Literal):
                parts["string" if node.is_string else "number", str(node.this)] += 1
            elif isinstance(node, _STRING_NODES):
                parts["string", str(node.this)] += 1
            elif isinstance(node, _CLAUSE_NODES):
                parts["clause", type(node)] += 1
        return cls(parts)


def faithful(text: str, dialect: str, quoted: Quoted) -> bool:
    """A cheap, sound check that ``text`` is the statement the tree was rendered from: one
    statement, no comment, no write or session keyword, the same clauses, and every string
    literal, quoted name and number exactly those of the tree — so no value broke out of its
    quotes and no clause moved. ``False`` means "not proven" (JSON paths and some literals are
    rendered from nodes that are not literals), and the caller then parses the text back."""
    parts: Counter[tuple[str, object]] = Counter()
    for token in analysis_dialect(dialect).tokenize(text):
        kind = token.token_type
        if token.comments or kind in _UNSAFE_TOKENS:
            return False
        if kind in _STRING_TOKENS:
            parts["string", token.text] += 1
        elif kind == TokenType.IDENTIFIER:
            parts["name", token.text] += 1
        elif kind == TokenType.NUMBER:
            parts["number", token.text] += 1
        elif kind in _CLAUSES:
            parts["clause", _CLAUSES[kind]] += 1
    return parts == quoted.parts
