"""Reader for the data-file safety fixtures in ``tests/fixtures/safety/*.sql``.

One file per dialect (its stem names the dialect); ``policy.sql`` holds role cases, checked on
SQLite with ``policy.yaml``. A case looks like::

    -- case: delete_plain
    -- expect: reject not_read_only
    -- reason: data modification
    DELETE FROM employees;

Header lines follow the ``-- case:`` line directly; the first line that is not a ``-- key: value``
header starts the SQL, which runs verbatim up to the next ``-- case:`` line (surrounding blank
lines removed). Anything malformed raises :class:`FixtureError`: a broken fixture must fail the
suite, never silently drop a case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sqlagent.types import ViolationCode

__all__ = [
    "POLICY_FILE",
    "Case",
    "FixtureError",
    "RawCase",
    "load_fixtures",
    "parse_fixture",
    "split_cases",
]

#: The file whose cases run with a role policy (on SQLite).
POLICY_FILE = "policy"

_CASE = re.compile(r"^-- case:\s*(?P<id>\S*)\s*$")
_HEADER = re.compile(r"^-- (?P<key>[a-z][a-z-]*):(?P<value>.*)$")
_ID = re.compile(r"^[a-z0-9_]+$")
_SINGLE = frozenset({"expect", "reason", "role", "max-rows", "xfail"})
_REPEATABLE = frozenset({"sql-contains", "sql-not-contains", "suggests"})
_CODES = frozenset(str(c) for c in ViolationCode)


class FixtureError(ValueError):
    """A fixture file that does not follow the format."""


@dataclass(frozen=True, slots=True)
class Case:
    """One fixture case: a statement and what the guard must decide about it."""

    source: str  # file stem: a dialect, or "policy"
    id: str
    line: int
    sql: str
    reason: str
    allow: bool
    codes: tuple[str, ...] = ()
    role: str | None = None
    max_rows: int | None = None
    sql_contains: tuple[str, ...] = ()
    sql_not_contains: tuple[str, ...] = ()
    suggests: tuple[str, ...] = ()
    xfail: str | None = None

    @property
    def param_id(self) -> str:
        return f"{self.source}::{self.id}"

    @property
    def dialect(self) -> str:
        return "sqlite" if self.source == POLICY_FILE else self.source


def _build(source: str, case_id: str, line: int, headers: dict[str, list[str]], sql: str) -> Case:
    where = f"{source}.sql:{line} ({case_id})"

    def one(key: str) -> str | None:
        values = headers.get(key)
        return values[0] if values else None

    expect, reason = one("expect"), one("reason")
    if not expect:
        raise FixtureError(f"{where}: missing '-- expect:'")
    if not reason:
        raise FixtureError(f"{where}: missing '-- reason:'")
    verb, _, rest = expect.partition(" ")
    codes = tuple(c.strip() for c in rest.split(",") if c.strip())
    if verb == "allow":
        if codes:
            raise FixtureError(f"{where}: 'allow' takes no violation codes")
    elif verb == "reject":
        if not codes:
            raise FixtureError(f"{where}: 'reject' needs at least one violation code")
        unknown = [c for c in codes if c not in _CODES]
        if unknown:
            raise FixtureError(f"{where}: unknown violation code(s) {unknown}")
    else:
        raise FixtureError(f"{where}: expect must be 'allow' or 'reject <code>[,<code>]'")
    role = one("role")
    if role is not None and source != POLICY_FILE:
        raise FixtureError(f"{where}: '-- role:' is only allowed in {POLICY_FILE}.sql")
    contains = tuple(headers.get("sql-contains", []))
    not_contains = tuple(headers.get("sql-not-contains", []))
    if verb == "reject" and (contains or not_contains):
        raise FixtureError(f"{where}: sql-contains/sql-not-contains need an allowed statement")
    suggests = tuple(headers.get("suggests", []))
    if suggests and verb != "reject":
        raise FixtureError(f"{where}: 'suggests' needs a rejected statement")
    raw_rows = one("max-rows")
    max_rows: int | None = None
    if raw_rows is not None:
        if not raw_rows.isdigit() or int(raw_rows) < 1:
            raise FixtureError(f"{where}: max-rows must be a positive integer")
        max_rows = int(raw_rows)
    xfail = one("xfail")
    if xfail is not None and not xfail:
        raise FixtureError(f"{where}: '-- xfail:' needs a reason")
    return Case(
        source=source, id=case_id, line=line, sql=sql, reason=reason, allow=verb == "allow",
        codes=codes, role=role, max_rows=max_rows, sql_contains=contains,
        sql_not_contains=not_contains, suggests=suggests, xfail=xfail,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class RawCase:
    """One case as written: its id, line, headers (each key's values in order) and statement."""

    id: str
    line: int
    headers: dict[str, list[str]]
    sql: str


def split_cases(
    text: str,
    source: str,
    *,
    single: frozenset[str],
    repeatable: frozenset[str] = frozenset(),
    error: type[ValueError] = ValueError,
) -> list[RawCase]:
    """Split a ``-- case:`` file into its cases (shared by every corpus in this format).

    ``single`` headers may appear once per case, ``repeatable`` ones any number of times; any
    other header, a duplicate id, an id outside ``[a-z0-9_]+`` or text before the first case
    raises ``error``.
    """
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("-- case:")]
    preamble = lines[: starts[0]] if starts else lines
    stray = [ln for ln in preamble if ln.strip() and not ln.startswith("--")]
    if stray or not starts:
        raise error(f"{source}.sql: text before the first '-- case:' or no cases at all")
    cases: list[RawCase] = []
    seen: set[str] = set()
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        match = _CASE.match(lines[start])
        case_id = match.group("id") if match else ""
        if not _ID.match(case_id):
            raise error(f"{source}.sql:{start + 1}: case id must match [a-z0-9_]+")
        if case_id in seen:
            raise error(f"{source}.sql:{start + 1}: duplicate case id {case_id!r}")
        seen.add(case_id)
        headers: dict[str, list[str]] = {}
        i = start + 1
        while i < end and (header := _HEADER.match(lines[i])):
            key, value = header.group("key"), header.group("value").strip()
            if key not in single | repeatable:
                raise error(f"{source}.sql:{i + 1}: unknown header '-- {key}:'")
            if key in single and key in headers:
                raise error(f"{source}.sql:{i + 1}: header '-- {key}:' given twice")
            headers.setdefault(key, []).append(value)
            i += 1
        body = lines[i:end]
        while body and not body[0].strip():
            body.pop(0)
        while body and not body[-1].strip():
            body.pop()
        cases.append(RawCase(case_id, start + 1, headers, "\n".join(body)))
    return cases


def parse_fixture(text: str, source: str) -> list[Case]:
    """Parse the text of one fixture file; ``source`` is its stem (dialect or ``policy``)."""
    raw = split_cases(text, source, single=_SINGLE, repeatable=_REPEATABLE, error=FixtureError)
    return [_build(source, c.id, c.line, c.headers, c.sql) for c in raw]


def load_fixtures(directory: Path) -> list[Case]:
    """Every case of every ``*.sql`` file in ``directory``, files in name order."""
    files = sorted(directory.glob("*.sql"))
    if not files:
        raise FixtureError(f"no fixture files in {directory}")
    cases: list[Case] = []
    for path in files:
        cases.extend(parse_fixture(path.read_text(encoding="utf-8"), path.stem))
    return cases
