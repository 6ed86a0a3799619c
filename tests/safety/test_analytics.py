"""Precision: a corpus of harmless analytics queries must be allowed *and* run.

``tests/fixtures/analytics/<dialect>.sql`` holds realistic queries of the kind analysts and models
write (CTEs, windows, date arithmetic, JSON and arrays, percentiles, FILTER, GROUPING SETS, lateral
joins, set-returning functions ...), one file per dialect, in the safety fixtures' format. Each
engine gets the schema of ``tests/fixtures/analytics/schema/<dialect>.sql`` filled with the same
generated rows (JSON/JSONB and array columns where the engine has them), its catalog is reflected,
and every query must be allowed and then run through the read-only executor in three modes:

* ``bare``: no catalog, the read-only rules alone;
* ``single_user``: grounded in the reflected catalog;
* ``policy``: the role of ``tests/fixtures/analytics/policy.yaml``, which denies or masks one column
  on each table that the corpus never uses, so the statement that runs is the policy rewrite.

Oracle has no server here: its corpus is validated against the catalog of its schema file, never
run. PostgreSQL and MariaDB cases skip when their server is absent.

:data:`PENDING` lists cases known to fail (none today). They run as strict xfails, so each one
that starts passing fails the suite until it is taken off the list.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import sqlglot
from sqlglot import exp

from sqlagent import Catalog, Guard, Policy
from sqlagent.catalog import reflect_catalog
from sqlagent.execution import ReadOnlyExecutor
from tests.dbservers import create_test_database, drop_test_database
from tests.safety.fixture_loader import Case, parse_fixture

ANALYTICS = Path(__file__).resolve().parent.parent / "fixtures" / "analytics"
DIALECTS = ("postgres", "mysql", "sqlite", "oracle")
MODES = ("bare", "single_user", "policy")
DB_NAME = "sqlagent_analytics"
ROLE = "analyst"

#: Cases that fail for a reason outside the read-only and function rules, keyed by
#: ``<dialect>::<case>`` (every mode) or ``<dialect>::<case>@<mode>`` (one mode). Each value says
#: why; each runs as a strict xfail.
PENDING: dict[str, str] = {}

# Columns that hold JSON documents or arrays (JSON text outside PostgreSQL).
_JSON = {("customers", "profile"), ("products", "attributes"), ("events", "payload")}
_ARRAYS = {("customers", "tags"), ("products", "tags"), ("products", "ratings")}


# -- data ------------------------------------------------------------------------------------------

Row = dict[str, Any]

_FIRST = [
    "Ada", "Alan", "Grace", "Linus", "Barbara", "Edsger", "Margaret", "Dennis", "Frances", "Ken",
    "Radia", "Tim", "Sophie", "Hedy", "Donald", "John", "Katherine", "Guido", "Anita", "Niklaus",
]  # fmt: skip
_LAST = [
    "Lovelace", "Turing", "Hopper", "Torvalds", "Liskov", "Dijkstra", "Hamilton", "Ritchie",
    "Allen", "Thompson", "Perlman", "Berners", "Wilson", "Lamarr", "Knuth", "Backus", "Johnson",
    "Rossum", "Borg", "Wirth",
]  # fmt: skip
_CITIES = {
    "US": ["New York", "Austin", "Seattle"],
    "DE": ["Berlin", "Munich", "Hamburg"],
    "FR": ["Paris", "Lyon"],
    "GB": ["London", "Leeds"],
    "NL": ["Amsterdam", "Utrecht"],
    "ES": ["Madrid", "Sevilla"],
}
_PRODUCT_TAGS = ["new", "bestseller", "eco", "clearance"]
_PRODUCTS = {
    "Electronics": ["Phones", "Laptops", "Audio"],
    "Home": ["Kitchen", "Furniture"],
    "Outdoor": ["Camping", "Cycling"],
    "Books": ["Fiction", "Technical"],
}


def analytics_rows(seed: int = 7) -> dict[str, list[Row]]:
    """The corpus data: the same rows for every engine (a seeded generator, no files)."""
    rnd = random.Random(seed)
    reps = [
        {
            "rep_id": i, "name": f"{_FIRST[i]} {_LAST[-i]}",
            "region": ("North", "South", "East", "West")[i % 4],
            "manager_id": None if i == 1 else (1 if i <= 4 else 2 + i % 3),
            "hired_on": date(2015 + i % 8, 1 + i % 12, 1 + i), "quota": 50000.0 + 7500 * i,
            "bank_account": f"DE{rnd.randrange(10**15):015d}",
        }
        for i in range(1, 11)
    ]  # fmt: skip
    customers: list[Row] = []
    for i in range(1, 61):
        country = rnd.choice(sorted(_CITIES))
        city = rnd.choice(_CITIES[country])
        first, last = rnd.choice(_FIRST), rnd.choice(_LAST)
        interests = rnd.sample(
            ["cycling", "cooking", "gaming", "reading", "hiking"], rnd.randint(0, 3)
        )
        profile: Row = {
            "channel": rnd.choice(["web", "store", "referral", "ads"]),
            "newsletter": rnd.random() < 0.5, "interests": interests,
            "address": {"city": city, "zip": f"{rnd.randrange(10000, 99999)}"},
            "score": rnd.randint(1, 100),
        }  # fmt: skip
        if rnd.random() < 0.3:
            profile["referrer"] = None
        customers.append({
            "customer_id": i, "name": f"{first} {last}",
            "email": f"{first.lower()}.{last.lower()}{i}@example.com", "country": country,
            "city": city, "segment": rnd.choice(["consumer", "corporate", "small_business"]),
            "signup_date": date(2022, 1, 1) + timedelta(days=rnd.randrange(900)),
            "birth_year": None if rnd.random() < 0.1 else rnd.randint(1950, 2004),
            "tags": rnd.sample(["vip", "newsletter", "b2b", "churn_risk", "early_adopter"],
                               rnd.randint(0, 3)),
            "profile": profile, "tax_id": f"TX-{rnd.randrange(10**8):08d}",
        })  # fmt: skip
    products: list[Row] = []
    for category, subcategories in _PRODUCTS.items():
        for sub in subcategories:
            for variant in ("Lite", "Pro", "Max", "Mini"):
                price = round(rnd.uniform(5, 900), 2)
                attributes: Row = {
                    "color": rnd.choice(["black", "white", "red", "green", "blue"]),
                    "weight_kg": round(rnd.uniform(0.1, 20), 2),
                    "sizes": rnd.sample(["S", "M", "L", "XL"], rnd.randint(0, 3)),
                    "warranty_years": rnd.choice([0, 1, 2, 3]),
                }
                if category == "Electronics":
                    attributes["energy_class"] = rnd.choice(["A", "B", "C"])
                products.append({
                    "product_id": len(products) + 1, "name": f"{sub} {variant}",
                    "category": category, "subcategory": sub, "unit_price": price,
                    "unit_cost": round(price * rnd.uniform(0.4, 0.8), 2),
                    "launched_on": date(2019, 1, 1) + timedelta(days=rnd.randrange(1800)),
                    "tags": rnd.sample(_PRODUCT_TAGS, rnd.randint(0, 2)),
                    "ratings": [rnd.randint(1, 5) for _ in range(rnd.randint(0, 6))],
                    "attributes": attributes, "supplier_ref": f"SUP-{rnd.randrange(1000):03d}",
                })  # fmt: skip
    orders: list[Row] = []
    items: list[Row] = []
    for order_id in range(1, 401):
        ordered = datetime(2023, 1, 1, 8) + timedelta(minutes=rnd.randrange(730 * 24 * 60))
        status = rnd.choices(
            ["delivered", "shipped", "cancelled", "returned", "pending"], [60, 15, 10, 5, 10]
        )[0]
        channel = rnd.choice(["web", "store", "phone", "partner"])
        shipped = None
        if status not in ("pending", "cancelled"):
            shipped = ordered + timedelta(hours=rnd.randrange(6, 120))
        orders.append({
            "order_id": order_id, "customer_id": rnd.randint(1, 60),
            "rep_id": None if channel == "web" else rnd.randint(1, 10), "ordered_at": ordered,
            "shipped_at": shipped, "status": status, "channel": channel,
            "discount": rnd.choice([0, 0, 0.05, 0.1, 0.15]),
            "shipping_cost": rnd.choice([0, 4.9, 9.9, 14.5]),
            "internal_note": rnd.choice([None, "call before delivery", "fragile"]),
        })  # fmt: skip
        for line_no in range(1, rnd.randint(1, 4) + 1):
            product = rnd.choice(products)
            items.append({
                "order_id": order_id, "line_no": line_no, "product_id": product["product_id"],
                "quantity": rnd.randint(1, 5), "unit_price": product["unit_price"],
                "batch_code": f"B{rnd.randrange(10**6):06d}",
            })  # fmt: skip
    events: list[Row] = []
    for event_id in range(1, 801):
        kind = rnd.choice(["page_view", "page_view", "search", "add_to_cart", "checkout", "login"])
        payload: Row = {
            "duration_ms": rnd.randint(20, 9000),
            "device": {"os": rnd.choice(["ios", "android", "windows", "macos"]),
                       "mobile": rnd.random() < 0.5},
        }  # fmt: skip
        if kind == "search":
            payload["query"] = rnd.choice(["tent", "laptop", "bike", "novel", "headphones"])
        elif kind in ("page_view", "add_to_cart"):
            payload["product_id"] = rnd.randint(1, len(products))
            payload["page"] = f"/p/{payload['product_id']}"
        events.append({
            "event_id": event_id,
            "customer_id": None if rnd.random() < 0.15 else rnd.randint(1, 60),
            "event_type": kind,
            "occurred_at": datetime(2024, 1, 1, tzinfo=UTC)
            + timedelta(seconds=rnd.randrange(366 * 86400)),
            "session_id": f"s{rnd.randrange(300):04d}", "payload": payload,
            "ip_address": f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(256)}",
            "user_agent": rnd.choice(["Mozilla/5.0 (X11)", "Mozilla/5.0 (iPhone)", "curl/8.0"]),
        })  # fmt: skip
    return {
        "sales_reps": reps, "customers": customers, "products": products, "orders": orders,
        "order_items": items, "events": events,
    }  # fmt: skip


def _value(dialect: str, table: str, column: str, value: Any) -> Any:
    """A generated value as ``dialect``'s driver should bind it."""
    if value is None:
        return None
    if (table, column) in _JSON or ((table, column) in _ARRAYS and dialect != "postgres"):
        return json.dumps(value)
    if isinstance(value, datetime):
        if dialect == "postgres":
            return value
        naive = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
        return naive if dialect == "mysql" else naive.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date) and dialect == "sqlite":
        return value.isoformat()
    return value


