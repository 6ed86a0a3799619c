"""A reflected catalog kept for reuse, with sample values shared between roles."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

from sqlalchemy.engine import Engine

from sqlagent.catalog._model import Catalog
from sqlagent.catalog._reflect import reflect_catalog
from sqlagent.catalog._sample import (
    ColumnKey,
    Grants,
    SampleOptions,
    dialect_of,
    sample_columns,
    sampleable,
    with_samples,
)
from sqlagent.errors import ConfigError
from sqlagent.execution import Executor, ReadOnlyExecutor

__all__ = ["CatalogSource"]


@dataclass(frozen=True, slots=True)
class _Loaded:
    catalog: Catalog
    at: float
    # (table, column) -> samples, () for a column sampled without result; guarded by the
    # sampling lock. A refresh starts a new _Loaded, so late writes to an old one are harmless.
    samples: dict[ColumnKey, tuple[str, ...]] = field(default_factory=dict)


class CatalogSource:
    """Reflect a database's catalog once and serve it to every request and role.

    :meth:`catalog` reflects on first use, then returns the cached catalog; when several
    threads ask first at once, exactly one reflects and the others wait for its result. With
    ``ttl_s``, a catalog older than that is reflected again on the next call. :meth:`refresh`
    reflects now (after a migration) and forgets every sample.

    :meth:`with_samples` gives a role's view with sample values (see
    :func:`~sqlagent.catalog.sample_values` for what is sampled and the rule it enforces: only
    ``grants.visible`` minus ``grants.masked``). Samples are cached per ``(table, column)``, so a
    column sampled for one role is not queried again for another, until a refresh or the TTL.
    A column whose query failed (a time limit) is not retried either, unless every query of
    that call failed (the database may be down: the next call tries again).
    Sampling queries run on a :class:`~sqlagent.execution.ReadOnlyExecutor` built on first use
    with ``sample.timeout_s`` and released by :meth:`close`.

    ``source`` is a URL or an Engine. A borrowed SQLite Engine's connections become read-only
    once sampling has run on them (see :class:`~sqlagent.execution.ReadOnlyExecutor`): pass a
    URL, or an engine used only for reading.
    """

    def __init__(
        self,
        source: Engine | str,
        *,
        schema: str | None = None,
        include_views: bool = True,
        ttl_s: float | None = None,
        sample: SampleOptions | None = None,
    ) -> None:
        if ttl_s is not None and (
            isinstance(ttl_s, bool) or not isinstance(ttl_s, int | float) or ttl_s <= 0
        ):
            raise ConfigError(f"ttl_s must be a positive number of seconds or None, not {ttl_s!r}")
        self._source = source
        self._schema = schema
        self._include_views = include_views
        self._ttl_s = ttl_s
        self._options = sample or SampleOptions()
        self._loaded: _Loaded | None = None
        self._reflect_lock = threading.Lock()
        self._sample_lock = threading.Lock()
        self._executor: Executor | None = None
        self._closed = False

    def catalog(self) -> Catalog:
        """The cached catalog, reflected on first use or when older than ``ttl_s``.

        Raises :class:`~sqlagent.errors.CatalogError` when reflection fails (nothing is cached
        then, so the next call tries again).
        """
        return self._current().catalog

    def refresh(self) -> Catalog:
        """Reflect again now and drop every cached sample; returns the new catalog."""
        with self._reflect_lock:
            return self._reflect().catalog

    def with_samples(self, grants: Grants) -> Catalog:
        """The role's view of the catalog, with samples on the columns it may read in clear.

        ``grants`` is the role's :class:`sqlagent.safety.Access` (or any object with ``visible``
        and ``masked``). Columns not yet sampled are sampled now, one call at a time; the rest
        come from the cache.
        """
        loaded = self._current()
        wanted = sampleable(loaded.catalog, grants) if self._options.max_values else []
        with self._sample_lock:
            todo = [(t, c) for t, c in wanted if (t.name, c.name) not in loaded.samples]
            if todo:
                executor = self._sampling_executor()
                dialect = dialect_of(executor, None)
                done = sample_columns(executor, dialect, todo, self._options)
                answered = any(v is not None for v in done.values())
                for key, values in done.items():
                    # A failed column is remembered (as no samples) only when the database
                    # answered for others: if every query failed, it may be down for now.
                    if values is not None or answered:
                        loaded.samples[key] = values or ()
            found = dict(loaded.samples)
        return with_samples(loaded.catalog, grants, found)

    def close(self) -> None:
        """Release the sampling executor. Idempotent; the cached catalog stays readable."""
        with self._sample_lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.close()

    def __enter__(self) -> CatalogSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "empty" if self._loaded is None else f"{len(self._loaded.catalog)} tables"
        return f"CatalogSource({state}, ttl_s={self._ttl_s})"

    def _current(self) -> _Loaded:
        loaded = self._loaded
        if loaded is not None and not self._expired(loaded):
            return loaded
        with self._reflect_lock:
            loaded = self._loaded  # another thread may have reflected while this one waited
            if loaded is None or self._expired(loaded):
                loaded = self._reflect()
            return loaded

    def _expired(self, loaded: _Loaded) -> bool:
        return self._ttl_s is not None and time.monotonic() - loaded.at >= self._ttl_s

    def _reflect(self) -> _Loaded:
        catalog = reflect_catalog(
            self._source, schema=self._schema, include_views=self._include_views
        )
        loaded = _Loaded(catalog, time.monotonic())
        self._loaded = loaded
        return loaded

    def _sampling_executor(self) -> Executor:
        if self._closed:
            raise ConfigError("the CatalogSource is closed: it cannot sample any more")
        if self._executor is None:
            self._executor = ReadOnlyExecutor(
                self._source,
                timeout_s=self._options.timeout_s,
                max_rows=self._options.max_distinct + 1,
            )
        return self._executor
