"""Result-set comparison for execution match: the Spider rules and sqlagent's strict rules.

The ``spider_*`` functions reimplement the semantics of the official Spider evaluator
(taoyds/test-suite-sql-eval, ``exec_eval.py``: ``postprocess``, ``remove_distinct``,
``result_eq`` with ``quick_rej``, ``get_constraint_permutation`` and ``multiset_eq``) so that
verdicts agree item for item. Credit for those semantics goes to its authors (Zhong, Yu and
Klein, "Semantic Evaluation for Text-to-SQL with Distilled Test Suites", EMNLP 2020); the code
here is written anew. Two deliberate, verdict-preserving changes: the column-permutation
constraint uses every predicted row instead of 20 random ones (the constraint is sound either
way, so only the amount of work differs, and the result becomes deterministic), and the
permutation search is a backtracking walk with a deadline instead of a full product.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import sqlglot
from sqlglot import exp

Row = tuple[Any, ...]

__all__: list[str] = []

_CUR_YEAR = re.compile(r"YEAR\s*\(\s*CURDATE\s*\(\s*\)\s*\)\s*", re.IGNORECASE)
# Quoted strings/identifiers and comments are copied verbatim; words are tested for DISTINCT;
# ';' ends the first statement (sqlparse.parse(s)[0] keeps only the first one).
_TOKEN = re.compile(
    r"""'(?:[^']|'')*'?|"(?:[^"]|"")*"?|`[^`]*`?|\[[^\]]*\]?|--[^\n]*|/\*.*?(?:\*/|\Z)"""
    r"""|[A-Za-z_\u0080-\uffff][\w$]*|;|[^'"`\[\-/;A-Za-z_\u0080-\uffff]+|.""",
    re.DOTALL,
)


class ComparisonTimeout(Exception):
    """The comparison itself ran past the item's deadline."""


def spider_prepare(sql: str) -> str:
    """The official evaluator's query rewriting, with ``keep_distinct=False``.

    ``'> ='``-style spacing is closed, every token spelled ``distinct`` (any case, outside quotes
    and comments) is dropped, only the first statement is kept, and ``YEAR(CURDATE())`` becomes
    ``2020``. Raises :class:`ValueError` for an empty statement (where sqlparse yields nothing).
    """
    sql = sql.replace("> =", ">=").replace("< =", "<=").replace("! =", "!=")
    if not sql:
        raise ValueError("empty query")
    out: list[str] = []
    for match in _TOKEN.finditer(sql):
        tok = match.group(0)
        if tok == ";":
            out.append(tok)
            break
        if tok.lower() != "distinct":
            out.append(tok)
    return _CUR_YEAR.sub("2020", "".join(out))


def _unorder_row(row: Row) -> Row:
    return tuple(sorted(row, key=lambda x: str(x) + str(type(x))))


def _quick_rej(r1: Sequence[Row], r2: Sequence[Row], order_matters: bool) -> bool:
    s1 = [_unorder_row(row) for row in r1]
    s2 = [_unorder_row(row) for row in r2]
    if order_matters:
        return s1 == s2
    return set(s1) == set(s2)


def _permutations(
    r1: Sequence[Row], r2: Sequence[Row], num_cols: int, deadline: float
) -> Iterator[tuple[int, ...]]:
    """Bijections ``perm`` (result1 column i <- result2 column perm[i]) allowed by the values."""
    col_sets = [{row[i] for row in r1} for i in range(num_cols)]
    allowed = [
        [j for j in range(num_cols) if all(row[j] in col_sets[i] for row in r2)]
        for i in range(num_cols)
    ]
    chosen: list[int] = []
    used: set[int] = set()
    steps = 0

    def walk(i: int) -> Iterator[tuple[int, ...]]:
        nonlocal steps
        if i == num_cols:
            yield tuple(chosen)
            return
        for j in allowed[i]:
            steps += 1
            if steps % 1024 == 0 and time.monotonic() > deadline:
                raise ComparisonTimeout
            if j in used:
                continue
            chosen.append(j)
            used.add(j)
            yield from walk(i + 1)
            chosen.pop()
            used.discard(j)

    return walk(0)


def spider_result_eq(
    r1: Sequence[Row], r2: Sequence[Row], order_matters: bool, deadline: float = math.inf
) -> bool:
    """Spider's denotation equality: same bag (or list) of rows under some column permutation."""
    if not r1 and not r2:
        return True
    if len(r1) != len(r2):
        return False
    num_cols = len(r1[0])
    if len(r2[0]) != num_cols:
        return False
    if not _quick_rej(r1, r2, order_matters):
        return False
    list1 = list(r1)
    counts1 = Counter(r1)
    for perm in _permutations(r1, r2, num_cols, deadline):
        r2p = list(r2) if num_cols == 1 else [tuple(row[i] for i in perm) for row in r2]
        if order_matters:
            if list1 == r2p:
                return True
        elif Counter(r2p) == counts1:
            return True
    return False