def schema_statements(dialect: str) -> list[str]:
    """The CREATE TABLE statements of ``schema/<dialect>.sql`` (comment lines dropped)."""
    text = (ANALYTICS / "schema" / f"{dialect}.sql").read_text(encoding="utf-8")
    statements = []
    for chunk in re.split(r";\s*$", text, flags=re.MULTILINE):
        lines = [line for line in chunk.splitlines() if not line.lstrip().startswith("--")]
        body = "\n".join(lines).strip()
        if body:
            statements.append(body)
    return statements


def _inserts(dialect: str) -> Iterator[tuple[str, list[Row]]]:
    for table, rows in analytics_rows().items():
        columns = list(rows[0])
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        sql += "(" + ", ".join(f":{c}" for c in columns) + ")"
        yield sql, [{c: _value(dialect, table, c, r[c]) for c in columns} for r in rows]


def build_sqlite(path: Path) -> str:
    with closing(sqlite3.connect(path)) as conn:
        for statement in schema_statements("sqlite"):
            conn.execute(statement)
        for sql, rows in _inserts("sqlite"):
            conn.executemany(sql, rows)
        conn.commit()
    return f"sqlite:///{path}"


def build_server(kind: str) -> str:
    url = create_test_database(kind, DB_NAME)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in schema_statements(kind):
                conn.execute(sa.text(statement))
            for sql, rows in _inserts(kind):
                conn.execute(sa.text(sql), rows)
    finally:
        engine.dispose()
    return url


