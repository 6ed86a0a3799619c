"""Reflect a :class:`Catalog` from a live database through SQLAlchemy's inspector.

Reflection uses SQLAlchemy 2's batched ``get_multi_*`` calls, which the PostgreSQL, Oracle and
(through a loop) SQLite and MySQL dialects all implement: a few catalog queries per schema
instead of several per table, which matters on large Oracle schemas.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.engine.reflection import Inspector, ObjectKind

from sqlagent.catalog._model import Catalog, Column, ForeignKey, Table
from sqlagent.dialects import database_url, sqlite_file
from sqlagent.errors import CatalogError

__all__ = ["reflect_catalog"]

_log = logging.getLogger("sqlagent.catalog")

_VIEWS = ObjectKind.VIEW | ObjectKind.MATERIALIZED_VIEW


def _type_name(coltype: Any, dialect: Dialect) -> str:
    try:
        return str(coltype.compile(dialect=dialect))
    except Exception:  # exotic or NullType: the name is informational only
        return type(coltype).__name__.upper()


def _true_name(name: str, dialect: Dialect) -> str:
    # SQLAlchemy reports case-insensitive Oracle names in lower case; the database spells them
    # in upper case, which is what identifier matching must see.
    if getattr(dialect, "requires_name_normalize", False):
        return str(dialect.denormalize_name(name))
    return str(name)


def _read_only_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files are opened read-only and must exist.

    A plain ``sqlite:///typo.db`` would silently create an empty database: reflection must never
    write, so a missing file is an error and an existing one is opened with ``mode=ro``.
    """
    parsed = database_url(url, error=CatalogError)
    try:
        if parsed.get_backend_name() != "sqlite":
            return sa.create_engine(parsed)
    except (ImportError, sa.exc.NoSuchModuleError) as exc:
        raise CatalogError(
            f"the database driver for {parsed.drivername!r} is not installed: {exc}"
        ) from exc
    database = sqlite_file(parsed)
    if database is None:  # in memory, or a file: URI (its own mode= applies)
        return sa.create_engine(parsed)
    path = Path(database)
    if not path.is_file():
        raise CatalogError(f"SQLite database file not found: {path}")
    ro = parsed.set(database=f"file:{path.resolve()}?mode=ro", query={"uri": "true"})
    return sa.create_engine(ro)


def reflect_catalog(
    engine: Engine | str, *, schema: str | None = None, include_views: bool = True
) -> Catalog:
    """Read tables and views, columns, primary and foreign keys and comments.

    Accepts an Engine or a database URL. A URL's engine is disposed of afterwards; a SQLite file
    is opened read-only; a URL naming no driver gets psycopg, PyMySQL or python-oracledb
    (:func:`sqlagent.dialects.database_url`). ``schema`` names a non-default schema (a database on
    MySQL/MariaDB, an owner on Oracle); every table of the result carries it. Views include
    PostgreSQL and Oracle materialized views. Names are the database's true spelling: on
    Oracle, SQLAlchemy's lower-case form of a case-insensitive name is turned back into upper
    case.

    Foreign keys that point into another schema are left out (their target is not in this
    catalog). A view that cannot be reflected (SQLite and MySQL keep views whose tables were
    dropped) is skipped with a warning on the ``sqlagent.catalog`` logger rather than failing
    the whole catalog. Raises :class:`CatalogError` when the database cannot be reached or read
    (or its driver is not installed).
    """
    owned = isinstance(engine, str)
    eng = _read_only_engine(engine) if isinstance(engine, str) else engine
    try:
        return catalog_from_inspector(sa.inspect(eng), schema=schema, include_views=include_views)
    except sa.exc.SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        raise CatalogError(f"cannot reflect the database catalog: {cause}") from exc
    finally:
        if owned:
            eng.dispose()


