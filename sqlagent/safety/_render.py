"""Step 5: regenerate SQL from the validated tree, in the syntax of the engine that will run it.

MySQL and MariaDB share an analysis dialect (their name resolution is the same) but not all of
their syntax: sqlglot's MySQL generator writes ``REGEXP_LIKE(a, b)`` and ``a ->> '$.k'``, which
MariaDB does not have. For the ``mariadb`` target those nodes are first rewritten into forms both
servers run, with the same meaning (NULLs included): ``(REGEXP_INSTR(a, b) > 0)`` and
``JSON_UNQUOTE(JSON_EXTRACT(a, '$.k'))``; MariaDB's ``MEDIAN(x) OVER (...)`` stays as written.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError

__all__ = ["TARGETS", "render"]

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
