"""Zero false rejections on Spider dev: all 1034 gold queries, grounded in their own databases.

The rewritten SQL is also executed and compared with the gold query's own results, in
single-user mode (the statement is regenerated from the tree) and under an all-access policy
(the qualified, star-expanded rewrite runs instead): validation must never change an answer.
Skips cleanly when ../shared/data/spider-dev is absent.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from contextlib import closing
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from sqlagent import Guard, Policy, reflect_catalog
from tests.conftest import SPIDER

pytestmark = [
    pytest.mark.spider,
    pytest.mark.skipif(not (SPIDER / "dev.json").exists(), reason="no ../shared/data/spider-dev"),
]

ADMIN = Policy.from_mapping({"default_role": "admin", "roles": {"admin": {"tables": {"*": ["*"]}}}})


def _db(db_id: str) -> Path:
    return SPIDER / "database" / db_id / f"{db_id}.sqlite"


@cache
def _guards(db_id: str) -> tuple[Guard, Guard]:
    catalog = reflect_catalog(f"sqlite:///{_db(db_id)}")
    return Guard(catalog=catalog), Guard(catalog=catalog, policy=ADMIN)


def _items() -> list[dict[str, Any]]:
    if not (SPIDER / "dev.json").exists():
        return []
    items: list[dict[str, Any]] = json.loads((SPIDER / "dev.json").read_text())
    return items


def _run(db_id: str, sql: str) -> list[tuple[Any, ...]]:
    uri = f"file:{_db(db_id)}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        conn.text_factory = lambda b: b.decode(errors="replace")
        return conn.execute(sql).fetchall()


@pytest.mark.slow
def test_all_gold_queries_are_allowed_and_keep_their_results() -> None:
    items = _items()
    assert len(items) == 1034
    rejected: list[str] = []
    changed: list[str] = []
    for i, item in enumerate(items):
        gold_rows = None
        for mode, guard in zip(("single-user", "policy"), _guards(item["db_id"]), strict=True):
            verdict = guard.check(item["query"])
            if not verdict.allowed:
                rejected.append(f"#{i} [{mode}] {item['query']} -> {verdict.summary()}")
                continue
            assert verdict.sql is not None
            if gold_rows is None:
                gold_rows = _run(item["db_id"], item["query"])
            got = _run(item["db_id"], verdict.sql)
            ordered = "order by" in item["query"].lower()
            same = got == gold_rows if ordered else Counter(got) == Counter(gold_rows)
            if not same:
                changed.append(f"#{i} [{mode}] {item['query']} -> {verdict.sql}")
    assert not rejected, "\n".join(rejected[:20])
    assert not changed, "\n".join(changed[:20])
