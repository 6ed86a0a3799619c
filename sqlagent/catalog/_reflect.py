"""Reflect a :class:`Catalog` from a live database through SQLAlchemy's inspector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sqlagent.catalog._model import Catalog, Column, ForeignKey, Table
from sqlagent.errors import CatalogError

__all__ = ["reflect_catalog"]


def _type_name(coltype: Any, engine: Engine) -> str:
    try:
        return str(coltype.compile(dialect=engine.dialect))
    except Exception:  # exotic or NullType: the name is informational only
        return type(coltype).__name__.upper()


def _true_name(name: str, engine: Engine) -> str:
    # SQLAlchemy reports case-insensitive Oracle names in lower case; the database spells them
    # in upper case, which is what identifier matching must see.
    dialect = engine.dialect
    if getattr(dialect, "requires_name_normalize", False):
        return str(dialect.denormalize_name(name))
    return name


def _read_only_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files are opened read-only and must exist.

    A plain ``sqlite:///typo.db`` would silently create an empty database: reflection must never
    write, so a missing file is an error and an existing one is opened with ``mode=ro``.
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise CatalogError(f"not a database URL: {url!r}") from exc
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed)
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return sa.create_engine(parsed)
    path = Path(database)
    if not path.is_file():
        raise CatalogError(f"SQLite database file not found: {path}")
    ro = parsed.set(database=f"file:{path.resolve()}?mode=ro", query={"uri": "true"})
    return sa.create_engine(ro)


def reflect_catalog(
    engine: Engine | str, *, schema: str | None = None, include_views: bool = True
) -> Catalog:
    """Read tables (and views), columns, primary and foreign keys and comments.

    Accepts an Engine or a database URL. Raises :class:`CatalogError` when the database cannot
    be reached or read.
    """
    owned = isinstance(engine, str)
    eng = _read_only_engine(engine) if isinstance(engine, str) else engine
    try:
        insp = sa.inspect(eng)
        names = [(n, False) for n in insp.get_table_names(schema=schema)]
        if include_views:
            names += [(n, True) for n in insp.get_view_names(schema=schema)]
        tables = []
        for name, is_view in sorted(names):
            pk = set(insp.get_pk_constraint(name, schema=schema).get("constrained_columns") or [])
            cols = tuple(
                Column(
                    name=_true_name(c["name"], eng),
                    type=_type_name(c["type"], eng),
                    nullable=bool(c.get("nullable", True)),
                    primary_key=c["name"] in pk,
                    comment=c.get("comment"),
                )
                for c in insp.get_columns(name, schema=schema)
            )
            fks = tuple(
                ForeignKey(
                    columns=tuple(_true_name(c, eng) for c in fk["constrained_columns"]),
                    ref_table=_true_name(fk["referred_table"], eng),
                    ref_columns=tuple(_true_name(c, eng) for c in fk["referred_columns"]),
                )
                for fk in ([] if is_view else insp.get_foreign_keys(name, schema=schema))
            )
            try:
                comment = insp.get_table_comment(name, schema=schema).get("text")
            except NotImplementedError:
                comment = None
            tables.append(Table(_true_name(name, eng), cols, schema, comment, fks, is_view=is_view))
        return Catalog(tuple(tables))
    except sa.exc.SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        raise CatalogError(f"cannot reflect the database catalog: {cause}") from exc
    finally:
        if owned:
            eng.dispose()