def oracle_catalog() -> Catalog:
    """The catalog of ``schema/oracle.sql``, read with sqlglot (no Oracle server here)."""
    mapping: dict[str, dict[str, str]] = {}
    for statement in schema_statements("oracle"):
        create = sqlglot.parse_one(statement, read="oracle")
        assert isinstance(create, exp.Create)
        assert isinstance(create.this, exp.Schema)
        columns = [c for c in create.this.expressions if isinstance(c, exp.ColumnDef)]
        mapping[create.this.this.name] = {
            c.name: c.args["kind"].sql(dialect="oracle") for c in columns
        }
    return Catalog.from_mapping(mapping)


# -- engines -------------------------------------------------------------------------------------


@dataclass
class Engine:
    dialect: str
    guard_dialect: str  # what the guard renders for ("mariadb" on the MariaDB server)
    catalog: Catalog
    executor: ReadOnlyExecutor | None  # None: validated only (Oracle)

    def guard(self, mode: str, policy: Policy) -> Guard:
        return Guard(
            dialect=self.guard_dialect,
            catalog=None if mode == "bare" else self.catalog,
            policy=policy if mode == "policy" else None,
        )


def _engine(kind: str, url: str) -> Engine:
    executor = ReadOnlyExecutor(url, timeout_s=20, max_rows=100_000)
    target = executor.server_dialect() if kind == "mysql" else kind
    return Engine(kind, target, reflect_catalog(url), executor)


