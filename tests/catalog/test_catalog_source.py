"""CatalogSource: reflect once, share samples between roles, refresh, expire, stay thread-safe."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import sqlagent.catalog._source as source_module
from sqlagent.catalog import Catalog, CatalogSource, SampleOptions, all_columns
from sqlagent.errors import CatalogError, ConfigError
from sqlagent.safety import Access


def _db(path: Path) -> str:
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE items (id INTEGER PRIMARY KEY, kind TEXT, colour TEXT);
        INSERT INTO items VALUES (1, 'tool', 'red'), (2, 'toy', 'blue'), (3, 'tool', 'red');
        """
    )
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def _write(url: str, *statements: str) -> None:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return _db(tmp_path / "items.sqlite")


class Counter:
    """Wraps a function and counts (and can slow down) its calls."""

    def __init__(self, func: Callable[..., Any], delay: float = 0.0) -> None:
        self.func, self.delay, self.calls = func, delay, 0
        self.args: list[Any] = []
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.calls += 1
            self.args.append(args)
        time.sleep(self.delay)
        return self.func(*args, **kwargs)


@pytest.fixture
def reflections(monkeypatch: pytest.MonkeyPatch) -> Counter:
    counter = Counter(source_module.reflect_catalog)
    monkeypatch.setattr(source_module, "reflect_catalog", counter)
    return counter


@pytest.fixture
def samplings(monkeypatch: pytest.MonkeyPatch) -> Counter:
    counter = Counter(source_module.sample_columns)
    monkeypatch.setattr(source_module, "sample_columns", counter)
    return counter


def _samples(catalog: Catalog, table: str, column: str) -> tuple[str, ...]:
    found = catalog.table(table)
    assert found is not None
    col = found.column(column)
    assert col is not None
    return col.samples


def _sampled_columns(counter: Counter) -> list[list[tuple[str, str]]]:
    # sample_columns(executor, dialect, columns, options)
    return [[(t.name, c.name) for t, c in args[2]] for args in counter.args]


def test_reflects_once_and_caches(url: str, reflections: Counter) -> None:
    with CatalogSource(url) as source:
        first = source.catalog()
        assert source.catalog() is first
        assert source.catalog() is first
    assert reflections.calls == 1
    assert first.table_names == ("items",)


def test_refresh_picks_up_new_tables_and_columns(url: str, reflections: Counter) -> None:
    with CatalogSource(url) as source:
        assert source.catalog().table_names == ("items",)
        _write(
            url, "CREATE TABLE shops (id INTEGER PRIMARY KEY)", "ALTER TABLE items ADD size TEXT"
        )
        assert source.catalog().table_names == ("items",)  # cached until refreshed
        refreshed = source.refresh()
        assert refreshed.table_names == ("items", "shops")
        assert "size" in refreshed.table("items").column_names  # type: ignore[union-attr]
        assert source.catalog() is refreshed
    assert reflections.calls == 2


def test_ttl_expires_the_catalog(url: str, reflections: Counter) -> None:
    with CatalogSource(url, ttl_s=0.05) as source:
        first = source.catalog()
        assert source.catalog() is first
        time.sleep(0.06)
        assert source.catalog() is not first
    assert reflections.calls == 2


