"""Execution match rules, on small real SQLite files (see sqlagent/evaluation/_execmatch.py)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from sqlagent.evaluation._execmatch import ExecItem, ExecVerdict, exec_match, exec_match_many
from sqlagent.evaluation._execmatch_compare import spider_prepare, spider_result_eq

RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c"


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "t.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE t (id INTEGER, name TEXT, score REAL, tag TEXT, data BLOB);
            INSERT INTO t VALUES (1, 'a', 1.0, 'x', X'6162'), (2, 'b', 2.5, NULL, NULL),
                                 (3, 'c', 2.5, 'x', NULL), (4, 'a', 0.1, NULL, NULL);
            CREATE TABLE e (id INTEGER);
            """
        )
    conn.close()
    return str(path)


def check(db: str, gold: str, pred: str, compat: str = "strict", **kw: float) -> ExecVerdict:
    item = ExecItem(0, db, gold, pred)
    return exec_match(item, compat=compat, **kw)  # type: ignore[arg-type]


BOTH = pytest.mark.parametrize("compat", ["strict", "spider"])


@BOTH
def test_same_query_matches(db: str, compat: str) -> None:
    v = check(db, "SELECT id, name FROM t", "SELECT id, name FROM t", compat)
    assert v.match
    assert (v.gold_rows, v.pred_rows, v.pred_error, v.gold_error) == (4, 4, None, None)


@BOTH
def test_row_order_ignored_without_order_by(db: str, compat: str) -> None:
    assert check(db, "SELECT id FROM t", "SELECT id FROM t ORDER BY id DESC", compat).match


@BOTH
def test_row_order_matters_with_gold_order_by(db: str, compat: str) -> None:
    gold = "SELECT id FROM t ORDER BY id"
    assert not check(db, gold, "SELECT id FROM t ORDER BY id DESC", compat).match
    assert check(db, gold, "SELECT id FROM t", compat).match  # rowid order happens to agree


def test_strict_order_by_must_be_top_level(db: str) -> None:
    # 'order by' only inside a subquery: spider treats the order as significant, strict not.
    gold = "SELECT id FROM t WHERE id IN (SELECT id FROM t ORDER BY id LIMIT 10) ORDER BY 1 DESC"
    assert check(db, gold, "SELECT id FROM t ORDER BY id DESC").match
    sub = "SELECT id FROM t WHERE id IN (SELECT id FROM t ORDER BY id LIMIT 10)"
    reversed_ = "SELECT id FROM t ORDER BY id DESC"
    assert check(db, sub, reversed_, "strict").match
    assert not check(db, sub, reversed_, "spider").match


@BOTH
def test_duplicates_count(db: str, compat: str) -> None:
    assert not check(db, "SELECT name FROM t", "SELECT DISTINCT name FROM t", "strict").match
    assert check(db, "SELECT name FROM t", "SELECT DISTINCT name FROM t", "spider").match
    assert not check(db, "SELECT name FROM t", "SELECT name FROM t WHERE id < 4", compat).match


@BOTH
def test_bag_not_set(db: str, compat: str) -> None:
    gold = "SELECT 1 UNION ALL SELECT 1 UNION ALL SELECT 2"
    pred = "SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 2"
    assert not check(db, gold, pred, compat).match


def test_distinct_dropped_in_spider_mode_only(db: str) -> None:
    assert spider_prepare("SELECT DISTINCT name FROM t") == "SELECT  name FROM t"
    assert spider_prepare("SELECT count(distinct(name)) FROM t") == "SELECT count((name)) FROM t"
    assert spider_prepare("SELECT 'distinct' FROM t") == "SELECT 'distinct' FROM t"
    assert spider_prepare("SELECT x FROM t WHERE a > = 1") == "SELECT x FROM t WHERE a >= 1"
    assert spider_prepare("SELECT 1; DROP TABLE t") == "SELECT 1;"
    gold, pred = "SELECT count(DISTINCT name) FROM t", "SELECT count(name) FROM t"
    assert check(db, gold, pred, "spider").match
    assert not check(db, gold, pred, "strict").match


def test_floats_within_tolerance_in_strict(db: str) -> None:
    assert check(db, "SELECT 0.3", "SELECT 0.1 + 0.2").match
    assert not check(db, "SELECT 0.3", "SELECT 0.1 + 0.2", "spider").match
    assert not check(db, "SELECT 0.3", "SELECT 0.31").match
    assert check(db, "SELECT score FROM t", "SELECT score * (1 + 1e-9) FROM t").match


@BOTH
def test_int_equals_float(db: str, compat: str) -> None:
    assert check(db, "SELECT 1", "SELECT 1.0", compat).match


@BOTH
def test_nulls_equal_nulls(db: str, compat: str) -> None:
    assert check(db, "SELECT tag FROM t", "SELECT tag FROM t ORDER BY tag", compat).match
    assert not check(db, "SELECT tag FROM t", "SELECT coalesce(tag, '') FROM t", compat).match


def test_column_order(db: str) -> None:
    gold, pred = "SELECT id, name FROM t", "SELECT name, id FROM t"
    assert not check(db, gold, pred, "strict").match
    assert check(db, gold, pred, "spider").match


def test_column_permutation_with_many_columns_spider() -> None:
    r1 = [(1, 2, 3, 4, 5), (6, 7, 8, 9, 10)]
    r2 = [(5, 4, 3, 2, 1), (10, 9, 8, 7, 6)]
    assert spider_result_eq(r1, r2, order_matters=True)
    assert not spider_result_eq(r1, [(5, 4, 3, 2, 1), (10, 9, 8, 6, 7)], order_matters=False)


