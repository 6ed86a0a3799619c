"""The catalog: what tables and columns really exist, as plain frozen values.

Names are stored exactly as the database spells them. How a query's identifiers are matched
against them depends on the SQL dialect and lives in :mod:`sqlagent.safety` — the catalog itself
is dialect-free so one catalog can serve validation, retrieval and prompts.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlagent.errors import CatalogError

__all__ = ["Catalog", "Column", "ForeignKey", "Table"]


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str = ""
    nullable: bool = True
    primary_key: bool = False
    comment: str | None = None
    # A few distinct values of a low-cardinality text column, for prompts; filled in only for
    # columns a role may read unmasked (see sqlagent.catalog.sample_values), never by reflection.
    samples: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ForeignKey:
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    schema: str | None = None
    comment: str | None = None
    foreign_keys: tuple[ForeignKey, ...] = ()
    is_view: bool = False

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column | None:
        for col in self.columns:
            if col.name == name:
                return col
        return None


@dataclass(frozen=True, slots=True)
class Catalog:
    """An immutable set of tables. Table names are unique within a catalog."""

    tables: tuple[Table, ...] = ()
    _by_name: dict[str, Table] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        by_name: dict[str, Table] = {}
        for table in self.tables:
            if table.name in by_name:
                raise CatalogError(f"duplicate table {table.name!r} in catalog")
            by_name[table.name] = table
        object.__setattr__(self, "_by_name", by_name)

    def __iter__(self) -> Iterator[Table]:
        return iter(self.tables)

    def __len__(self) -> int:
        return len(self.tables)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def table_names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def table(self, name: str) -> Table | None:
        return self._by_name.get(name)

    def restricted(
        self,
        visible: Mapping[str, Iterable[str]],
        *,
        masked: Iterable[tuple[str, str]] = (),
    ) -> Catalog:
        """A catalog with only ``visible`` tables and, in each, only the listed columns;
        ``masked`` ``(table, column)`` pairs keep their names but lose their sample values."""
        hidden_values = set(masked)
        tables = []
        for table in self.tables:
            if table.name not in visible:
                continue
            keep = set(visible[table.name])
            columns = tuple(
                dataclasses.replace(c, samples=())
                if c.samples and (table.name, c.name) in hidden_values
                else c
                for c in table.columns
                if c.name in keep
            )
            fks = tuple(
                fk
                for fk in table.foreign_keys
                if set(fk.columns) <= keep
                and fk.ref_table in visible
                and set(fk.ref_columns) <= set(visible[fk.ref_table])
            )
            tables.append(
                Table(table.name, columns, table.schema, table.comment, fks, table.is_view)
            )
        return Catalog(tuple(tables))

    def to_mapping(self) -> dict[str, dict[str, str]]:
        """``{"table": {"column": "type"}}``, the JSON schema-file format."""
        return {t.name: {c.name: c.type for c in t.columns} for t in self.tables}

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> Catalog:
        """Build from ``{"table": {"column": "type"}}`` (a list of column names also works)."""
        if not isinstance(mapping, Mapping):
            raise CatalogError('a schema must be a JSON object: {"table": {"column": "type"}}')
        tables = []
        for tname, cols in mapping.items():
            if not isinstance(tname, str) or not tname:
                raise CatalogError(f"table names must be non-empty strings, got {tname!r}")
            if isinstance(cols, Mapping):
                items = list(cols.items())
            elif isinstance(cols, list):
                items = [(c, "") for c in cols]
            else:
                raise CatalogError(
                    f'table {tname!r}: columns must be an object {{"column": "type"}}'
                )
            columns = []
            for cname, ctype in items:
                if not isinstance(cname, str) or not cname:
                    raise CatalogError(f"table {tname!r}: column names must be non-empty strings")
                if not isinstance(ctype, str):
                    raise CatalogError(f"table {tname!r}, column {cname!r}: type must be a string")
                columns.append(Column(cname, ctype))
            tables.append(Table(tname, tuple(columns)))
        return cls(tuple(tables))

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> Catalog:
        """Read a JSON schema file ``{"table": {"column": "type"}}``."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise CatalogError(f"schema file not found: {p}") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CatalogError(f"cannot read schema file {p}: {exc}") from exc
        return cls.from_mapping(data)
