"""Spider hardness, exact-set match, hallucination listing and the summary, on crafted items."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sqlagent import Guard, reflect_catalog
from sqlagent.evaluation import (
    exact_set_match,
    gold_tables,
    hallucinated_identifiers,
    percentile,
    spider_hardness,
    summarize,
)
from tests.conftest import SPIDER
from tests.evaluation.conftest import needs_spider


@needs_spider
def test_hardness_of_known_spider_items() -> None:
    dev = json.loads((SPIDER / "dev.json").read_text(encoding="utf-8"))
    known = {0: "easy", 2: "medium", 10: "medium", 25: "extra", 60: "extra"}
    assert {i: spider_hardness(dev[i]["sql"]) for i in known} == known
    # the official evaluator's published split of Spider dev
    counts = Counter(spider_hardness(e["sql"]) for e in dev)
    assert counts == {"easy": 248, "medium": 446, "hard": 174, "extra": 166}


def _sql(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "from": {"table_units": [["table_unit", 0]], "conds": []},
        "select": [False, [[0, [0, [0, 1, False], None]]]],
        "where": [],
        "groupBy": [],
        "having": [],
        "orderBy": [],
        "limit": None,
        "intersect": None,
        "union": None,
        "except": None,
    }
    return {**base, **over}


def test_hardness_on_crafted_parses() -> None:
    assert spider_hardness(_sql()) == "easy"
    nested = _sql(where=[[False, 2, [0, [0, 1, False], None], _sql(), None]])
    assert spider_hardness(nested) == "hard"
    assert spider_hardness(_sql(union=_sql(), limit=1, orderBy=["asc", []])) == "extra"


@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [
        ("SELECT a, b FROM t WHERE x = 1 AND y = 2", "select B, A from T where y=2 and x=1", True),
        ("SELECT T1.name FROM singer AS T1", "SELECT singer.name FROM singer", True),
        ("SELECT name FROM singer", "SELECT singer.name FROM singer AS s", True),
        (
            "SELECT name FROM a JOIN b ON a.x = b.y",
            "SELECT T1.name FROM a AS T1 JOIN b AS T2 ON T1.x = T2.y",
            False,
        ),
        (
            "SELECT T2.n FROM a AS T1 JOIN b AS T2 ON T1.x = T2.y",
            "SELECT b.n FROM b JOIN a ON b.y = a.x",
            True,
        ),
        ("SELECT a FROM t WHERE x = 'A'", "SELECT a FROM t WHERE x = 'a'", False),
        ("SELECT a FROM t ORDER BY a, b", "SELECT a FROM t ORDER BY b, a", False),
        ("SELECT DISTINCT a FROM t", "SELECT a FROM t", False),
        ("SELECT a FROM t LIMIT 1", "SELECT a FROM t LIMIT 2", False),
        ("SELECT a FROM t UNION SELECT b FROM u", "SELECT a FROM t UNION SELECT b FROM u", True),
        ("SELEC a FROM", "SELECT a FROM t", False),
        (None, "SELECT a FROM t", False),
        ("SELECT 1", "SELEC (", None),
    ],
)
def test_exact_set_match(pred: str | None, gold: str, expected: bool | None) -> None:
    assert exact_set_match(pred, gold) is expected


def test_gold_tables_skip_ctes() -> None:
    sql = "WITH x AS (SELECT * FROM Employees) SELECT * FROM x JOIN departments d ON 1=1"
    assert gold_tables(sql) == {"employees", "departments"}
    assert gold_tables("not sql (") == frozenset()


def test_hallucinations_are_named(demo_db: Path) -> None:
    guard = Guard(catalog=reflect_catalog(f"sqlite:///{demo_db}"))
    verdict = guard.check("SELECT e.wage, e.first_name FROM employees e JOIN offices o ON 1=1")
    names = hallucinated_identifiers(verdict)
    assert "offices" in names
    ok = guard.check("SELECT first_name FROM employees")
    assert hallucinated_identifiers(ok) == []
    assert hallucinated_identifiers(None) == []
    assert hallucinated_identifiers(guard.check("SELECT wage FROM employees")) == ["wage"]
    qualified = guard.check("SELECT e.wage FROM employees AS e")
    assert hallucinated_identifiers(qualified) in (["employees.wage"], ["e.wage"])
    alias = guard.check("SELECT x.a FROM employees")
    assert hallucinated_identifiers(alias) == ["x"]


def test_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0


def _item(n: int, **over: Any) -> dict[str, Any]:
    base = {
        "index": n,
        "db_id": "a" if n % 2 else "b",
        "exec_match": True,
        "exec_match_strict": True,
        "exec_match_spider": True,
        "exact_match": False,
        "valid": True,
        "hallucinated": [],
        "category": "correct",
        "hardness": "easy",
        "tags": ["t"],
        "gold_flags": [],
        "latency_ms": float(n),
        "tokens": 10,
        "table_recall": 1.0,
    }
    return {**base, **over}


def test_summary_on_crafted_items() -> None:
    items = [
        _item(0),
        _item(1, exec_match=False, exec_match_strict=False, category="wrong_result"),
        _item(2, hallucinated=["x"], valid=False, exec_match=False, category="hallucination"),
        _item(3, exec_match=None, category="gold_failed", gold_flags=["gold_failed"]),
        _item(4, hardness="extra", read_only_rejected=True, tags=[], table_recall=0.5),
    ]
    s = summarize(items)
    assert s["overall"]["count"] == 5
    assert s["overall"]["exec_match"] == 0.5  # 2 of the 4 with a usable gold
    assert s["overall"]["valid"] == 0.8
    assert s["by_difficulty"]["extra"]["count"] == 1
    assert list(s["by_difficulty"]) == ["easy", "extra"]
    assert s["by_tag"]["t"]["count"] == 4
    assert s["by_database"]["a"]["count"] == 2
    assert s["hallucination_rate"] == 0.2
    assert s["read_only_rejections"] == 1
    assert s["gold_flags"] == {"gold_failed": 1}
    assert s["categories"]["correct"] == 2
    assert s["latency_ms"] == {"p50": 2.0, "p95": 4.0}
    assert s["tokens"] == {"total": 50, "mean": 10.0}
    assert s["table_recall"] == 0.9