def test_concurrent_first_calls_reflect_once(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    slow = Counter(source_module.reflect_catalog, delay=0.2)
    monkeypatch.setattr(source_module, "reflect_catalog", slow)
    source = CatalogSource(url)
    start = threading.Barrier(8)
    results: list[Catalog] = []

    def ask() -> None:
        start.wait()
        results.append(source.catalog())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert slow.calls == 1
    assert len(results) == 8
    assert all(r is results[0] for r in results)
    source.close()


def test_a_failed_reflection_is_not_cached(tmp_path: Path) -> None:
    path = tmp_path / "later.sqlite"
    source = CatalogSource(f"sqlite:///{path}")
    with pytest.raises(CatalogError, match="not found"):
        source.catalog()
    _db(path)
    assert source.catalog().table_names == ("items",)


def test_samples_are_shared_between_roles(url: str, samplings: Counter) -> None:
    first_role = Access("a", visible={"items": frozenset({"id", "kind"})}, masked=frozenset())
    second_role = Access("b", visible={"items": frozenset({"kind", "colour"})}, masked=frozenset())
    with CatalogSource(url) as source:
        a = source.with_samples(first_role)
        b = source.with_samples(second_role)
        again = source.with_samples(first_role)
    assert _samples(a, "items", "kind") == ("tool", "toy")
    assert a.table("items").column_names == ("id", "kind")  # type: ignore[union-attr]
    assert _samples(b, "items", "colour") == ("blue", "red")
    assert again == a
    # "kind" was sampled once, for the first role; the second only needed "colour".
    assert _sampled_columns(samplings) == [[("items", "kind")], [("items", "colour")]]


def test_masked_columns_get_no_samples_even_when_another_role_sampled_them(
    url: str, samplings: Counter
) -> None:
    clear = Access("hr", visible={"items": frozenset({"kind", "colour"})}, masked=frozenset())
    masked = Access(
        "viewer",
        visible={"items": frozenset({"kind", "colour"})},
        masked=frozenset({("items", "colour")}),
    )
    with CatalogSource(url) as source:
        assert _samples(source.with_samples(clear), "items", "colour") == ("blue", "red")
        view = source.with_samples(masked)
    assert _samples(view, "items", "colour") == ()
    assert _samples(view, "items", "kind") == ("tool", "toy")
    assert _samples(source.catalog(), "items", "colour") == ()  # the cached catalog has none


def test_refresh_drops_cached_samples(url: str, samplings: Counter) -> None:
    with CatalogSource(url) as source:
        grants = all_columns(source.catalog())
        assert _samples(source.with_samples(grants), "items", "kind") == ("tool", "toy")
        _write(url, "INSERT INTO items VALUES (4, 'game', 'green')")
        cached = source.with_samples(grants)
        assert _samples(cached, "items", "kind") == ("tool", "toy")
        source.refresh()
        fresh = source.with_samples(grants)
        assert _samples(fresh, "items", "kind") == ("game", "tool", "toy")
    assert samplings.calls == 2


def test_concurrent_roles_sample_each_column_once(url: str, samplings: Counter) -> None:
    source = CatalogSource(url)
    grants = all_columns(source.catalog())
    start = threading.Barrier(6)
    views: list[Catalog] = []

    def ask() -> None:
        start.wait()
        views.append(source.with_samples(grants))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    source.close()
    assert samplings.calls == 1
    assert all(v == views[0] for v in views)


def test_sampling_can_be_turned_off(url: str, samplings: Counter) -> None:
    with CatalogSource(url, sample=SampleOptions(max_values=0)) as source:
        view = source.with_samples(all_columns(source.catalog()))
    assert all(not c.samples for t in view for c in t.columns)
    assert samplings.calls == 0


def test_a_closed_source_still_serves_but_cannot_sample(url: str) -> None:
    source = CatalogSource(url)
    source.close()
    source.close()
    assert source.catalog().table_names == ("items",)
    with pytest.raises(ConfigError, match="closed"):
        source.with_samples(all_columns(source.catalog()))


@pytest.mark.parametrize("ttl", [0, -1, True, "5"])
def test_bad_ttl(url: str, ttl: Any) -> None:
    with pytest.raises(ConfigError, match="ttl_s"):
        CatalogSource(url, ttl_s=ttl)


def test_construction_does_not_touch_the_database(tmp_path: Path) -> None:
    CatalogSource(f"sqlite:///{tmp_path / 'missing.sqlite'}").close()
    assert not (tmp_path / "missing.sqlite").exists()


@pytest.mark.slow
def test_failed_columns_are_retried_only_when_every_query_failed(
    url: str, samplings: Counter
) -> None:
    _write(
        url,
        # an endless recursive query that never finds a row: only the time limit stops it
        "CREATE VIEW slow AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
        "SELECT items.kind FROM items, c WHERE c.x = 0",
    )
    only_slow = Access("s", visible={"slow": frozenset({"kind"})}, masked=frozenset())
    with CatalogSource(url, sample=SampleOptions(timeout_s=0.2)) as source:
        everything = all_columns(source.catalog())
        assert _samples(source.with_samples(only_slow), "slow", "kind") == ()
        assert _samples(source.with_samples(only_slow), "slow", "kind") == ()  # tried again
        view = source.with_samples(everything)  # slow fails again, but items answered
        assert _samples(view, "items", "kind") == ("tool", "toy")
        source.with_samples(only_slow)  # remembered: not tried again
    assert _sampled_columns(samplings) == [
        [("slow", "kind")],
        [("slow", "kind")],
        [("items", "kind"), ("items", "colour"), ("slow", "kind")],
    ]
