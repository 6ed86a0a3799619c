"""The noninterference harness: a pair of databases, the guard, and the comparison.

**Property.** Two databases that are identical except the values a role may not read (see
:mod:`.schema`): for every statement ``Guard.check(sql, role=R)`` allows, executing
``verdict.sql`` through the real :class:`~sqlagent.execution.ReadOnlyExecutor` gives the same
outcome on both — the same column names and rows (as a multiset, or as a sequence when the
statement has a top-level ``ORDER BY``), or the same error. Any difference is a leak.

**How a reported difference is kept real.** Nothing about the statement may differ between the
two runs except the protected values, so:

* *The pair is physically identical.* Both databases are built by the same code from the same
  DDL, rows inserted in the same order; only protected cells differ. Tables hold tens of rows, so
  each fits in one page in both variants (the planner sees the same sizes); PostgreSQL tables have
  autovacuum off and are never analysed (no statistics of secret columns), and both PostgreSQL
  databases are copies of one template, so even object OIDs and TOAST table names agree; MariaDB
  databases use a binary collation, and no index (InnoDB's clustered primary key included) is on
  a column whose values differ. On such a pair an
  engine resolves every choice SQL leaves open (row order without ``ORDER BY``, ties, which rows a
  ``LIMIT`` keeps, SQLite's bare columns) the same way on both sides *unless the choice read a
  protected value* — which is then a real flow of protected data.
* *Each side reads only itself.* MariaDB sides are read by a user granted only its own database
  (``information_schema`` then lists the same objects on both, whatever else the server holds).
  Statements may name "this database" with the placeholders ``{db}`` and ``{schema}``, rendered
  per side (``{db}.public.t`` on PostgreSQL, ``{db}.t`` on MariaDB, ``main.t`` on SQLite), and the
  database's own name (and its user, and the SQLite file path) is replaced by ``<db>`` in every
  cell, column label and error message before comparing.
* *Differences are confirmed.* When the outcomes differ, both sides run again; if either side
  does not reproduce its own outcome (``random()``, ``now()``, a backend pid) the statement is
  ``unstable``, not a leak. A timeout on either side is ``timeout``: timing is out of scope. An
  unordered result that passes the executor's row cap on both sides is ``truncated`` and not
  compared (which rows come first is not fixed); past the cap on one side only is a leak.
* *The statements avoid what is unspecified.* The generators put ``LIMIT`` only after an
  ``ORDER BY`` of every output column, use only tie-blind window functions, give scalar
  subqueries one row by construction, and group by every plain output (see :mod:`.strategies`);
  the corpus cases are written the same way. So for them the comparison needs none of the above,
  which is the belt to its braces.
* *The harness is itself tested*: on a control pair built from one variant twice and an
  all-access role (nothing protected: any difference would be a harness bug), and on statements
  the guard rejects, which are never run.
"""

from __future__ import annotations

import contextlib
import enum
import shutil
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from sqlagent import Guard, Policy, SafetyConfig, Verdict, reflect_catalog
from sqlagent.catalog import Catalog
from sqlagent.errors import ExecutionError, QueryTimeoutError
from sqlagent.execution import ReadOnlyExecutor
from tests.dbservers import DB_SUFFIX, MYSQL_ADMIN_URL, PG_ADMIN_URL
from tests.safety.noninterference import schema

__all__ = [
    "CATALOG_MODES",
    "DIALECTS",
    "Finding",
    "Kind",
    "Outcome",
    "Pair",
    "ServerUnavailable",
    "Side",
    "build_pair",
]

#: engine -> sqlglot dialect of the guard.
DIALECTS = {"sqlite": "sqlite", "postgres": "postgres", "mysql": "mysql"}
#: The executor's limits: enough rows for every generated statement's full result in most cases,
#: and a time limit that cross joins with system views stay well inside.
MAX_ROWS = 1000
TIMEOUT_S = 5.0
_MYSQL_PASSWORD = "ni-read-only"


