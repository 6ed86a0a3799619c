"""Reader for the hand-written attack corpus in ``tests/fixtures/noninterference/*.sql``.

One file per engine (its stem: ``sqlite``, ``postgres``, ``mysql``). A case looks like::

    -- case: cte_shadow_main_qualified
    -- role: analyst, viewer
    -- class: cte-shadowing
    -- reason: a schema-qualified name never refers to a CTE: main.employees is the real table
    WITH employees AS (SELECT 1 AS id, 'x' AS ssn) SELECT e.ssn FROM main.employees e;

``role`` lists the roles the case is judged for (each one is a test), ``class`` names the leak
class it attacks (:data:`LEAK_CLASSES`), ``reason`` says why it would leak. The statement may use
``{db}`` and ``{schema}`` for this database's name and default schema (rendered per side of the
pair). The property: if the guard allows the statement, both databases give the same outcome.

Every case must also be a *real* attack on the pair: run raw, without the guard, its outcome
differs between the two databases (otherwise it could never detect a leak). ``-- raw: same``
marks the few cases where that is not expected, with the reason in ``reason``. Anything malformed
raises :class:`CorpusError`: a broken file must fail the suite, never silently drop a case.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.safety.fixture_loader import split_cases
from tests.safety.noninterference.schema import ENGINES, ROLES

__all__ = ["CORPUS_DIR", "LEAK_CLASSES", "REQUIRED_CLASSES", "Case", "CorpusError", "load_corpus"]

CORPUS_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "noninterference"

#: Every leak class the corpus attacks, with what it means.
LEAK_CLASSES: dict[str, str] = {
    "cte-shadowing": "a CTE named like a table, and a qualified name that reads the real table",
    "ungrounded-source": "a hidden column next to a source outside the catalog (system view, "
    "DUAL, table function) binds to the real table",
    "system-column-grants": "columns of a granted system relation that were not granted",
    "reg-cast": "PostgreSQL reg* casts that tell whether a hidden object exists",
    "masked-filter": "a masked value in WHERE, JOIN ON, HAVING, CASE, LIKE or a subquery",
    "masked-grouping": "a masked value in GROUP BY, DISTINCT, set operations, count(DISTINCT)",
    "masked-ordering": "a masked value in ORDER BY (by name, ordinal, alias or expression)",
    "masked-aggregate": "aggregates and JSON/string aggregation over a masked value",
    "window": "a masked or denied value in a window's PARTITION BY, ORDER BY or argument",
    "error-probe": "an error (cast, division by zero, overflow) that fires on a secret",
    "whole-row": "PostgreSQL whole-row references: e, e::text, row_to_json(e), to_jsonb(e)",
    "natural-using": "NATURAL JOIN and USING that compare hidden columns",
    "alias-tricks": "aliases that the database resolves to another column than the guard",
    "lateral": "LATERAL subqueries over hidden columns",
    "scalar-subquery": "correlated and scalar subqueries that read hidden values",
    "denied-column": "a denied column in any clause, under any spelling",
    "denied-table": "a denied table in any position, under any spelling",
    "star-expansion": "stars that could expand to hidden columns",
    "json": "JSON functions over hidden values",
}
#: Classes each engine's corpus must cover.
REQUIRED_CLASSES: dict[str, frozenset[str]] = {
    "sqlite": frozenset(LEAK_CLASSES) - {"reg-cast", "whole-row", "lateral"},
    "postgres": frozenset(LEAK_CLASSES),
    "mysql": frozenset(LEAK_CLASSES) - {"reg-cast", "whole-row", "lateral"},
}

_KEYS = frozenset({"role", "class", "reason", "raw"})


class CorpusError(ValueError):
    """A corpus file that does not follow the format."""


@dataclass(frozen=True, slots=True)
class Case:
    engine: str
    id: str
    line: int
    sql: str
    roles: tuple[str, ...]
    leak_class: str
    reason: str
    raw_differs: bool = True

    @property
    def param_id(self) -> str:
        return f"{self.engine}::{self.id}"


def _build(engine: str, case_id: str, line: int, headers: dict[str, str], sql: str) -> Case:
    where = f"{engine}.sql:{line} ({case_id})"
    for key in ("role", "class", "reason"):
        if not headers.get(key):
            raise CorpusError(f"{where}: missing '-- {key}:'")
    roles = tuple(r.strip() for r in headers["role"].split(",") if r.strip())
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise CorpusError(f"{where}: unknown role(s) {unknown}; known: {', '.join(ROLES)}")
    if headers["class"] not in LEAK_CLASSES:
        raise CorpusError(f"{where}: unknown class {headers['class']!r}")
    raw = headers.get("raw", "differs")
    if raw not in ("differs", "same"):
        raise CorpusError(f"{where}: '-- raw:' must be 'differs' or 'same'")
    if not sql.strip():
        raise CorpusError(f"{where}: no statement")
    return Case(engine, case_id, line, sql, roles, headers["class"], headers["reason"],
                raw == "differs")  # fmt: skip


def parse_corpus(text: str, engine: str) -> list[Case]:
    """Parse one corpus file; ``engine`` is its stem."""
    if engine not in ENGINES:
        raise CorpusError(f"{engine}.sql: not an engine ({', '.join(ENGINES)})")
    raw = split_cases(text, engine, single=_KEYS, error=CorpusError)
    return [
        _build(engine, c.id, c.line, {k: v[0] for k, v in c.headers.items()}, c.sql) for c in raw
    ]


def load_corpus(engine: str, directory: Path = CORPUS_DIR) -> list[Case]:
    path = directory / f"{engine}.sql"
    if not path.is_file():
        raise CorpusError(f"no corpus file {path}")
    return parse_corpus(path.read_text(encoding="utf-8"), engine)
