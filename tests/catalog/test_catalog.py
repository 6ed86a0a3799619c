"""Catalogs from schema files and from real databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sqlagent import Catalog, CatalogError, reflect_catalog


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
