"""Step 4: the row cap, injected in the dialect's own syntax (LIMIT or FETCH FIRST)."""

from __future__ import annotations

from sqlglot import exp

__all__ = ["apply_row_cap", "drop_mysql_dual"]


def _int(node: exp.Expr | None) -> int | None:
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return int(node.this)
        except ValueError:
            return None
    return None


def apply_row_cap(tree: exp.Expr, max_rows: int) -> exp.Expr:
    """Return ``tree`` limited to at most ``max_rows`` rows.

    An existing literal LIMIT/FETCH keeps the smaller of the two. Anything the cap cannot be
    merged into safely (a computed limit, FETCH ... PERCENT or WITH TIES) is wrapped as
    ``SELECT * FROM (<query>) AS capped LIMIT n``. The generator renders the limit per dialect
    (``FETCH FIRST n ROWS ONLY`` on Oracle).
    """
    if not isinstance(tree, exp.Query):
        return tree
    limit = tree.args.get("limit")
    if limit is None:
        return tree.limit(max_rows, copy=False)
    if isinstance(limit, exp.Limit) and not limit.args.get("offset"):
        current = _int(limit.expression)
        if current is not None:
            limit.set("expression", exp.Literal.number(min(current, max_rows)))
            return tree
    if isinstance(limit, exp.Fetch):
        options = limit.args.get("limit_options")
        plain = options is None or not (
            options.args.get("percent") or options.args.get("with_ties")
        )
        count = limit.args.get("count")
        current = 1 if count is None else _int(count)
        if plain and current is not None:
            limit.set("count", exp.Literal.number(min(current, max_rows)))
            return tree
    wrapped = exp.select("*").from_(tree.subquery("capped", copy=False))
    return wrapped.limit(max_rows, copy=False)


def drop_mysql_dual(tree: exp.Expr) -> exp.Expr:
    """Remove ``FROM DUAL`` (a no-op in MySQL) from every SELECT.

    sqlglot's MySQL generator quotes the reserved word (`` `DUAL` ``), which MySQL then reads as
    a real table name; dropping the clause keeps the statement's meaning and makes it runnable.
    """
    for select in tree.find_all(exp.Select):
        from_ = select.args.get("from_")
        if (
            from_ is not None
            and isinstance(from_.this, exp.Table)
            and from_.this.name.lower() == "dual"
            and not from_.this.args.get("db")
            and not from_.this.alias
            and not select.args.get("joins")
        ):
            select.set("from_", None)
    return tree