class ServerUnavailable(RuntimeError):
    """The database server for an engine does not answer (tests skip, the benchmark reports)."""


class Kind(enum.StrEnum):
    REJECTED = "rejected"  # the guard refused it: never run
    SAME = "same"  # allowed, and both sides agree
    LEAK = "leak"  # allowed, and the sides disagree reproducibly
    UNSTABLE = "unstable"  # a side did not reproduce its own outcome (volatile functions)
    TIMEOUT = "timeout"  # a side ran past the time limit: timing is out of scope
    VERDICT_DIFFERS = "verdict_differs"  # the per-side renderings were judged differently
    TRUNCATED = "truncated"  # both passed the row cap, unordered: which rows came is not fixed


# -- outcomes --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Outcome:
    """What one execution gave, normalized: columns and rows, or an error, or a timeout."""

    columns: tuple[str, ...] = ()
    rows: tuple[tuple[tuple[str, str], ...], ...] = ()
    truncated: bool = False
    error: str | None = None
    timeout: bool = False

    def same_as(self, other: Outcome, *, ordered: bool) -> bool:
        if (self.error, self.timeout, self.columns, self.truncated) != (
            other.error, other.timeout, other.columns, other.truncated,
        ):  # fmt: skip
            return False
        if ordered:
            return self.rows == other.rows
        return Counter(self.rows) == Counter(other.rows)

    def brief(self, limit: int = 6) -> str:
        if self.timeout:
            return "timeout"
        if self.error is not None:
            return f"error: {self.error}"
        shown = [tuple(v for _, v in row) for row in self.rows[:limit]]
        more = f" ... ({len(self.rows)} rows{', truncated' if self.truncated else ''})"
        return f"{list(self.columns)} {shown}{more if len(self.rows) > limit else ''}"


def _cell(value: Any, aliases: Sequence[str]) -> tuple[str, str]:
    """A hashable, exact, alias-free form of one cell (floats by repr: NaN equals NaN)."""
    if isinstance(value, memoryview):
        value = bytes(value)
    if isinstance(value, str):
        return ("str", _scrub(value, aliases))
    return (type(value).__name__, _scrub(repr(value), aliases))


def _scrub(text: str, aliases: Sequence[str]) -> str:
    for alias in aliases:
        text = text.replace(alias, "<db>")
    return text


