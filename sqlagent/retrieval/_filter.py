"""Role filtering: what of the notes and examples one role's view of the catalog may see.

The view itself (tables and columns) comes filtered from the caller
(:meth:`sqlagent.Guard.catalog_for`). Here the two free-text sources are judged against it:

* an example is visible when the safety core would let the role run its SQL: one read-only
  query (sqlglot parses it in the given dialect; unparseable SQL is never visible) whose every
  table and column exists in the view, using masked columns only as plain projections;
* a doc chunk is visible unless it names, as a whole word and ignoring case, a table or column of
  the full catalog that the view lacks (names that are also visible do not count).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import replace

from sqlagent.catalog import Catalog
from sqlagent.errors import ConfigError
from sqlagent.safety import Guard, Policy
from sqlagent.types import Example

__all__ = [
    "check_view",
    "hidden_names",
    "hidden_pattern",
    "strip_masked_samples",
    "visible_examples",
]


def check_view(view: Catalog, full: Catalog) -> None:
    """Refuse a view that is not a restriction of ``full`` (a table or column it lacks)."""
    for table in view:
        source = full.table(table.name)
        if source is None:
            raise ConfigError(f"the view has table {table.name!r}, which the catalog lacks")
        missing = set(table.column_names) - set(source.column_names)
        if missing:
            raise ConfigError(
                f"the view of table {table.name!r} has columns the catalog lacks: "
                + ", ".join(sorted(missing))
            )


def _names(catalog: Catalog) -> set[str]:
    names = set()
    for table in catalog:
        names.add(table.name.casefold())
        names.update(c.name.casefold() for c in table.columns)
    return names


def hidden_names(view: Catalog, full: Catalog) -> frozenset[str]:
    """Case-folded table and column names of ``full`` that appear nowhere in ``view``."""
    return frozenset(_names(full) - _names(view))


def hidden_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive whole-word pattern for ``names`` (``None`` when there are none)."""
    ordered = sorted({n for n in names if n}, key=lambda n: (-len(n), n))
    if not ordered:
        return None
    alternatives = "|".join(re.escape(name) for name in ordered)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def visible_examples(
    examples: Iterable[Example],
    view: Catalog,
    dialect: str,
    masked: Collection[tuple[str, str]] = (),
) -> dict[Example, None]:
    """The examples the role could run itself, in input order, without duplicates.

    Each example's SQL is judged by the safety core as the role's own statement would be: one
    read-only query grounded in ``view`` and, with ``masked`` columns, using them only as plain
    projections (an example filtering on a masked salary teaches what the role may not do).
    """
    guard = Guard(dialect=dialect, catalog=view, policy=_view_policy(view, masked))
    kept: dict[Example, None] = {}
    for example in examples:
        if example not in kept and guard.check(example.sql).allowed:
            kept[example] = None
    return kept


def _view_policy(view: Catalog, masked: Collection[tuple[str, str]]) -> Policy | None:
    """A one-role policy granting exactly ``view`` with ``masked`` columns masked."""
    masked_here: dict[str, list[str]] = {}
    for table, column in sorted(masked):
        found = view.table(table)
        if found is not None and column in found.column_names:
            masked_here.setdefault(table, []).append(column)
    if not masked_here:
        return None
    grants = {t.name: list(t.column_names) for t in view}
    role = {"tables": grants, "masked": masked_here}
    return Policy.from_mapping({"default_role": "view", "roles": {"view": role}})


def strip_masked_samples(view: Catalog, masked: Collection[tuple[str, str]]) -> Catalog:
    """``view`` with no sample values on ``masked`` columns (a masked value never leaks)."""
    if not masked or not any(
        c.samples for t in view for c in t.columns if (t.name, c.name) in masked
    ):
        return view
    tables = []
    for table in view:
        columns = tuple(
            replace(c, samples=()) if (table.name, c.name) in masked else c for c in table.columns
        )
        tables.append(replace(table, columns=columns))
    return Catalog(tuple(tables))