class Engines:
    """The engines of the corpus, each built on first use: a server is set up (or found absent,
    once) only when the first case that needs it runs."""

    def __init__(self, tmp: pytest.TempPathFactory) -> None:
        self._tmp = tmp
        self._built: dict[str, Engine] = {}
        self._servers: list[str] = []
        self._absent: dict[str, str] = {}  # kind -> why its server was skipped

    def get(self, kind: str) -> Engine:
        if kind in self._built:
            return self._built[kind]
        if kind in self._absent:
            pytest.skip(self._absent[kind])
        if kind == "sqlite":
            engine = _engine(kind, build_sqlite(self._tmp.mktemp("analytics") / "analytics.db"))
        elif kind == "oracle":
            engine = Engine(kind, kind, oracle_catalog(), None)
        else:
            try:
                url = build_server(kind)  # skips when the server is absent
            except pytest.skip.Exception as skipped:
                self._absent[kind] = str(skipped)
                raise
            self._servers.append(kind)
            engine = _engine(kind, url)
        self._built[kind] = engine
        return engine

    def close(self) -> None:
        for engine in self._built.values():
            if engine.executor is not None:
                engine.executor.close()
        for kind in self._servers:
            drop_test_database(kind, DB_NAME)


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engines]:
    built = Engines(tmp_path_factory)
    yield built
    built.close()


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy.from_file(ANALYTICS / "policy.yaml")


# -- the corpus ------------------------------------------------------------------------------------

CORPUS: list[Case] = [
    case
    for dialect in DIALECTS
    for case in parse_fixture((ANALYTICS / f"{dialect}.sql").read_text(encoding="utf-8"), dialect)
]
_SERVER_MARKS = {"postgres": [pytest.mark.postgres], "mysql": [pytest.mark.mysql]}


def _pending(case: Case, mode: str) -> str | None:
    return PENDING.get(f"{case.param_id}@{mode}") or PENDING.get(case.param_id)


def _params() -> list[Any]:
    params = []
    for case in CORPUS:
        for mode in MODES:
            marks = list(_SERVER_MARKS.get(case.source, []))
            reason = _pending(case, mode)
            if reason is not None:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            params.append(pytest.param(case, mode, id=f"{case.param_id}@{mode}", marks=marks))
    return params


@pytest.mark.parametrize(("case", "mode"), _params())
@pytest.mark.slow
def test_analytics_query_is_allowed_and_runs(
    case: Case, mode: str, engines: Engines, policy: Policy
) -> None:
    engine = engines.get(case.source)
    guard = engine.guard(mode, policy)
    verdict = guard.check(case.sql, role=ROLE if mode == "policy" else None)
    assert verdict.allowed, f"{case.param_id}@{mode} ({case.reason}): {verdict.summary()}"
    assert verdict.sql is not None
    if mode == "policy":
        assert not verdict.masked_columns, f"the corpus must not use masked columns: {verdict.sql}"
    if engine.executor is None:
        return
    result = engine.executor.run(verdict.sql)
    assert result.columns, verdict.sql


def test_corpus_is_large_and_spread_over_the_dialects() -> None:
    counts = {d: sum(c.source == d for c in CORPUS) for d in DIALECTS}
    assert sum(counts.values()) >= 200, counts
    assert min(counts.values()) >= 40, counts
    assert all(c.allow for c in CORPUS), "the analytics corpus holds allowed queries only"


def test_pending_cases_name_real_cases() -> None:
    known = {c.param_id for c in CORPUS} | {f"{c.param_id}@{m}" for c in CORPUS for m in MODES}
    assert set(PENDING) <= known, sorted(set(PENDING) - known)


def test_policy_hides_a_column_the_corpus_never_uses_on_every_table(policy: Policy) -> None:
    catalog = oracle_catalog()
    access = policy.access(ROLE, catalog, "oracle")
    for table in catalog:
        granted = access.visible[table.name]
        hidden = [c for c in table.column_names if c not in granted]
        masked = [c for t, c in access.masked if t == table.name]
        assert hidden or masked, f"{table.name}: nothing denied or masked"
        for column in hidden + masked:
            used = [
                c.param_id
                for c in CORPUS
                if re.search(rf"\b{column}\b", c.sql, flags=re.IGNORECASE)
            ]
            assert not used, f"{table.name}.{column} is hidden from the role but used by {used}"
