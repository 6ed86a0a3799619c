"""Sample values on real SQLite files: what is sampled, what never is, and what a failure costs."""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from pathlib import Path

import pytest

from sqlagent.catalog import (
    Catalog,
    SampleOptions,
    all_columns,
    is_text_type,
    reflect_catalog,
    sample_values,
)
from sqlagent.errors import ConfigError
from sqlagent.execution import ExecutionResult, ReadOnlyExecutor
from sqlagent.safety import Access, Policy

SHOP = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,          -- unique per row: too many distinct values to sample
    tier VARCHAR(10) NOT NULL,   -- low cardinality, granted in clear
    region TEXT,                 -- low cardinality with NULLs, granted in clear
    risk TEXT NOT NULL,          -- low cardinality, granted only masked
    secret TEXT NOT NULL,        -- low cardinality, not granted at all
    score INTEGER NOT NULL       -- low cardinality, but not text
);
CREATE TABLE internal (code TEXT NOT NULL);  -- low cardinality, table not granted
"""

POLICY = """
default_role: support
roles:
  support:
    tables:
      customers: [id, name, tier, region, score]
    masked:
      customers: [risk]
  admin:
    tables:
      "*": ["*"]
"""

TIERS = ("gold", "silver", "bronze")


def _shop(path: Path, rows: int = 60) -> Path:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SHOP)
        conn.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    i,
                    f"customer {i}",
                    TIERS[i % 3],
                    None if i % 4 == 0 else ("north", "south")[i % 2],
                    ("high", "low")[i % 2],
                    ("s1", "s2")[i % 2],
                    i % 5,
                )
                for i in range(1, rows + 1)
            ],
        )
        conn.executemany("INSERT INTO internal VALUES (?)", [("x1",), ("x2",)])
        conn.commit()
    finally:
        conn.close()
    return path


@pytest.fixture
def shop(tmp_path: Path) -> str:
    return f"sqlite:///{_shop(tmp_path / 'shop.sqlite')}"


def _samples(catalog: Catalog) -> dict[tuple[str, str], tuple[str, ...]]:
    return {(t.name, c.name): c.samples for t in catalog for c in t.columns if c.samples}


class RecordingExecutor:
    """The real read-only executor, keeping every statement it was asked to run."""

    def __init__(self, url: str) -> None:
        self.inner = ReadOnlyExecutor(url)
        self.statements: list[str] = []

    @property
    def dialect(self) -> str:
        return self.inner.dialect

    def run(self, sql: str) -> ExecutionResult:
        self.statements.append(sql)
        return self.inner.run(sql)

    def close(self) -> None:
        self.inner.close()


def test_low_cardinality_text_columns_get_sorted_samples(shop: str) -> None:
    catalog = reflect_catalog(shop)
    sampled = sample_values(shop, catalog, all_columns(catalog))
    assert _samples(sampled) == {
        ("customers", "tier"): ("bronze", "gold", "silver"),
        ("customers", "region"): ("north", "south"),
        ("customers", "risk"): ("high", "low"),
        ("customers", "secret"): ("s1", "s2"),
        ("internal", "code"): ("x1", "x2"),
    }  # not name (60 distinct values), not score (an INTEGER)
    assert sampled.table_names == catalog.table_names


def test_masked_and_denied_columns_are_never_sampled_nor_queried(shop: str) -> None:
    catalog = reflect_catalog(shop)
    policy = Policy.from_text(POLICY)
    access = policy.access("support", catalog, "sqlite")
    assert ("customers", "risk") in access.masked
    assert "risk" in access.visible["customers"]

    # Even a catalog that already carries samples everywhere (the admin's) must not leak them.
    everything = sample_values(shop, catalog, policy.access("admin", catalog, "sqlite"))
    assert ("customers", "risk") in _samples(everything)

    executor = RecordingExecutor(shop)
    try:
        sampled = sample_values(executor, everything, access)
    finally:
        executor.close()
    assert _samples(sampled) == {
        ("customers", "tier"): ("bronze", "gold", "silver"),
        ("customers", "region"): ("north", "south"),
    }
    assert sampled.table_names == ("customers",)  # the role's view: "internal" is not granted
    customers = sampled.table("customers")
    assert customers is not None
    assert customers.column_names == ("id", "name", "tier", "region", "risk", "score")
    assert customers.column("risk").samples == ()  # type: ignore[union-attr]
    queried = " ".join(executor.statements)
    assert len(executor.statements) == 3  # name, tier, region: the clear text columns
    for never in ("risk", "secret", "internal", "code"):
        assert never not in queried


def test_nothing_runs_when_no_column_qualifies(shop: str) -> None:
    catalog = reflect_catalog(shop)
    nothing = Access(
        role="r", visible={"customers": frozenset({"id", "score"})}, masked=frozenset()
    )
    masked_only = Access(
        role="r",
        visible={"customers": frozenset({"tier"})},
        masked=frozenset({("customers", "tier")}),
    )
    masked_in_other_case = Access(
        role="r",
        visible={"customers": frozenset({"tier"})},
        masked=frozenset({("Customers", "TIER")}),
    )
    for grants in (nothing, masked_only, masked_in_other_case):
        # An executor that would fail if it were ever used.
        assert _samples(sample_values("not a url", catalog, grants)) == {}
    off = SampleOptions(max_values=0)
    assert _samples(sample_values("not a url", catalog, all_columns(catalog), options=off)) == {}


@pytest.mark.slow
def test_a_failing_column_is_skipped_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "odd.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript(
        """
        CREATE TABLE big (n INTEGER, label TEXT, raw TEXT);
        WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 1000)
            INSERT INTO big SELECT x, 'l' || (x % 3), CAST(x % 2 AS BLOB) FROM c;
        UPDATE big SET raw = X'00FF' WHERE n = 1;
        -- a billion-row join that never finds a row: only the time limit stops it
        CREATE VIEW slow AS SELECT a.label FROM big a, big b, big c WHERE a.n + b.n + c.n < 0;
        """
    )
    conn.commit()
    conn.close()
    url = f"sqlite:///{db}"
    catalog = reflect_catalog(url)
    with caplog.at_level(logging.WARNING, logger="sqlagent.catalog"):
        sampled = sample_values(
            url, catalog, all_columns(catalog), options=SampleOptions(timeout_s=0.3)
        )
    assert _samples(sampled) == {("big", "label"): ("l0", "l1", "l2")}
    assert "'slow'.'label': QueryTimeoutError" in caplog.text
    assert "'big'.'raw': TypeError" in caplog.text  # a blob stored in a TEXT column


def test_values_are_cut_cleaned_and_the_most_frequent_kept(tmp_path: Path) -> None:
    db = tmp_path / "v.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (v TEXT)")
    values = ["b"] * 5 + ["a"] * 4 + ["line\nbreak"] * 9 + ["   "] * 9 + ["x" * 100] * 3 + ["c"]
    conn.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
    conn.commit()
    conn.close()
    url = f"sqlite:///{db}"
    catalog = reflect_catalog(url)
    options = SampleOptions(max_values=3, max_length=10)
    sampled = sample_values(url, catalog, all_columns(catalog), options=options)
    # Most frequent usable values: b (5), a (4), the long one (3); "c" (1) is left out; a value
    # with a line break or only blanks is never shown.
    assert _samples(sampled) == {("t", "v"): ("a", "b", "x" * 9 + "\u2026")}


def test_the_scan_is_bounded(tmp_path: Path) -> None:
    db = tmp_path / "scan.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (v TEXT)")
    # 50 rows with two values, then 5000 distinct ones.
    conn.executemany("INSERT INTO t VALUES (?)", [(("p", "q")[i % 2],) for i in range(50)])
    conn.executemany("INSERT INTO t VALUES (?)", [(f"v{i}",) for i in range(5000)])
    conn.commit()
    conn.close()
    url = f"sqlite:///{db}"
    catalog = reflect_catalog(url)
    grants = all_columns(catalog)
    assert _samples(sample_values(url, catalog, grants)) == {}  # 10 000 rows read: too many
    small = SampleOptions(scan_rows=50)
    assert _samples(sample_values(url, catalog, grants, options=small)) == {("t", "v"): ("p", "q")}


def test_the_budget_stops_sampling(shop: str, caplog: pytest.LogCaptureFixture) -> None:
    catalog = reflect_catalog(shop)
    with caplog.at_level(logging.WARNING, logger="sqlagent.catalog"):
        sampled = sample_values(
            shop, catalog, all_columns(catalog), options=SampleOptions(budget_s=1e-9)
        )
    assert _samples(sampled) == {}
    assert "budget" in caplog.text


def test_an_executor_without_a_dialect_needs_one(shop: str) -> None:
    catalog = reflect_catalog(shop)

    class Bare:
        def __init__(self) -> None:
            self.inner = ReadOnlyExecutor(shop)

        def run(self, sql: str) -> ExecutionResult:
            return self.inner.run(sql)

        def close(self) -> None:
            self.inner.close()

    bare = Bare()
    try:
        with pytest.raises(ConfigError, match="dialect"):
            sample_values(bare, catalog, all_columns(catalog))
        sampled = sample_values(bare, catalog, all_columns(catalog), dialect="sqlite")
    finally:
        bare.close()
    assert ("customers", "tier") in _samples(sampled)


@pytest.mark.parametrize(
    "bad",
    [
        {"max_values": -1},
        {"max_distinct": 0},
        {"scan_rows": 0},
        {"max_length": 3},
        {"timeout_s": 0},
        {"budget_s": -1.0},
        {"max_values": True},
        {"scan_rows": 1.5},
    ],
)
def test_bad_options_are_configuration_errors(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        SampleOptions(**bad)  # type: ignore[arg-type]


def test_options_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SampleOptions().max_values = 9  # type: ignore[misc]


@pytest.mark.parametrize(
    ("type_name", "text"),
    [
        ("TEXT", True),
        ("VARCHAR(20)", True),
        ("CHARACTER VARYING(20)", True),
        ("CHAR(2) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", True),
        ("NVARCHAR2(10 CHAR)", True),
        ("VARCHAR2(30 BYTE)", True),
        ("ENUM('a','b')", True),
        ("LONGTEXT", True),
        ("varchar(5)", True),
        ("CLOB", False),
        ("NCLOB", False),
        ("VARBINARY(16)", False),
        ("BYTEA", False),
        ("VARCHAR(10)[]", False),
        ("INTEGER", False),
        ("NUMBER(10, 0)", False),
        ("DATE", False),
        ("JSON", False),
        ("UUID", False),
        ("", False),
        ("NULLTYPE", False),
    ],
)
def test_text_types(type_name: str, text: bool) -> None:
    assert is_text_type(type_name) is text
