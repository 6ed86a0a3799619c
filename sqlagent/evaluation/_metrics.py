"""Per-item metrics and their aggregation.

* :func:`spider_hardness` ports Spider's ``eval_hardness`` (taoyds/test-suite-sql-eval,
  ``evaluation.py``: ``count_component1``, ``count_component2``, ``count_others``), quirks kept,
  so that difficulty buckets match the official tool's.
* :func:`exact_set_match` compares sqlglot-normalised clause sets (see eval/README.md).
* :func:`hallucinated_identifiers` names the tables/columns a guard verdict found unknown.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from sqlagent.types import Verdict, ViolationCode

__all__ = [
    "exact_set_match",
    "gold_tables",
    "hallucinated_identifiers",
    "percentile",
    "spider_hardness",
    "summarize",
]

HARDNESS_LEVELS = ("easy", "medium", "hard", "extra")
_LIKE = 9  # WHERE_OPS.index("like") in Spider's process_sql


# -- Spider hardness -------------------------------------------------------------------------------
def _has_agg(unit: Any) -> bool:
    return bool(unit[0] != 0)  # Spider checks unit[0] whatever the unit is (its quirk, kept)


def _count_agg(units: Iterable[Any]) -> int:
    return sum(1 for u in units if _has_agg(u))


def _nested(sql: Mapping[str, Any]) -> list[Any]:
    nested = []
    for cond in sql["from"]["conds"][::2] + sql["where"][::2] + sql["having"][::2]:
        if isinstance(cond[3], dict):
            nested.append(cond[3])
        if isinstance(cond[4], dict):
            nested.append(cond[4])
    nested += [sql[k] for k in ("intersect", "except", "union") if sql.get(k) is not None]
    return nested


def _component1(sql: Mapping[str, Any]) -> int:
    count = sum(1 for k in ("where", "groupBy", "orderBy") if len(sql[k]) > 0)
    count += sql["limit"] is not None
    if len(sql["from"]["table_units"]) > 0:
        count += len(sql["from"]["table_units"]) - 1
    ao = sql["from"]["conds"][1::2] + sql["where"][1::2] + sql["having"][1::2]
    count += sum(1 for token in ao if token == "or")
    conds = sql["from"]["conds"][::2] + sql["where"][::2] + sql["having"][::2]
    count += sum(1 for cond in conds if cond[1] == _LIKE)
    return int(count)


def _others(sql: Mapping[str, Any]) -> int:
    agg = _count_agg(sql["select"][1]) + _count_agg(sql["where"][::2])
    agg += _count_agg(sql["groupBy"])
    if len(sql["orderBy"]) > 0:
        units = sql["orderBy"][1]
        agg += _count_agg([u[1] for u in units if u[1]] + [u[2] for u in units if u[2]])
    agg += _count_agg(sql["having"])
    count = int(agg > 1)
    count += len(sql["select"][1]) > 1
    count += len(sql["where"]) > 1
    count += len(sql["groupBy"]) > 1
    return count


def spider_hardness(sql: Mapping[str, Any]) -> str:
    """Spider's difficulty of a parsed query (the ``sql`` field of its questions files)."""
    c1, c2, others = _component1(sql), len(_nested(sql)), _others(sql)
    if c1 <= 1 and others == 0 and c2 == 0:
        return "easy"
    if (others <= 2 and c1 <= 1 and c2 == 0) or (c1 <= 2 and others < 2 and c2 == 0):
        return "medium"
    if (
        (others > 2 and c1 <= 2 and c2 == 0)
        or (2 < c1 <= 3 and others <= 2 and c2 == 0)
        or (c1 <= 1 and others == 0 and c2 <= 1)
    ):
        return "hard"
    return "extra"


# -- exact-set match -------------------------------------------------------------------------------
def _parse(sql: str) -> exp.Expr | None:
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except (SqlglotError, ValueError):
        return None
    return tree


def _norm(node: exp.Expr) -> str:
    """Lower-case identifiers and keywords; keep string literals as written."""
    node = node.copy()
    for ident in node.find_all(exp.Identifier):
        ident.set("this", ident.name.lower())
        ident.set("quoted", False)
    return node.sql(dialect="sqlite", normalize=True)


def _aliases(select: exp.Select) -> dict[str, str]:
    """Table alias -> table name, so ``T1.name`` and ``singer.name`` compare equal. With one
    table only, every qualifier maps to ``""``: ``singer.name`` then equals ``name``."""
    tables = list(select.find_all(exp.Table))
    out = {}
    for table in tables:
        name = table.name.lower()
        target = "" if len({t.name.lower() for t in tables}) == 1 else name
        out[name] = target
        if table.alias:
            out[table.alias.lower()] = target
    return out


def _unalias(node: exp.Expr, aliases: Mapping[str, str]) -> exp.Expr:
    node = node.copy()
    if isinstance(node, exp.Alias):
        node = node.this
    for col in node.find_all(exp.Column):
        if col.table and col.table.lower() in aliases:
            target = aliases[col.table.lower()]
            col.set("table", exp.to_identifier(target) if target else None)
    for eq in node.find_all(exp.EQ, exp.NEQ):  # a = b and b = a are one condition
        if eq.left.sql().lower() > eq.right.sql().lower():
            left, right = eq.left, eq.right
            eq.set("this", right)
            eq.set("expression", left)
    return node


def _conjuncts(node: exp.Expr | None) -> list[exp.Expr]:
    if node is None:
        return []
    if isinstance(node, exp.And):
        return _conjuncts(node.left) + _conjuncts(node.right)
    if isinstance(node, exp.Paren):
        return _conjuncts(node.this)
    return [node]