def test_bytes_vs_text(db: str) -> None:
    assert check(db, "SELECT data FROM t WHERE id = 1", "SELECT 'ab'").match
    assert not check(db, "SELECT data FROM t WHERE id = 1", "SELECT 'ab'", "spider").match


@BOTH
def test_prediction_error(db: str, compat: str) -> None:
    v = check(db, "SELECT id FROM t", "SELECT nope FROM t", compat)
    assert not v.match
    assert v.pred_error is not None
    assert "nope" in v.pred_error
    assert v.pred_rows is None


@BOTH
def test_gold_error_and_empty_flags(db: str, compat: str) -> None:
    v = check(db, "SELECT nope FROM t", "SELECT 1", compat)
    assert (v.match, v.gold_flags, v.gold_rows) == (False, ("gold_failed",), None)
    assert v.gold_error is not None
    v = check(db, "SELECT id FROM e", "SELECT id FROM e", compat)
    assert v.match
    assert v.gold_flags == ("gold_empty",)


def test_limit_without_order_by_flag(db: str) -> None:
    assert "limit_without_order_by" in check(db, "SELECT id FROM t LIMIT 2", "SELECT 1").gold_flags
    flags = check(db, "SELECT id FROM t ORDER BY id LIMIT 2", "SELECT 1").gold_flags
    assert flags == ()


def test_ties_under_order_by_flag(db: str) -> None:
    # score 2.5 is shared by ids 2 and 3: LIMIT 1 cuts between them
    flags = check(db, "SELECT id FROM t ORDER BY score DESC LIMIT 1", "SELECT 2").gold_flags
    assert "ties_under_order_by" in flags
    # ...and without LIMIT their relative order is up to SQLite
    flags = check(db, "SELECT id FROM t ORDER BY score", "SELECT 2").gold_flags
    assert "ties_under_order_by" in flags
    # no tie: ids are unique; equal keys with equal rows are harmless
    assert check(db, "SELECT id FROM t ORDER BY id LIMIT 1", "SELECT 1").gold_flags == ()
    assert check(db, "SELECT score FROM t ORDER BY score", "SELECT 1").gold_flags == ()


@BOTH
@pytest.mark.slow
def test_runaway_query_stops_within_timeout(db: str, compat: str) -> None:
    start = time.monotonic()
    v = check(db, "SELECT 1", RUNAWAY, compat, timeout_s=0.5)
    assert time.monotonic() - start < 3.0
    assert not v.match
    assert v.pred_error is not None
    assert "timed out" in v.pred_error


@pytest.mark.slow
def test_runaway_gold_stops_too(db: str) -> None:
    start = time.monotonic()
    v = check(db, RUNAWAY, "SELECT 1", timeout_s=0.5)
    assert time.monotonic() - start < 3.0
    assert v.gold_flags[0] == "gold_failed"


@pytest.mark.parametrize(
    "write",
    [
        "DELETE FROM t",
        "INSERT INTO t (id) VALUES (9)",
        "DROP TABLE t",
        "UPDATE t SET id = 0",
        "CREATE TABLE z (a)",
    ],
)
@BOTH
def test_read_only(db: str, compat: str, write: str) -> None:
    v = check(db, "SELECT count(*) FROM t", write, compat)
    assert not v.match
    assert v.pred_error is not None
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (4,)
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert names == {"t", "e"}


def test_missing_database(tmp_path: Path) -> None:
    v = exec_match(ExecItem(0, str(tmp_path / "absent.sqlite"), "SELECT 1", "SELECT 1"))
    assert not v.match
    assert v.gold_flags == ("gold_failed",)
    assert not (tmp_path / "absent.sqlite").exists()


def test_empty_prediction(db: str) -> None:
    for compat in ("strict", "spider"):
        v = check(db, "SELECT id FROM t", "", compat)
        assert not v.match


@pytest.mark.slow
def test_many_keeps_input_order_over_a_pool(tmp_path: Path, db: str) -> None:
    other = tmp_path / "o.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (id INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(50)])
    conn.close()
    items = []
    for i in range(60):
        path = db if i % 3 else str(other)
        pred = "SELECT 1" if i % 4 == 0 else "SELECT count(*) FROM t"
        items.append(ExecItem(100 - i, path, "SELECT count(*) FROM t", pred))
    for compat in ("strict", "spider"):
        verdicts = exec_match_many(items, compat=compat, workers=2)
        assert [v.index for v in verdicts] == [it.index for it in items]
        assert [v.match for v in verdicts] == [i % 4 != 0 for i in range(60)]
        assert [v.gold_rows for v in verdicts] == [1] * 60
        serial = exec_match_many(items, compat=compat, workers=1)
        assert [v.match for v in serial] == [v.match for v in verdicts]


def test_many_progress_and_empty(db: str) -> None:
    assert exec_match_many([]) == []
    items = [ExecItem(i, db, "SELECT id FROM t", "SELECT id FROM t") for i in range(3)]
    assert all(v.match for v in exec_match_many(items, progress=True, workers=1))


def test_several_statements(db: str) -> None:
    gold, pred = "SELECT id FROM t", "SELECT id FROM t; SELECT 1"
    assert check(db, gold, pred, "spider").match  # only the first statement runs
    v = check(db, gold, pred, "strict")
    assert not v.match
    assert v.pred_error is not None
