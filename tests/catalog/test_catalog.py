"""Catalogs from schema files and from real databases."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest

from sqlagent import Catalog, CatalogError, Column, ForeignKey, Table, reflect_catalog


def test_from_mapping_and_json(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"t": {"a": "INT", "b": "TEXT"}, "u": ["x"]}))
    catalog = Catalog.from_json(path)
    assert catalog.table_names == ("t", "u")
    assert catalog.table("t").column_names == ("a", "b")  # type: ignore[union-attr]
    assert catalog.to_mapping() == {"t": {"a": "INT", "b": "TEXT"}, "u": {"x": ""}}


@pytest.mark.parametrize(
    "content",
    ["[]", '{"t": 3}', '{"t": {"a": 1}}', '{"": {"a": "INT"}}', "{not json"],
)
def test_bad_schema_files_raise_catalog_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(content)
    with pytest.raises(CatalogError):
        Catalog.from_json(path)


def test_missing_schema_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not found"):
        Catalog.from_json(tmp_path / "nope.json")


def test_reflect_demo_database(demo_db: Path) -> None:
    catalog = reflect_catalog(f"sqlite:///{demo_db}")
    assert set(catalog.table_names) >= {"employees", "departments", "projects", "payroll"}
    employees = catalog.table("employees")
    assert employees is not None
    assert "salary" in employees.column_names
    assert employees.column("id").primary_key  # type: ignore[union-attr]
    refs = {(fk.columns, fk.ref_table) for fk in employees.foreign_keys}
    assert (("department_id",), "departments") in refs


def test_reflection_never_creates_a_sqlite_file(tmp_path: Path) -> None:
    target = tmp_path / "typo.sqlite"
    with pytest.raises(CatalogError, match="not found"):
        reflect_catalog(f"sqlite:///{target}")
    assert not target.exists()


def test_restricted_catalog_drops_foreign_keys_to_hidden_columns(demo_db: Path) -> None:
    catalog = reflect_catalog(f"sqlite:///{demo_db}")
    restricted = catalog.restricted({"employees": ["id", "department_id"]})
    assert restricted.table_names == ("employees",)
    employees = restricted.table("employees")
    assert employees is not None
    assert employees.column_names == ("id", "department_id")
    assert not employees.foreign_keys  # departments is not visible


def _sqlite_file(path: Path, script: str) -> Path:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(script)
        conn.commit()
    finally:
        conn.close()
    return path


def test_reflect_sqlite_views_keys_and_types(tmp_path: Path) -> None:
    db = _sqlite_file(
        tmp_path / "shop.sqlite",
        """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(80) NOT NULL, tier TEXT);
        CREATE TABLE orders (
            customer_id INTEGER NOT NULL REFERENCES customers (id),
            line INTEGER NOT NULL,
            total NUMERIC(10, 2),
            PRIMARY KEY (customer_id, line)
        );
        CREATE TABLE "Order Notes" (
            customer_id INTEGER, line INTEGER, "Note Text" TEXT,
            FOREIGN KEY (customer_id, line) REFERENCES orders (customer_id, line)
        );
        CREATE VIEW big_orders AS SELECT customer_id, total FROM orders WHERE total > 100;
        """,
    )
    catalog = reflect_catalog(f"sqlite:///{db}")
    assert catalog.table_names == ("Order Notes", "big_orders", "customers", "orders")

    customers = catalog.table("customers")
    assert customers is not None
    assert not customers.is_view
    assert [(c.name, c.type, c.nullable, c.primary_key) for c in customers.columns] == [
        ("id", "INTEGER", True, True),  # SQLite reports INTEGER PRIMARY KEY as nullable
        ("name", "VARCHAR(80)", False, False),
        ("tier", "TEXT", True, False),
    ]
    assert customers.comment is None
    assert all(c.comment is None for c in customers.columns)

    orders = catalog.table("orders")
    assert orders is not None
    assert [c.name for c in orders.columns if c.primary_key] == ["customer_id", "line"]
    assert orders.foreign_keys == (ForeignKey(("customer_id",), "customers", ("id",)),)
    assert orders.column("total").type == "NUMERIC(10, 2)"  # type: ignore[union-attr]

    notes = catalog.table("Order Notes")
    assert notes is not None
    assert notes.column_names == ("customer_id", "line", "Note Text")
    assert notes.foreign_keys == (
        ForeignKey(("customer_id", "line"), "orders", ("customer_id", "line")),
    )

    view = catalog.table("big_orders")
    assert view is not None
    assert view.is_view
    assert view.column_names == ("customer_id", "total")
    assert not view.foreign_keys
    assert "big_orders" not in reflect_catalog(f"sqlite:///{db}", include_views=False)


def test_a_broken_view_is_skipped_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = _sqlite_file(
        tmp_path / "broken.sqlite",
        """
        CREATE TABLE kept (id INTEGER PRIMARY KEY);
        CREATE TABLE gone (x INTEGER);
        CREATE VIEW fine AS SELECT id FROM kept;
        CREATE VIEW broken AS SELECT x FROM gone;
        DROP TABLE gone;
        """,
    )
    with caplog.at_level(logging.WARNING, logger="sqlagent.catalog"):
        catalog = reflect_catalog(f"sqlite:///{db}")
    assert catalog.table_names == ("fine", "kept")
    assert "skipping view 'broken'" in caplog.text


def test_reflect_with_a_schema_names_it_on_every_table(tmp_path: Path) -> None:
    db = _sqlite_file(
        tmp_path / "s.sqlite",
        "CREATE TABLE t (id INTEGER PRIMARY KEY); CREATE TABLE u (t_id INTEGER REFERENCES t (id));",
    )
    catalog = reflect_catalog(f"sqlite:///{db}", schema="main")
    assert [(t.name, t.schema) for t in catalog] == [("t", "main"), ("u", "main")]
    assert catalog.table("u").foreign_keys == (ForeignKey(("t_id",), "t", ("id",)),)  # type: ignore[union-attr]


def test_reflection_does_not_write(tmp_path: Path) -> None:
    db = _sqlite_file(tmp_path / "ro.sqlite", "CREATE TABLE t (id INTEGER PRIMARY KEY);")
    before = db.read_bytes()
    reflect_catalog(f"sqlite:///{db}")
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ro.sqlite"]  # no journal or WAL


def test_restricted_strips_samples_of_masked_columns() -> None:
    table = Table(
        "t", (Column("a", "TEXT", samples=("x",)), Column("b", "TEXT", samples=("secret",)))
    )
    view = Catalog((table,)).restricted({"t": ["a", "b"]}, masked=[("t", "b")])
    restricted = view.table("t")
    assert restricted is not None
    assert [c.samples for c in restricted.columns] == [("x",), ()]