def is_ordered(sql: str, dialect: str) -> bool:
    """Whether the statement fixes the order of its rows (a top-level ORDER BY)."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except SqlglotError:
        return False
    while isinstance(tree, exp.Subquery) and not tree.alias:
        tree = tree.this
    return tree.args.get("order") is not None


# -- the pair --------------------------------------------------------------------------------------
@dataclass
class Side:
    label: str  # "a" or "b": which database of the pair
    variant: str  # which protected values it holds
    url: str
    db_name: str  # what {db} renders to
    schema_name: str  # what {schema} renders to
    aliases: tuple[str, ...]  # names of this database scrubbed from outcomes
    executor: ReadOnlyExecutor | None = None

    def render(self, template: str) -> str:
        return template.replace("{db}", self.db_name).replace("{schema}", self.schema_name)

    def run(self, sql: str, scrub: Sequence[str]) -> Outcome:
        assert self.executor is not None
        try:
            result = self.executor.run(sql)
        except QueryTimeoutError:
            return Outcome(timeout=True)
        except ExecutionError as exc:
            return Outcome(error=f"{type(exc).__name__}: {_scrub(str(exc), scrub)}")
        return Outcome(
            columns=tuple(_scrub(c, scrub) for c in result.columns),
            rows=tuple(tuple(_cell(v, scrub) for v in row) for row in result.rows),
            truncated=result.truncated,
        )


@dataclass
class Finding:
    """The judgement of one statement for one role on one pair."""

    engine: str
    role: str
    template: str
    kind: Kind
    sql: str | None = None  # the allowed statement, as run on side a
    verdict: Verdict | None = None
    outcomes: tuple[Outcome, Outcome] | None = None
    ordered: bool = False

    def describe(self) -> str:
        lines = [f"[{self.engine}] role={self.role} {self.kind}: {self.template}"]
        if self.sql is not None:
            lines.append(f"  ran: {self.sql}")
        if self.outcomes is not None:
            lines.append(f"  a: {self.outcomes[0].brief()}")
            lines.append(f"  b: {self.outcomes[1].brief()}")
        if self.verdict is not None and not self.verdict.allowed:
            lines.append(f"  verdict: {self.verdict.summary()}")
        return "\n".join(lines)


#: Which catalogs the guard may be built from, per engine: ``plain`` is reflected without a
#: schema (the usual configuration); ``schema`` is reflected with the side's own database as
#: schema (MariaDB), so that ``db.table`` names are grounded: each side then has its own guard.
CATALOG_MODES: dict[str, tuple[str, ...]] = {
    "sqlite": ("plain",),
    "postgres": ("plain",),
    "mysql": ("plain", "schema"),
}


@dataclass
class Pair:
    """Two databases of :mod:`.schema` that differ only in protected values, and the guard."""

    engine: str
    sides: tuple[Side, Side]
    catalog: Catalog  # reflected from side a
    policy: Policy
    cleanup: list[Any] = field(default_factory=list)
    _guards: dict[str, tuple[Guard, Guard]] = field(default_factory=dict)

    @property
    def dialect(self) -> str:
        return DIALECTS[self.engine]

    def _guard(self, catalog: Catalog) -> Guard:
        # No row cap from the guard (the executor caps what is fetched, and an injected LIMIT
        # would need a total order).
        return Guard(
            dialect=self.dialect, catalog=catalog, policy=self.policy,
            config=SafetyConfig(max_rows=None),
        )  # fmt: skip

    def guards(self, mode: str = "plain") -> tuple[Guard, Guard]:
        """The guard that judges each side's rendering of a statement."""
        if mode not in CATALOG_MODES[self.engine]:
            raise ValueError(f"catalog mode {mode!r} is not used for {self.engine}")
        if mode not in self._guards:
            if mode == "plain":
                guard = self._guard(self.catalog)
                self._guards[mode] = (guard, guard)
            else:
                a, b = (
                    self._guard(reflect_catalog(side.url, schema=side.db_name))
                    for side in self.sides
                )
                self._guards[mode] = (a, b)
        return self._guards[mode]

    @property
    def scrub(self) -> tuple[str, ...]:
        names = {a for side in self.sides for a in side.aliases}
        return tuple(sorted(names, key=len, reverse=True))  # longest first: paths before names

    def judge(self, template: str, role: str, *, catalog: str = "plain") -> Finding:
        """Check ``template`` (rendered per side) for ``role``; run and compare if allowed."""
        a, b = self.sides
        guard_a, guard_b = self.guards(catalog)
        sql_a, sql_b = a.render(template), b.render(template)
        verdict_a = guard_a.check(sql_a, role=role)
        same_check = sql_b == sql_a and guard_b is guard_a
        verdict_b = verdict_a if same_check else guard_b.check(sql_b, role=role)
        base = Finding(self.engine, role, template, Kind.REJECTED, verdict=verdict_a)
        if not verdict_a.allowed and not verdict_b.allowed:
            return base
        if verdict_a.allowed != verdict_b.allowed:
            base.kind = Kind.VERDICT_DIFFERS
            return base
        assert verdict_a.sql is not None
        assert verdict_b.sql is not None
        base.sql = verdict_a.sql
        return self.compare(base, verdict_a.sql, verdict_b.sql)

    def run_raw(self, template: str) -> Finding:
        """Run ``template`` on both sides *without* the guard: what the attack would give."""
        a, b = self.sides
        finding = Finding(self.engine, "(raw)", template, Kind.SAME, sql=a.render(template))
        return self.compare(finding, a.render(template), b.render(template))

    def compare(self, finding: Finding, sql_a: str, sql_b: str) -> Finding:
        """Run ``sql_a`` on side a and ``sql_b`` on side b and classify the difference."""
        a, b = self.sides
        scrub = self.scrub
        ordered = is_ordered(sql_a, self.dialect)
        first = (a.run(sql_a, scrub), b.run(sql_b, scrub))
        finding.ordered, finding.outcomes = ordered, first
        if first[0].timeout or first[1].timeout:
            finding.kind = Kind.TIMEOUT
        elif (
            not ordered
            and first[0].truncated
            and first[1].truncated
            and first[0].columns == first[1].columns
        ):
            # Which max_rows rows an unordered result starts with is not fixed by SQL; that
            # both have more rows than the cap is (one truncated and not the other is a leak).
            finding.kind = Kind.TRUNCATED
        elif first[0].same_as(first[1], ordered=ordered):
            finding.kind = Kind.SAME
        else:
            again = (a.run(sql_a, scrub), b.run(sql_b, scrub))
            stable = all(x.same_as(y, ordered=ordered) for x, y in zip(first, again, strict=True))
            finding.kind = Kind.LEAK if stable else Kind.UNSTABLE
        return finding

    def close(self) -> None:
        for side in self.sides:
            if side.executor is not None:
                side.executor.close()
                side.executor = None
        while self.cleanup:
            step = self.cleanup.pop()
            with contextlib.suppress(Exception):
                step()


