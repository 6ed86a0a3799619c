"""Sample values: a few real values of low-cardinality text columns, for prompts.

A model writes ``WHERE status = 'Shipped'`` correctly only if it knows the column holds
``'Shipped'`` and not ``'shipped'`` or ``'SHIPPED'``. Sampling reads those values from the
database, so it is a data read like any other and must respect the role's policy:

    **Only columns the role may read in clear are ever sampled.** Masked and denied columns must
    never be queried for samples, or their values would reach the model's prompt.

The API enforces this instead of trusting the caller: :func:`sample_values` takes the role's
grants (any object with ``visible`` and ``masked``, such as :class:`sqlagent.safety.Access`),
samples only ``visible - masked``, and returns the role's catalog in which every other column has
no samples, even if the catalog it was given had some.

Every query runs through :class:`~sqlagent.execution.ReadOnlyExecutor` (or the executor given),
so it is read-only at the database and time-limited; a column whose query fails or times out is
skipped and logged on the ``sqlagent.catalog`` logger, never failing the whole call.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlglot import exp

from sqlagent.catalog._model import Catalog, Column, Table
from sqlagent.dialects import catalog_key, resolve_dialect
from sqlagent.errors import ConfigError
from sqlagent.execution import Executor, ReadOnlyExecutor

__all__ = ["Grants", "SampleOptions", "all_columns", "is_text_type", "sample_values"]

_log = logging.getLogger("sqlagent.catalog")

# First word of a type name (before "(", a space or "[") that marks a text column, and words that
# rule one out: LOBs cannot be compared on Oracle and hold documents, not labels.
_TEXT_MARKERS = ("CHAR", "TEXT", "STRING", "ENUM")
_NOT_TEXT_MARKERS = ("LOB", "BINARY", "BYTE")
_FIRST_WORD = re.compile(r"[A-Z0-9_]+")

ColumnKey = tuple[str, str]


class Grants(Protocol):
    """What one role may read: :class:`sqlagent.safety.Access` fits.

    ``visible`` maps a table to its readable columns, masked ones included; ``masked`` holds the
    ``(table, column)`` pairs readable only as a masked value. Names are spelled as in the
    catalog.
    """

    @property
    def visible(self) -> Mapping[str, Collection[str]]: ...

    @property
    def masked(self) -> Collection[tuple[str, str]]: ...


@dataclass(frozen=True, slots=True)
class _AllColumns:
    visible: Mapping[str, frozenset[str]]
    masked: frozenset[tuple[str, str]] = frozenset()


def all_columns(catalog: Catalog) -> Grants:
    """Grants to every column of ``catalog``, none masked: for single-user use without a policy.

    With a policy, pass the role's :class:`sqlagent.safety.Access` instead, never this.
    """
    return _AllColumns({t.name: frozenset(t.column_names) for t in catalog})


@dataclass(frozen=True, slots=True)
class SampleOptions:
    """How much sampling may read, and what it keeps.

    A text column gets samples when its first ``scan_rows`` non-null values (in whatever order
    the database returns them) hold at most ``max_distinct`` distinct values; it then keeps the
    ``max_values`` most frequent, each cut to ``max_length`` characters (``max_values=0`` turns
    sampling off: nothing is queried). Every query has
    ``timeout_s`` (when :func:`sample_values` builds its own executor; a given executor keeps its
    own limit), and one call stops starting new queries after ``budget_s`` seconds.
    """

    max_values: int = 5
    max_distinct: int = 20
    scan_rows: int = 10_000
    max_length: int = 40
    timeout_s: float = 2.0
    budget_s: float = 30.0

    def __post_init__(self) -> None:
        for name, low in (("max_values", 0), ("max_distinct", 1), ("scan_rows", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                what = "a non-negative" if low == 0 else "a positive"
                raise ConfigError(f"{name} must be {what} integer, not {value!r}")
        if isinstance(self.max_length, bool) or not isinstance(self.max_length, int):
            raise ConfigError(f"max_length must be an integer, not {self.max_length!r}")
        if self.max_length < 4:
            raise ConfigError(f"max_length must be at least 4, not {self.max_length!r}")
        for name in ("timeout_s", "budget_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"{name} must be a positive number of seconds, not {value!r}")


def is_text_type(type_name: str) -> bool:
    """Whether a reflected type name is a text type worth sampling (``VARCHAR(20)``, ``TEXT``,
    ``NVARCHAR2(10 CHAR)``, MySQL ``ENUM(...)``); not LOBs, binary, arrays or untyped columns."""
    text = type_name.strip().upper()
    first = _FIRST_WORD.match(text)
    if first is None or "[" in text:
        return False
    word = first.group()
    if any(marker in word for marker in _NOT_TEXT_MARKERS):
        return False
    return any(marker in word for marker in _TEXT_MARKERS)


def sample_values(
    source: Executor | Engine | str,
    catalog: Catalog,
    grants: Grants,
    *,
    options: SampleOptions | None = None,
    dialect: str | None = None,
) -> Catalog:
    """The role's catalog with sample values on the text columns it may read in clear.

    Returns ``catalog.restricted(grants.visible)`` (the role's view, as
    :meth:`sqlagent.safety.Access.catalog` gives it) in which each visible, unmasked, text-typed
    column (:func:`is_text_type`) of low cardinality carries ``samples``: up to
    ``options.max_values`` distinct non-null values, sorted. Every other column has none.
    Masked and denied columns are never queried.

    ``source`` is an executor (the agent's :class:`~sqlagent.execution.ReadOnlyExecutor`: its time
    limit applies; another :class:`~sqlagent.execution.Executor` needs ``dialect``), or an Engine
    or URL for which a read-only executor with ``options.timeout_s`` is built and closed again.
    Nothing is run when no column qualifies. A column whose query fails (time limit, odd type,
    permission) is skipped and logged; only unusable arguments raise
    (:class:`~sqlagent.errors.ConfigError`).
    """
    opts = options or SampleOptions()
    wanted = sampleable(catalog, grants) if opts.max_values else []
    samples: dict[ColumnKey, tuple[str, ...] | None] = {}
    if wanted:
        executor, owned = _executor(source, opts)
        try:
            samples = sample_columns(executor, dialect_of(executor, dialect), wanted, opts)
        finally:
            if owned:
                executor.close()
    return with_samples(catalog, grants, samples)


def sampleable(catalog: Catalog, grants: Grants) -> list[tuple[Table, Column]]:
    """The columns sampling may read for ``grants``: visible, not masked, text-typed.

    A column is visible only when spelled exactly as in the catalog, but masked whenever a masked
    pair matches it ignoring case: a misspelled grant samples less, never more.
    """
    masked = {(t.casefold(), c.casefold()) for t, c in grants.masked}
    out = []
    for table in catalog:
        readable = grants.visible.get(table.name)
        if not readable:
            continue
        for column in table.columns:
            if (
                column.name in readable
                and (table.name.casefold(), column.name.casefold()) not in masked
                and is_text_type(column.type)
            ):
                out.append((table, column))
    return out


def with_samples(
    catalog: Catalog, grants: Grants, samples: Mapping[ColumnKey, Sequence[str] | None]
) -> Catalog:
    """The role's view of ``catalog``, with ``samples`` on its readable columns and on no other
    (samples already in ``catalog`` are dropped)."""
    allowed = {(t.name, c.name) for t, c in sampleable(catalog, grants)}
    tables = []
    for table in catalog.restricted(grants.visible):
        columns = []
        for column in table.columns:
            key = (table.name, column.name)
            values = tuple(samples.get(key) or ()) if key in allowed else ()
            columns.append(column if column.samples == values else replace(column, samples=values))
        tables.append(replace(table, columns=tuple(columns)))
    return Catalog(tuple(tables))


def dialect_of(executor: Executor, dialect: str | None) -> str:
    """The sqlglot dialect to write sampling SQL in."""
    name = dialect or getattr(executor, "dialect", None)
    if not isinstance(name, str):
        raise ConfigError("sampling needs the SQL dialect: pass dialect= for this executor")
    return resolve_dialect(name)


def _executor(source: Executor | Engine | str, opts: SampleOptions) -> tuple[Executor, bool]:
    if isinstance(source, Engine | str):
        executor = ReadOnlyExecutor(
            source, timeout_s=opts.timeout_s, max_rows=opts.max_distinct + 1
        )
        return executor, True
    return source, False


def sample_columns(
    executor: Executor,
    dialect: str,
    columns: Iterable[tuple[Table, Column]],
    opts: SampleOptions,
) -> dict[ColumnKey, tuple[str, ...] | None]:
    """Sample each column: its samples, ``()`` when it has too many distinct values, ``None``
    when its query failed (logged). Columns not reached within ``opts.budget_s`` are left out
    (a later call may sample them)."""
    deadline = time.monotonic() + opts.budget_s
    out: dict[ColumnKey, tuple[str, ...] | None] = {}
    for table, column in columns:
        if time.monotonic() >= deadline:
            _log.warning(
                "catalog: sampling stopped after its %g s budget; %r.%r and later columns "
                "have no samples",
                opts.budget_s,
                table.name,
                column.name,
            )
            break
        out[(table.name, column.name)] = _sample_one(executor, dialect, table, column, opts)
    return out


def _sample_one(
    executor: Executor, dialect: str, table: Table, column: Column, opts: SampleOptions
) -> tuple[str, ...] | None:
    try:
        result = executor.run(sampling_sql(table, column.name, dialect, opts))
        counts: list[tuple[str, int]] = []
        for value, count in result.rows:
            if isinstance(value, bytes | bytearray | memoryview):
                raise TypeError(f"the column holds {type(value).__name__}, not text")
            counts.append((str(value), int(count)))
    except Exception as exc:  # one column's failure must not cost the others their samples
        _log.warning(
            "catalog: no samples for %r.%r: %s: %s",
            table.name,
            column.name,
            type(exc).__name__,
            exc,
        )
        return None
    if result.truncated or len(counts) > opts.max_distinct:
        return ()  # too many distinct values: not a category
    return _pick(counts, opts)


def _pick(counts: Iterable[tuple[str, int]], opts: SampleOptions) -> tuple[str, ...]:
    """The most frequent usable values, cut to length, sorted (ties broken by value)."""
    usable = [(v, n) for v, n in counts if v.strip() and not _has_control(v)]
    usable.sort(key=lambda vn: (-vn[1], vn[0]))
    picked = {_cut(v, opts.max_length) for v, _ in usable[: opts.max_values]}
    return tuple(sorted(picked))


def _has_control(value: str) -> bool:
    # Samples are shown on one line of a prompt: a line break could smuggle text into it.
    return any(unicodedata.category(ch)[0] == "C" for ch in value)


def _cut(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "\u2026"


def sampling_sql(table: Table, column: str, dialect: str, opts: SampleOptions) -> str:
    """The query that samples one column, in ``dialect`` (a sqlglot name).

    ``SELECT v, COUNT(*) AS n FROM (SELECT col AS v FROM t WHERE col IS NOT NULL LIMIT scan)
    GROUP BY v LIMIT max_distinct + 1``: the inner limit bounds the rows read, the outer one the
    rows returned. Every identifier is quoted with the catalog's spelling (on Oracle, an
    all-lower-case catalog name is the case-insensitive upper-case one). No trailing ``;``;
    Oracle gets ``FETCH FIRST n ROWS ONLY``.
    """
    col = _ident(column, dialect)
    inner = (
        exp.select(exp.alias_(exp.column(col), "v"))
        .from_(exp.Table(this=_ident(table.name, dialect), db=_schema(table, dialect)))
        .where(exp.column(col.copy()).is_(exp.null()).not_())
        .limit(opts.scan_rows)
    )
    outer = (
        exp.select("v", exp.alias_(exp.Count(this=exp.Star()), "n"))
        .from_(inner.subquery("s"))
        .group_by("v")
        .limit(opts.max_distinct + 1)
    )
    return outer.sql(dialect=dialect)


def _schema(table: Table, dialect: str) -> exp.Identifier | None:
    return None if table.schema is None else _ident(table.schema, dialect)


def _ident(name: str, dialect: str) -> exp.Identifier:
    true_name = catalog_key(name, dialect) if dialect == "oracle" else name
    return exp.to_identifier(true_name, quoted=True)