def _signature(tree: exp.Expr) -> tuple[Any, ...]:
    if isinstance(tree, exp.SetOperation):
        return (type(tree).__name__, _signature(tree.left), _signature(tree.right))
    if not isinstance(tree, exp.Select):
        return ("other", _norm(tree))
    al = _aliases(tree)

    def many(nodes: Iterable[exp.Expr]) -> frozenset[str]:
        return frozenset(_norm(_unalias(n, al)) for n in nodes)

    tables = frozenset(t.name.lower() for t in tree.find_all(exp.Table))
    joins = [j.args.get("on") for j in tree.args.get("joins") or []]
    where = tree.args.get("where")
    having = tree.args.get("having")
    group = tree.args.get("group")
    order = tree.args.get("order")
    limit = tree.args.get("limit")
    return (
        bool(tree.args.get("distinct")),
        many(tree.expressions),
        tables,
        many(c for j in joins for c in _conjuncts(j)),
        many(_conjuncts(where.this if where else None)),
        many(group.expressions if group else []),
        many(_conjuncts(having.this if having else None)),
        tuple(_norm(_unalias(o, al)) for o in (order.expressions if order else [])),
        _norm(limit) if limit else None,
    )


def exact_set_match(predicted: str | None, gold: str) -> bool | None:
    """Whether two queries have the same clause sets after sqlglot normalisation.

    ``None`` when the gold does not parse; ``False`` when the prediction does not.
    """
    g = _parse(gold)
    if g is None:
        return None
    p = _parse(predicted) if predicted else None
    if p is None:
        return False
    try:
        return _signature(p) == _signature(g)
    except (SqlglotError, ValueError, AttributeError):
        return False


def gold_tables(sql: str) -> frozenset[str]:
    """The (lower-case) table names a query reads, CTE names excluded."""
    tree = _parse(sql)
    if tree is None:
        return frozenset()
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    return frozenset(t.name.lower() for t in tree.find_all(exp.Table)) - ctes


# -- hallucinations --------------------------------------------------------------------------------
_NAMED = re.compile(r"^(?:Table or alias|Table|Column) (\S+?)[ .,:]")
_IN_TABLE = re.compile(r" in table (\S+?)\.$")


def hallucinated_identifiers(verdict: Verdict | None) -> list[str]:
    """The unknown tables and columns a verdict names (``table.column`` where it says which)."""
    if verdict is None:
        return []
    names = []
    for v in verdict.violations:
        if v.code not in (ViolationCode.UNKNOWN_TABLE, ViolationCode.UNKNOWN_COLUMN):
            continue
        m = _NAMED.match(v.message)
        name = m.group(1) if m else v.message
        t = _IN_TABLE.search(v.message)
        names.append(f"{t.group(1)}.{name}" if t and "." not in name else name)
    return names


# -- aggregation -----------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return round(ordered[rank - 1], 3)


def _rate(items: Sequence[Mapping[str, Any]], key: str) -> float | None:
    values = [bool(i[key]) for i in items if i.get(key) is not None]
    return round(sum(values) / len(values), 4) if values else None


def _group(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "count": len(items),
        "exec_match": _rate(items, "exec_match"),
        "exec_match_strict": _rate(items, "exec_match_strict"),
        "exec_match_spider": _rate(items, "exec_match_spider"),
        "exact_match": _rate(items, "exact_match"),
        "valid": _rate(items, "valid"),
    }


def summarize(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``summary`` of results.json: overall, by difficulty, tag and database, and more."""
    by: dict[str, dict[str, list[Mapping[str, Any]]]] = {"hardness": {}, "tag": {}, "db_id": {}}
    for item in items:
        if item.get("hardness"):
            by["hardness"].setdefault(item["hardness"], []).append(item)
        for tag in item.get("tags") or ():
            by["tag"].setdefault(tag, []).append(item)
        by["db_id"].setdefault(item["db_id"], []).append(item)
    latencies = [i["latency_ms"] for i in items if i.get("latency_ms") is not None]
    tokens = [i["tokens"] for i in items if i.get("tokens") is not None]
    recalls = [i["table_recall"] for i in items if i.get("table_recall") is not None]
    categories: dict[str, int] = {}
    flags: dict[str, int] = {}
    for item in items:
        categories[item["category"]] = categories.get(item["category"], 0) + 1
        for flag in item.get("gold_flags") or ():
            flags[flag] = flags.get(flag, 0) + 1
    n = len(items)
    return {
        "overall": _group(items),
        "by_difficulty": {
            k: _group(by["hardness"][k]) for k in HARDNESS_LEVELS if k in by["hardness"]
        },
        "by_tag": {k: _group(v) for k, v in sorted(by["tag"].items())},
        "by_database": {k: _group(v) for k, v in sorted(by["db_id"].items())},
        "read_only_rejections": sum(1 for i in items if i.get("read_only_rejected")),
        "policy_rejections": sum(1 for i in items if i.get("policy_rejected")),
        "hallucination_rate": round(sum(1 for i in items if i["hallucinated"]) / n, 4)
        if n
        else None,
        "categories": dict(sorted(categories.items())),
        "gold_flags": dict(sorted(flags.items())),
        "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
        "tokens": {"total": sum(tokens), "mean": round(sum(tokens) / len(tokens), 1)}
        if tokens
        else None,
        "table_recall": round(sum(recalls) / len(recalls), 4) if recalls else None,
    }
