"""The hand-written attack corpus against the noninterference property, on all three engines.

Each case of ``tests/fixtures/noninterference/<engine>.sql`` is judged for each of its roles (on
MariaDB also with the catalog reflected under the database's name, so that ``db.table`` is
grounded); if the guard allows it, both databases of the pair must give the same outcome. A leak
fails the test with both outcomes. Each case must also be a real attack: run raw, without the
guard, its outcome differs between the two databases (else it could never catch anything).
See :mod:`tests.safety.noninterference.harness` for how differences are kept real.
"""

from __future__ import annotations

import pytest

from tests.safety.conftest import PairFactory
from tests.safety.noninterference.corpus import (
    LEAK_CLASSES,
    REQUIRED_CLASSES,
    Case,
    CorpusError,
    load_corpus,
    parse_corpus,
)
from tests.safety.noninterference.harness import CATALOG_MODES, Kind
from tests.safety.noninterference.schema import ENGINES

_MARKS = {"sqlite": [], "postgres": [pytest.mark.postgres], "mysql": [pytest.mark.mysql]}
CASES = {engine: load_corpus(engine) for engine in ENGINES}


def _judged() -> list[object]:
    params: list[object] = []
    for engine, cases in CASES.items():
        for case in cases:
            for mode in CATALOG_MODES[engine]:
                for role in case.roles:
                    suffix = "" if mode == "plain" else f"/{mode}-catalog"
                    params.append(pytest.param(
                        case, role, mode, id=f"{case.param_id}[{role}{suffix}]",
                        marks=_MARKS[engine],
                    ))  # fmt: skip
    return params


def _attacks() -> list[object]:
    return [
        pytest.param(case, id=case.param_id, marks=_MARKS[case.engine])
        for cases in CASES.values()
        for case in cases
    ]


@pytest.mark.parametrize(("case", "role", "mode"), _judged())
@pytest.mark.slow
def test_allowed_corpus_statement_gives_the_same_outcome_on_both_databases(
    ni_pairs: PairFactory, case: Case, role: str, mode: str
) -> None:
    pair = ni_pairs(case.engine)
    finding = pair.judge(case.sql, role, catalog=mode)
    context = f"{case.param_id} ({case.leak_class}: {case.reason})\n{finding.describe()}"
    assert finding.kind is not Kind.LEAK, f"LEAK of protected values: {context}"
    # Corpus cases are written to be deterministic and fast: anything else is a broken case.
    assert finding.kind in (Kind.REJECTED, Kind.SAME), context


@pytest.mark.parametrize("case", _attacks())
@pytest.mark.slow
def test_corpus_case_is_a_real_attack(ni_pairs: PairFactory, case: Case) -> None:
    """Run raw (no guard), the statement tells the two databases apart — or the case says not."""
    raw = ni_pairs(case.engine).run_raw(case.sql)
    detail = f"{case.param_id}: {case.reason}\n{raw.describe()}"
    if case.raw_differs:
        assert raw.kind is Kind.LEAK, f"the case cannot detect a leak: {detail}"
    else:
        assert raw.kind is Kind.SAME, detail


@pytest.mark.parametrize("engine", ENGINES)
def test_corpus_covers_every_leak_class(engine: str) -> None:
    covered = {case.leak_class for case in CASES[engine]}
    missing = REQUIRED_CLASSES[engine] - covered
    assert not missing, f"{engine}.sql has no case for {sorted(missing)}"
    assert len(CASES[engine]) >= 80


def test_every_leak_class_is_described_and_used() -> None:
    used = {case.leak_class for cases in CASES.values() for case in cases}
    assert used == set(LEAK_CLASSES)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-- case: a\n-- class: json\n-- reason: r\nSELECT 1", "missing '-- role:'"),
        ("-- case: a\n-- role: viewer\n-- reason: r\nSELECT 1", "missing '-- class:'"),
        ("-- case: a\n-- role: viewer\n-- class: json\nSELECT 1", "missing '-- reason:'"),
        ("-- case: a\n-- role: boss\n-- class: json\n-- reason: r\nSELECT 1", "unknown role"),
        ("-- case: a\n-- role: viewer\n-- class: nope\n-- reason: r\nSELECT 1", "unknown class"),
        ("-- case: a\n-- role: viewer\n-- class: json\n-- reason: r\n-- raw: maybe\nSELECT 1",
         "'-- raw:' must be"),
        ("-- case: a\n-- role: viewer\n-- class: json\n-- reason: r\n-- reasn: x\nSELECT 1",
         "unknown header"),
        ("-- case: a\n-- role: viewer\n-- class: json\n-- reason: r\n", "no statement"),
        ("-- case: a\n-- role: viewer\n-- class: json\n-- reason: r\nSELECT 1\n"
         "-- case: a\n-- role: viewer\n-- class: json\n-- reason: r\nSELECT 2", "duplicate"),
        ("SELECT 1\n-- case: a\n-- role: viewer\n-- class: json\n-- reason: r\nSELECT 1",
         "before the first"),
    ],
)  # fmt: skip
def test_malformed_corpus_fails_loudly(text: str, message: str) -> None:
    with pytest.raises(CorpusError, match=message):
        parse_corpus(text, "sqlite")


def test_corpus_statement_runs_to_the_next_case() -> None:
    text = (
        "-- case: first\n-- role: viewer, sys\n-- class: json\n-- reason: r\n"
        "SELECT 1\n-- a comment inside\nFROM departments;\n\n"
        "-- case: second\n-- role: masker\n-- class: json\n-- reason: r\n-- raw: same\nSELECT 2"
    )
    first, second = parse_corpus(text, "postgres")
    assert first.sql == "SELECT 1\n-- a comment inside\nFROM departments;"
    assert first.roles == ("viewer", "sys")
    assert (second.roles, second.raw_differs, second.engine) == (("masker",), False, "postgres")