# -- building --------------------------------------------------------------------------------------
def _admin_engine(url: str, what: str) -> sa.Engine:
    engine = sa.create_engine(
        url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any driver or connection error means: no server here
        engine.dispose()
        raise ServerUnavailable(
            f"{what} server not reachable at {url}: {type(exc).__name__}"
        ) from exc
    return engine


def _db_name(tag: str, label: str) -> str:
    return f"sqlagent_ni_{tag}_{label}{DB_SUFFIX}"


def _build_sqlite(path: Path, variant: str) -> None:
    path.unlink(missing_ok=True)
    with closing(sqlite3.connect(path)) as conn:
        for statement in schema.ddl("sqlite", variant):
            conn.execute(statement)
        for insert, data in schema.insert_rows("sqlite", variant):
            conn.executemany(insert, [tuple(_sqlite_value(v) for v in row) for row in data])
        conn.commit()


def _sqlite_value(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _load(url: str, engine: str, statements: Sequence[str], variant: str | None) -> None:
    """Run ``statements`` on ``url`` in one transaction, then insert ``variant``'s rows."""
    eng = sa.create_engine(url)
    try:
        with eng.begin() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            with closing(raw.cursor()) as cur:
                for statement in statements:
                    cur.execute(statement)
                if variant is not None:
                    for insert, data in schema.insert_rows(engine, variant):
                        cur.executemany(insert, data)
    finally:
        eng.dispose()


def _build_postgres(tag: str, variants: tuple[str, str], pair_cleanup: list[Any]) -> list[Side]:
    admin = _admin_engine(PG_ADMIN_URL, "PostgreSQL")
    template = _db_name(tag, "t")
    names = [_db_name(tag, label) for label in ("a", "b")]

    def drop(name: str) -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))

    for name in [template, *names]:
        drop(name)
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {template}"))
    pair_cleanup.append(admin.dispose)
    base = admin.url
    try:
        # The template holds the empty tables; both sides are copies of it, so every object of
        # the database (tables, TOAST tables, indexes) has the same OID and name on both.
        template_url = base.set(database=template).render_as_string(hide_password=False)
        _load(template_url, "postgres", schema.ddl("postgres", "a", template=True), None)
        sides = []
        for label, variant, name in zip(("a", "b"), variants, names, strict=True):
            with admin.connect() as conn:
                conn.execute(sa.text(f"CREATE DATABASE {name} TEMPLATE {template}"))
            pair_cleanup.append(lambda n=name: drop(n))
            url = base.set(database=name).render_as_string(hide_password=False)
            extra = schema.variant_ddl("postgres", variant)
            _load(url, "postgres", extra + schema.hidden_objects("postgres", variant), variant)
            sides.append(Side(label, variant, url, name, "public", (name,)))
        return sides
    finally:
        drop(template)


