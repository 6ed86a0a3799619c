"""The safety core against the data-file fixtures in ``tests/fixtures/safety/``.

Each case is one parameter (``<dialect>::<case id>``). Cases marked ``-- xfail:`` are known
validator bugs, recorded as strict xfails so that a fix turns them into a failure to un-mark.
Every allowed statement is also re-checked: the rewritten SQL must itself be allowed and come
back unchanged, so what runs is a fixed point of the guard.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sqlagent import Catalog, Guard, Policy, SafetyConfig
from tests.safety.fixture_loader import (
    POLICY_FILE,
    Case,
    FixtureError,
    load_fixtures,
    parse_fixture,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SAFETY = FIXTURES / "safety"
DIALECT_FILES = ("sqlite", "postgres", "mysql", "oracle")

CASES = load_fixtures(SAFETY)
CATALOG = Catalog.from_json(FIXTURES / "catalog.json")
POLICY = Policy.from_file(SAFETY / "policy.yaml")


def _param(case: Case) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(case, id=case.param_id, marks=marks)


def _guard(case: Case) -> Guard:
    return Guard(
        dialect=case.dialect,
        catalog=CATALOG,
        policy=POLICY if case.source == POLICY_FILE else None,
        config=SafetyConfig(max_rows=case.max_rows),
    )


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_fixture(case: Case) -> None:
    guard = _guard(case)
    verdict = guard.check(case.sql, role=case.role)
    got = [str(c) for c in verdict.codes]
    context = f"{case.param_id} ({case.reason}): {verdict.summary()} -> {verdict.sql!r}"
    if not case.allow:
        assert not verdict.allowed, f"expected a rejection: {context}"
        assert verdict.sql is None, context
        missing = [c for c in case.codes if c not in got]
        assert not missing, f"missing codes {missing}, got {got}: {context}"
        suggestions = {s for v in verdict.violations for s in v.suggestions}
        for name in case.suggests:
            assert name in suggestions, f"no suggestion {name!r} in {suggestions}: {context}"
        return
    assert verdict.allowed, f"expected to be allowed: {context}"
    assert verdict.sql is not None
    for text in case.sql_contains:
        assert text in verdict.sql, f"{text!r} not in the rewritten SQL: {context}"
    for text in case.sql_not_contains:
        assert text not in verdict.sql, f"{text!r} in the rewritten SQL: {context}"
    again = guard.check(verdict.sql, role=case.role)
    assert again.allowed, f"rewritten SQL rejected on re-check: {again.summary()}: {context}"
    assert again.sql == verdict.sql, f"rewrite is not a fixed point: {again.sql!r}: {context}"


def test_every_dialect_has_a_fixture_file() -> None:
    sources = {c.source for c in CASES}
    assert sources == {*DIALECT_FILES, POLICY_FILE}
    for source in sources:
        assert sum(c.source == source for c in CASES) >= 20, source


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-- case: a\n-- reason: r\nSELECT 1", "missing '-- expect:'"),
        ("-- case: a\n-- expect: allow\nSELECT 1", "missing '-- reason:'"),
        (
            "-- case: a\n-- expect: allow\n-- reason: r\nSELECT 1\n"
            "-- case: a\n-- expect: allow\n-- reason: r\nSELECT 2",
            "duplicate case id",
        ),
        ("-- case: a\n-- expect: reject no_such_code\n-- reason: r\nSELECT 1", "unknown violation"),
        ("-- case: a\n-- expect: reject\n-- reason: r\nSELECT 1", "at least one violation code"),
        ("-- case: a\n-- expect: maybe\n-- reason: r\nSELECT 1", "expect must be"),
        ("-- case: a\n-- expect: allow\n-- reason: r\n-- reasn: typo\nSELECT 1", "unknown header"),
        ("-- case: a\n-- expect: allow\n-- reason: r\n-- reason: r2\nSELECT 1", "given twice"),
        ("-- case: a\n-- expect: allow\n-- reason: r\n-- role: admin\nSELECT 1", "only allowed"),
        ("-- case: a\n-- expect: allow\n-- reason: r\n-- max-rows: ten\nSELECT 1", "max-rows"),
        ("-- case: A-1\n-- expect: allow\n-- reason: r\nSELECT 1", "case id must match"),
        ("SELECT 1\n-- case: a\n-- expect: allow\n-- reason: r\nSELECT 1", "before the first"),
        ("-- just a comment\n", "no cases"),
    ],
)
def test_malformed_fixture_fails_loudly(text: str, message: str) -> None:
    with pytest.raises(FixtureError, match=message):
        parse_fixture(text, "sqlite")


def test_sql_is_verbatim_between_headers_and_next_case() -> None:
    text = (
        "-- leading comment\n\n"
        "-- case: first\n-- expect: allow\n-- reason: r\n-- sql-contains: a\n-- sql-contains: b\n"
        "-- note that this is SQL\nSELECT 1; -- trailing\n\n/* x */\n\n"
        "-- case: second\n-- expect: reject parse_error\n-- reason: empty\n\n"
    )
    first, second = parse_fixture(text, "sqlite")
    assert first.sql == "-- note that this is SQL\nSELECT 1; -- trailing\n\n/* x */"
    assert first.sql_contains == ("a", "b")
    assert first.line == 3
    assert second.sql == ""
    assert second.codes == ("parse_error",)