# --- strict -------------------------------------------------------------------------------


def _norm(value: Any) -> Any:
    """A hashable canonical form: BLOBs as text, integral floats as ints."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _close(a: Any, b: Any, rel_tol: float, abs_tol: float) -> bool:
    if a == b:
        return True
    numeric = (int, float)
    if isinstance(a, numeric) and isinstance(b, numeric) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol)
    return False


def _rows_close(x: Row, y: Row, rel_tol: float, abs_tol: float) -> bool:
    return all(_close(a, b, rel_tol, abs_tol) for a, b in zip(x, y, strict=True))


def _sort_key(row: Row) -> tuple[tuple[int, Any], ...]:
    key: list[tuple[int, Any]] = []
    for v in row:
        if v is None:
            key.append((0, 0))
        elif isinstance(v, (int, float)):
            key.append((1, float(f"{float(v):.9g}")))
        else:
            key.append((2, str(v)))
    return tuple(key)


def strict_result_eq(
    gold: Sequence[Row],
    pred: Sequence[Row],
    order_matters: bool,
    rel_tol: float = 1e-6,
    abs_tol: float = 1e-6,
) -> bool:
    """Positional columns, bag (or ordered list) of rows, floats within tolerance."""
    if len(gold) != len(pred):
        return False
    if not gold:
        return True
    if len(gold[0]) != len(pred[0]):
        return False
    g = [tuple(_norm(v) for v in row) for row in gold]
    p = [tuple(_norm(v) for v in row) for row in pred]
    if order_matters:
        return all(_rows_close(a, b, rel_tol, abs_tol) for a, b in zip(g, p, strict=True))
    if Counter(g) == Counter(p):
        return True
    if not any(isinstance(v, float) for row in g for v in row):
        return False
    g.sort(key=_sort_key)
    p.sort(key=_sort_key)
    return all(_rows_close(a, b, rel_tol, abs_tol) for a, b in zip(g, p, strict=True))


# --- gold analysis (strict) -----------------------------------------------------------------


def parse_top(sql: str) -> exp.Expression | None:
    """The top-level statement as parsed by sqlglot (SQLite dialect), or None."""
    try:
        parsed = sqlglot.parse(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return None
    statements = [s for s in parsed if isinstance(s, exp.Expression)]
    return statements[0] if len(statements) == 1 else None


def has_order_by(tree: exp.Expression | None) -> bool:
    return tree is not None and tree.args.get("order") is not None


def has_limit(tree: exp.Expression | None) -> bool:
    return tree is not None and tree.args.get("limit") is not None


def tie_probe(tree: exp.Expression | None) -> tuple[str, int, int | None] | None:
    """A query returning the gold's projections plus its ORDER BY keys, without LIMIT.

    Returns ``(sql, number_of_projections, limit)`` or None when the gold is not a plain
    ordered SELECT (no ORDER BY, DISTINCT, a set operation, a ``*`` projection, or a LIMIT that
    is not a literal): for those no tie check is attempted.
    """
    if not isinstance(tree, exp.Select) or not has_order_by(tree) or tree.args.get("distinct"):
        return None
    if any(isinstance(p, exp.Star) or p.is_star for p in tree.expressions):
        return None
    limit: int | None = None
    probe = tree.copy()
    limit_node = probe.args.get("limit")
    if limit_node is not None:
        value = limit_node.expression
        if not isinstance(value, exp.Literal) or not value.is_int or probe.args.get("offset"):
            return None
        limit = int(value.this)
        probe.set("limit", None)
    keys = [o.this.copy() for o in probe.args["order"].expressions]
    probe = probe.select(*keys, append=True, copy=False)
    return probe.sql(dialect="sqlite"), len(tree.expressions), limit


def has_ties(rows: Sequence[Row], width: int, limit: int | None) -> bool:
    """Equal ORDER BY keys across the LIMIT cut, or between returned rows that differ."""
    shown = rows if limit is None else rows[:limit]
    for a, b in itertools.pairwise(shown):
        if a[width:] == b[width:] and a[:width] != b[:width]:
            return True
    if limit is not None and 0 < limit < len(rows):
        return rows[limit - 1][width:] == rows[limit][width:]
    return False