def _build_mysql(tag: str, variants: tuple[str, str], pair_cleanup: list[Any]) -> list[Side]:
    admin = _admin_engine(MYSQL_ADMIN_URL, "MariaDB/MySQL")
    pair_cleanup.append(admin.dispose)
    sides = []
    for label, variant in zip(("a", "b"), variants, strict=True):
        name = _db_name(tag, label)
        user = name  # one read-only user per database, named like it

        def drop(n: str = name, u: str = user) -> None:
            with admin.connect() as conn:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {n}"))
                conn.execute(sa.text(f"DROP USER IF EXISTS '{u}'@'%'"))

        drop()
        with admin.connect() as conn:
            conn.execute(
                sa.text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            )
            conn.execute(sa.text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{_MYSQL_PASSWORD}'"))
            conn.execute(sa.text(f"GRANT SELECT ON {name}.* TO '{user}'@'%'"))
        pair_cleanup.append(drop)
        root_url = admin.url.set(database=name).render_as_string(hide_password=False)
        _load(root_url, "mysql", schema.ddl("mysql", variant), variant)
        url = admin.url.set(username=user, password=_MYSQL_PASSWORD, database=name)
        sides.append(
            Side(label, variant, url.render_as_string(hide_password=False), name, name, (name,))
        )
    return sides


def build_pair(
    engine: str,
    *,
    control: bool = False,
    directory: Path | None = None,
    timeout_s: float = TIMEOUT_S,
    max_rows: int = MAX_ROWS,
) -> Pair:
    """Build the pair for ``engine``: variants ``a``/``b``, or ``a`` twice when ``control``.

    Server engines raise :class:`ServerUnavailable` when no server answers. Database names carry
    ``DB_SUFFIX`` (``sqlagent_ni_p_a<suffix>``; ``c`` instead of ``p`` for the control pair);
    :meth:`Pair.close` drops everything that was created.
    """
    variants = ("a", "a") if control else ("a", "b")
    tag = "c" if control else "p"
    cleanup: list[Any] = []
    try:
        if engine == "sqlite":
            root = directory or Path(tempfile.mkdtemp(prefix="sqlagent_ni_"))
            if directory is None:
                cleanup.append(lambda: shutil.rmtree(root, ignore_errors=True))
            sides = []
            for label, variant in zip(("a", "b"), variants, strict=True):
                path = root / f"ni_{tag}_{label}.sqlite"
                _build_sqlite(path, variant)
                aliases = (str(path.resolve()), str(path), path.name)
                sides.append(Side(label, variant, f"sqlite:///{path}", "main", "main", aliases))
        elif engine == "postgres":
            sides = _build_postgres(tag, variants, cleanup)
        elif engine == "mysql":
            sides = _build_mysql(tag, variants, cleanup)
        else:
            raise ValueError(f"unknown engine {engine!r}")
        catalog = reflect_catalog(sides[0].url)
        pair = Pair(
            engine=engine,
            sides=(sides[0], sides[1]),
            catalog=catalog,
            policy=Policy.from_mapping(schema.policy_mapping(engine)),
            cleanup=cleanup,
        )
        for side in pair.sides:
            side.executor = ReadOnlyExecutor(side.url, timeout_s=timeout_s, max_rows=max_rows)
        return pair
    except BaseException:
        while cleanup:
            with contextlib.suppress(Exception):
                cleanup.pop()()
        raise
