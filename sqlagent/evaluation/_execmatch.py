"""Execution match: run a gold and a predicted query on a SQLite database and compare results.

Two comparison modes:

``compat="spider"`` reproduces the official Spider evaluator's execution verdicts
(taoyds/test-suite-sql-eval ``exec_eval.eval_exec_match`` with ``plug_value=False,
keep_distinct=False``, one database per item) item for item. ``compat="strict"`` (the default)
is sqlagent's stricter comparison. How they differ:

=====================  =====================================  =====================================
Rule                   spider                                 strict
=====================  =====================================  =====================================
Query rewriting        '> =', '< =', '! =' closed; every      none: queries run as written
                       DISTINCT token dropped (both sides);
                       YEAR(CURDATE()) -> 2020
Several statements     the first runs, the rest is ignored    an error (prediction fails)
Row order matters if   'order by' occurs anywhere in the      the gold has a top-level ORDER BY
                       gold text (substring test)             (parsed with sqlglot)
Duplicate rows         bag (multiset) comparison              bag (multiset) comparison
Column order           any column permutation accepted        positional: columns must line up
Numbers                Python equality: 1 == 1.0, but         1 == 1.0; floats equal within
                       0.1 + 0.2 != 0.3                       rel/abs tolerance 1e-6
NULL                   NULL == NULL                           NULL == NULL
BLOB vs text           BLOB != text                           BLOB decoded as UTF-8, then compared
Invalid UTF-8 text     bad bytes dropped                      bad bytes replaced by U+FFFD
Both results empty     match (column counts not compared)     match
Gold fails             no match (the official script          no match
                       stops on an assertion)
Gold sanity flags      gold_failed, gold_empty                gold_failed, gold_empty,
                                                              limit_without_order_by,
                                                              ties_under_order_by
=====================  =====================================  =====================================

``ties_under_order_by`` is computed by running the gold once more without its LIMIT and with its
ORDER BY keys appended as extra columns: it is set when the key of the last row kept by the LIMIT
equals the key of the first row cut, or when two adjacent returned rows share a key but differ
(their relative order is then up to SQLite). It is only attempted for a plain SELECT with an
ORDER BY, explicit projections, no DISTINCT and a literal LIMIT without OFFSET.

Guarantees: databases are opened read-only (``mode=ro`` URI plus ``PRAGMA query_only``); each
query is interrupted by SQLite's progress handler once it runs past ``timeout_s``; the column
permutation search (spider) stops at the item's deadline; results come back in input order.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlagent.evaluation._execmatch_compare import (
    ComparisonTimeout,
    Row,
    has_limit,
    has_order_by,
    has_ties,
    parse_top,
    spider_prepare,
    spider_result_eq,
    strict_result_eq,
    tie_probe,
)

__all__ = ["ExecItem", "ExecVerdict", "exec_match", "exec_match_many"]

Compat = Literal["strict", "spider"]
_PROGRESS_STEPS = 1000  # SQLite VM instructions between deadline checks


@dataclass(frozen=True, slots=True)
class ExecItem:
    """One prediction to score: its position, database file, gold and predicted SQL."""

    index: int
    db_path: str
    gold: str
    predicted: str


@dataclass(frozen=True, slots=True)
class ExecVerdict:
    """The outcome for one :class:`ExecItem`; ``match`` is False whenever either side failed."""

    index: int
    match: bool
    pred_error: str | None
    gold_error: str | None
    gold_rows: int | None
    pred_rows: int | None
    gold_flags: tuple[str, ...]
    elapsed_ms: float


@dataclass(frozen=True, slots=True)
class _Gold:
    rows: list[Row] | None
    error: str | None
    order_matters: bool
    flags: tuple[str, ...]


def _decode_ignore(raw: bytes) -> str:
    return raw.decode(errors="ignore")


def _decode_replace(raw: bytes) -> str:
    return raw.decode(errors="replace")


def _connect(db_path: str, compat: Compat) -> sqlite3.Connection:
    uri = Path(db_path).resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    conn.execute("PRAGMA query_only = 1")
    conn.text_factory = _decode_ignore if compat == "spider" else _decode_replace
    return conn


class _Runner:
    """Runs queries on one connection, each under its own deadline."""

    def __init__(self, conn: sqlite3.Connection, timeout_s: float) -> None:
        self.conn = conn
        self.timeout_s = timeout_s
        self._deadline = math.inf
        conn.set_progress_handler(self._check, _PROGRESS_STEPS)

    def _check(self) -> int:
        return 1 if time.monotonic() > self._deadline else 0

    def run(self, sql: str) -> tuple[list[Row] | None, str | None]:
        self._deadline = time.monotonic() + self.timeout_s
        try:
            with closing(self.conn.cursor()) as cur:
                cur.execute(sql)
                rows: list[Row] = cur.fetchall()
        except (sqlite3.Error, ValueError, OverflowError, MemoryError) as exc:
            if time.monotonic() > self._deadline:
                return None, f"timed out after {self.timeout_s:g} s"
            return None, f"{type(exc).__name__}: {exc}"
        finally:
            self._deadline = math.inf
            if self.conn.in_transaction:
                self.conn.rollback()
        return rows, None


def _gold_spider(runner: _Runner, gold: str) -> _Gold:
    try:
        sql = spider_prepare(gold)
    except ValueError as exc:
        return _Gold(None, str(exc), False, ("gold_failed",))
    rows, error = runner.run(sql)
    flags = ("gold_failed",) if rows is None else ("gold_empty",) if not rows else ()
    return _Gold(rows, error, "order by" in sql.lower(), flags)


def _gold_strict(runner: _Runner, gold: str) -> _Gold:
    rows, error = runner.run(gold)
    tree = parse_top(gold)
    ordered = has_order_by(tree)
    flags: list[str] = []
    if rows is None:
        flags.append("gold_failed")
    elif not rows:
        flags.append("gold_empty")
    if has_limit(tree) and not ordered:
        flags.append("limit_without_order_by")
    probe = tie_probe(tree) if rows else None
    if probe is not None:
        sql, width, limit = probe
        probe_rows, _ = runner.run(sql)
        if probe_rows is not None and has_ties(probe_rows, width, limit):
            flags.append("ties_under_order_by")
    return _Gold(rows, error, ordered, tuple(flags))


def _score(
    item: ExecItem,
    runner: _Runner,
    compat: Compat,
    gold_cache: dict[str, _Gold],
) -> ExecVerdict:
    start = time.monotonic()
    gold = gold_cache.get(item.gold)
    if gold is None:
        gold = (_gold_spider if compat == "spider" else _gold_strict)(runner, item.gold)
        gold_cache[item.gold] = gold
    pred_rows: list[Row] | None
    if compat == "spider":
        try:
            pred_rows, pred_error = runner.run(spider_prepare(item.predicted))
        except ValueError as exc:
            pred_rows, pred_error = None, str(exc)
    else:
        pred_rows, pred_error = runner.run(item.predicted)
    match = False
    if gold.rows is not None and pred_rows is not None:
        if compat == "spider":
            deadline = time.monotonic() + runner.timeout_s
            try:
                match = spider_result_eq(gold.rows, pred_rows, gold.order_matters, deadline)
            except ComparisonTimeout:
                pred_error = f"comparison timed out after {runner.timeout_s:g} s"
        else:
            match = strict_result_eq(gold.rows, pred_rows, gold.order_matters)
    return ExecVerdict(
        index=item.index,
        match=match,
        pred_error=pred_error,
        gold_error=gold.error,
        gold_rows=None if gold.rows is None else len(gold.rows),
        pred_rows=None if pred_rows is None else len(pred_rows),
        gold_flags=gold.flags,
        elapsed_ms=(time.monotonic() - start) * 1000.0,
    )


def _open_failed(item: ExecItem, message: str) -> ExecVerdict:
    return ExecVerdict(item.index, False, message, message, None, None, ("gold_failed",), 0.0)


def _score_chunk(items: Sequence[ExecItem], compat: Compat, timeout_s: float) -> list[ExecVerdict]:
    """Score items that share one database, on one connection, caching gold results."""
    if not items:
        return []
    try:
        conn = _connect(items[0].db_path, compat)
    except sqlite3.Error as exc:
        message = f"cannot open {items[0].db_path}: {exc}"
        return [_open_failed(item, message) for item in items]
    with closing(conn):
        runner = _Runner(conn, timeout_s)
        cache: dict[str, _Gold] = {}
        return [_score(item, runner, compat, cache) for item in items]


def exec_match(
    item: ExecItem, *, compat: Compat = "strict", timeout_s: float = 30.0
) -> ExecVerdict:
    """Score one item in this process (see the module docstring for the rules)."""
    return _score_chunk([item], compat, timeout_s)[0]


def _chunks(items: Sequence[ExecItem], workers: int) -> list[list[int]]:
    """Input positions, grouped by database and cut into pieces, biggest first."""
    by_db: dict[str, list[int]] = defaultdict(list)
    for pos, item in enumerate(items):
        by_db[item.db_path].append(pos)
    size = max(8, math.ceil(len(items) / (workers * 6)))
    chunks = [group[i : i + size] for group in by_db.values() for i in range(0, len(group), size)]
    chunks.sort(key=len, reverse=True)
    return chunks


@contextmanager
def _progress_bar(total: int, enabled: bool) -> Iterator[Callable[[int], None]]:
    if not enabled:
        yield lambda _n: None
        return
    from rich.progress import Progress  # imported only when a bar is wanted

    with Progress(transient=False) as progress:
        task = progress.add_task("scoring", total=total)
        yield lambda n: progress.advance(task, n)


def _pool_context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


def exec_match_many(
    items: Sequence[ExecItem],
    *,
    compat: Compat = "strict",
    workers: int | None = None,
    timeout_s: float = 30.0,
    progress: bool = False,
) -> list[ExecVerdict]:
    """Score many items over a process pool; verdicts come back in input order.

    Items are grouped by database so that each task opens one read-only connection and runs
    each distinct gold query once. ``workers=1`` (or a single task) runs in this process.
    """
    n_workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
    chunks = _chunks(items, n_workers)
    out: list[ExecVerdict | None] = [None] * len(items)
    with _progress_bar(len(items), progress) as advance:
        if n_workers == 1 or len(chunks) <= 1:
            for chunk in chunks:
                done = _score_chunk([items[p] for p in chunk], compat, timeout_s)
                for pos, verdict in zip(chunk, done, strict=True):
                    out[pos] = verdict
                advance(len(chunk))
        else:
            with ProcessPoolExecutor(n_workers, mp_context=_pool_context()) as pool:
                futures = {
                    pool.submit(_score_chunk, [items[p] for p in c], compat, timeout_s): c
                    for c in chunks
                }
                for future in as_completed(futures):
                    chunk = futures[future]
                    for pos, verdict in zip(chunk, future.result(), strict=True):
                        out[pos] = verdict
                    advance(len(chunk))
    return [v for v in out if v is not None]