def catalog_from_inspector(
    insp: Inspector, *, schema: str | None = None, include_views: bool = True
) -> Catalog:
    """The catalog an inspector sees (the body of :func:`reflect_catalog`; SQLAlchemy errors
    propagate). Kept separate so dialect handling can be tested without a server."""
    dialect = insp.dialect
    tables: list[Table] = []
    kinds = [(ObjectKind.TABLE, False)] + ([(_VIEWS, True)] if include_views else [])
    for kind, is_view in kinds:
        columns = _columns(insp, schema, kind)
        if not columns:
            continue
        names = [name for _, name in columns]
        pks: Mapping[Any, Any] = {}
        fks: Mapping[Any, Any] = {}
        if not is_view:
            pks = insp.get_multi_pk_constraint(schema=schema, kind=kind, filter_names=names)
            fks = insp.get_multi_foreign_keys(schema=schema, kind=kind, filter_names=names)
        comments = _comments(insp, schema, kind, names)
        for key, cols in columns.items():
            pk = set((pks.get(key) or {}).get("constrained_columns") or ())
            comment = (comments.get(key) or {}).get("text") or None
            tables.append(
                Table(
                    name=_true_name(key[1], dialect),
                    columns=tuple(_column(c, pk, dialect) for c in cols),
                    schema=None if schema is None else _true_name(schema, dialect),
                    comment=comment,
                    foreign_keys=_foreign_keys(fks.get(key) or (), insp, schema),
                    is_view=is_view,
                )
            )
    return Catalog(tuple(sorted(tables, key=lambda t: t.name)))


def _columns(insp: Inspector, schema: str | None, kind: ObjectKind) -> dict[Any, Any]:
    try:
        return dict(insp.get_multi_columns(schema=schema, kind=kind))
    except sa.exc.SQLAlchemyError:
        if kind is ObjectKind.TABLE:
            raise
    # One view that cannot be reflected spoils the batch: reflect views one by one instead.
    found: dict[Any, Any] = {}
    for name in _view_names(insp, schema):
        try:
            found.update(insp.get_multi_columns(schema=schema, kind=kind, filter_names=[name]))
        except sa.exc.SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc
            _log.warning("catalog: skipping view %r, which cannot be reflected: %s", name, cause)
    return found


def _view_names(insp: Inspector, schema: str | None) -> list[str]:
    names = list(insp.get_view_names(schema=schema))
    with contextlib.suppress(NotImplementedError):
        names += insp.get_materialized_view_names(schema=schema)
    return names


def _comments(
    insp: Inspector, schema: str | None, kind: ObjectKind, names: Sequence[str]
) -> Mapping[Any, Any]:
    try:
        return insp.get_multi_table_comment(schema=schema, kind=kind, filter_names=names)
    except NotImplementedError:  # SQLite has no comments
        return {}


def _column(col: Mapping[str, Any], pk: set[str], dialect: Dialect) -> Column:
    return Column(
        name=_true_name(col["name"], dialect),
        type=_type_name(col["type"], dialect),
        nullable=bool(col.get("nullable", True)),
        primary_key=col["name"] in pk,
        comment=col.get("comment") or None,
    )


def _foreign_keys(
    reflected: Sequence[Mapping[str, Any]], insp: Inspector, schema: str | None
) -> tuple[ForeignKey, ...]:
    # Dialects name the referred schema when a schema was asked for (PostgreSQL gives None for
    # another schema on the search path); without one, None or the default schema means "here".
    dialect = insp.dialect
    here: set[str | None]
    if schema is None:
        default = insp.default_schema_name
        here = {None} if default is None else {None, _true_name(default, dialect)}
    else:
        here = {_true_name(schema, dialect)}
    out = []
    for fk in reflected:
        target = fk.get("referred_schema")
        if (None if target is None else _true_name(target, dialect)) not in here:
            continue  # the target is in another schema, so not in this catalog
        out.append(
            ForeignKey(
                columns=tuple(_true_name(c, dialect) for c in fk["constrained_columns"]),
                ref_table=_true_name(fk["referred_table"], dialect),
                ref_columns=tuple(_true_name(c, dialect) for c in fk["referred_columns"]),
            )
        )
    return tuple(out)
