"""Noninterference as a property: Hypothesis-generated statements on all three engines.

For every generated statement (:mod:`tests.safety.noninterference.strategies`: a random grammar
over the schema, and attack moves — CTE shadowing, ungrounded sources, system columns, masked
values in every clause, NATURAL/USING, PostgreSQL whole-row and ``reg*`` — in random contexts)
that the guard allows for a role, both databases of the pair give the same outcome.

The harness is tested too, so that the property cannot pass for the wrong reason or fail for one:
the pair really differs (an all-access role sees the difference), a control pair built from one
variant twice shows no difference for an all-access role on any generated or corpus statement,
rejected statements are never run, and volatile statements are ``unstable``, not leaks.

Sizes: ``EXAMPLES`` per engine keep the whole suite within a couple of minutes on two cores;
``benchmarks/noninterference.py --examples N`` runs the same property at any scale.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.safety.conftest import PairFactory
from tests.safety.noninterference.corpus import load_corpus
from tests.safety.noninterference.harness import CATALOG_MODES, Kind, Outcome, is_ordered
from tests.safety.noninterference.schema import ROLES
from tests.safety.noninterference.strategies import Generated, statements

#: Hypothesis examples per engine (derandomized: the same statements on every run).
EXAMPLES = {"sqlite": 2000, "postgres": 1500, "mysql": 1500}
CONTROL_EXAMPLES = 300

_ENGINES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
]


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


@pytest.mark.slow
@pytest.mark.parametrize("engine", _ENGINES)
def test_generated_statements_never_leak(ni_pairs: PairFactory, engine: str) -> None:
    pair = ni_pairs(engine)
    stats: Counter[str] = Counter()

    @_settings(EXAMPLES[engine])
    @given(generated=statements(engine, ROLES), mode=st.sampled_from(CATALOG_MODES[engine]))
    def run(generated: Generated, mode: str) -> None:
        finding = pair.judge(generated.template, generated.role, catalog=mode)
        stats[finding.kind] += 1
        assert finding.kind is not Kind.LEAK, f"LEAK of protected values:\n{finding.describe()}"
        assert finding.kind is not Kind.VERDICT_DIFFERS, finding.describe()

    run()
    # Teeth: enough statements were allowed and ran, and the generator's determinism held.
    executed = stats[Kind.SAME] + stats[Kind.LEAK]
    assert executed >= EXAMPLES[engine] // 20, dict(stats)
    inconclusive = stats[Kind.UNSTABLE] + stats[Kind.TIMEOUT] + stats[Kind.TRUNCATED]
    assert inconclusive <= EXAMPLES[engine] // 100, dict(stats)


@pytest.mark.slow
@pytest.mark.parametrize("engine", _ENGINES)
def test_control_pair_shows_no_difference(ni_pairs: PairFactory, engine: str) -> None:
    """Nothing is protected (one variant twice, an all-access role): a difference would be a
    harness bug (naming, ordering, nondeterminism), never a leak."""
    pair = ni_pairs(engine, control=True)
    stats: Counter[str] = Counter()

    @_settings(CONTROL_EXAMPLES)
    @given(generated=statements(engine, ("admin",)), mode=st.sampled_from(CATALOG_MODES[engine]))
    def run(generated: Generated, mode: str) -> None:
        finding = pair.judge(generated.template, "admin", catalog=mode)
        stats[finding.kind] += 1
        assert finding.kind in (Kind.REJECTED, Kind.SAME), finding.describe()

    run()
    assert stats[Kind.SAME] >= CONTROL_EXAMPLES // 5, dict(stats)
    for case in load_corpus(engine):
        for mode in CATALOG_MODES[engine]:
            finding = pair.judge(case.sql, "admin", catalog=mode)
            assert finding.kind in (Kind.REJECTED, Kind.SAME), finding.describe()
            raw = pair.run_raw(case.sql)
            assert raw.kind is Kind.SAME, raw.describe()


@pytest.mark.parametrize("engine", _ENGINES)
@pytest.mark.slow
def test_the_pair_differs_in_protected_values_only(ni_pairs: PairFactory, engine: str) -> None:
    pair = ni_pairs(engine)
    # an all-access role sees the protected values, which differ ...
    for sql in ("SELECT ssn FROM employees", "SELECT salary FROM employees ORDER BY id",
                "SELECT count(*) AS n FROM employees WHERE bonus IS NULL"):  # fmt: skip
        finding = pair.judge(sql, "admin")
        assert finding.kind is Kind.LEAK, finding.describe()
    # ... and everything else agrees, row for row
    for table in ("departments", "projects", "assignments"):
        finding = pair.judge(f"SELECT * FROM {table}", "admin")
        assert finding.kind is Kind.SAME, finding.describe()
    granted = "id, name, department_id, manager_id, hire_date, rating"
    finding = pair.judge(f"SELECT {granted} FROM employees", "admin")
    assert finding.kind is Kind.SAME, finding.describe()
    assert finding.outcomes is not None
    assert len(finding.outcomes[0].rows) == 24
    finding = pair.judge("SELECT count(*) AS n FROM secrets", "admin")
    assert finding.kind is Kind.SAME, finding.describe()


class _MustNotRun:
    def run(self, sql: str) -> Any:
        raise AssertionError(f"a rejected statement was executed: {sql}")

    def close(self) -> None:
        pass


@pytest.mark.parametrize("engine", _ENGINES)
@pytest.mark.slow
def test_rejected_statements_are_never_run(ni_pairs: PairFactory, engine: str) -> None:
    pair = ni_pairs(engine)
    attacks = {
        "viewer": "SELECT name, ssn FROM employees",
        "analyst": "SELECT name FROM employees WHERE salary > 60000",
        "masker": "SELECT count(*) AS n FROM secrets WHERE level > 1",
    }
    for sql in attacks.values():  # the attacks are real: raw, they tell the databases apart
        assert pair.run_raw(sql).kind is Kind.LEAK
    saved = [side.executor for side in pair.sides]
    try:
        for side in pair.sides:
            side.executor = _MustNotRun()  # type: ignore[assignment]
        for role, sql in attacks.items():
            finding = pair.judge(sql, role)
            assert finding.kind is Kind.REJECTED, finding.describe()
            assert finding.outcomes is None
            assert finding.sql is None
    finally:
        for side, executor in zip(pair.sides, saved, strict=True):
            side.executor = executor


@pytest.mark.parametrize("engine", _ENGINES)
@pytest.mark.slow
def test_volatile_statements_are_unstable_not_leaks(ni_pairs: PairFactory, engine: str) -> None:
    pair = ni_pairs(engine, control=True)
    finding = pair.judge("SELECT d.id, random() AS r FROM departments d", "admin")
    if finding.kind is Kind.REJECTED:
        pytest.skip(f"random() is not allowed on {engine}: {finding.verdict}")
    assert finding.kind is Kind.UNSTABLE, finding.describe()


@pytest.mark.parametrize("engine", _ENGINES)
@pytest.mark.slow
def test_unordered_results_past_the_row_cap_are_not_compared(
    ni_pairs: PairFactory, engine: str
) -> None:
    pair = ni_pairs(engine, control=True)
    big = "SELECT a.task FROM assignments a, assignments b, employees c"  # 21,600 rows
    assert pair.judge(big, "admin").kind is Kind.TRUNCATED
    assert pair.judge(big + " ORDER BY 1", "admin").kind is Kind.SAME


def _outcome(*rows: tuple[Any, ...], columns: tuple[str, ...] = ("a",)) -> Outcome:
    return Outcome(columns=columns, rows=tuple(tuple(("x", repr(v)) for v in r) for r in rows))


def test_outcomes_compare_as_multisets_unless_ordered() -> None:
    one, two = _outcome((1,), (2,), (2,)), _outcome((2,), (1,), (2,))
    assert one.same_as(two, ordered=False)
    assert not one.same_as(two, ordered=True)
    assert not one.same_as(_outcome((1,), (2,)), ordered=False)  # multiplicity counts
    assert not one.same_as(_outcome((1,), (2,), (2,), columns=("b",)), ordered=False)
    assert Outcome(error="E: x").same_as(Outcome(error="E: x"), ordered=False)
    assert not Outcome(error="E: x").same_as(Outcome(error="E: y"), ordered=False)
    assert not Outcome(error="E: x").same_as(_outcome(), ordered=False)
    nan = float("nan")
    assert _outcome((nan,)).same_as(_outcome((nan,)), ordered=True)


@pytest.mark.parametrize(
    ("sql", "dialect", "ordered"),
    [
        ("SELECT a FROM t ORDER BY a", "sqlite", True),
        ("SELECT a FROM t", "sqlite", False),
        ("SELECT a FROM (SELECT a FROM t ORDER BY a) x", "postgres", False),
        ("SELECT a FROM t UNION SELECT b FROM u ORDER BY 1", "mysql", True),
        ("(SELECT a FROM t ORDER BY a)", "postgres", True),
    ],
)
def test_a_statement_fixes_its_order_only_with_a_top_level_order_by(
    sql: str, dialect: str, ordered: bool
) -> None:
    assert is_ordered(sql, dialect) is ordered


@pytest.mark.parametrize("engine", _ENGINES)
@pytest.mark.slow
def test_database_names_are_not_differences(ni_pairs: PairFactory, engine: str) -> None:
    """Each side's own name, in cells and error messages, is scrubbed before comparing."""
    pair = ni_pairs(engine, control=True)
    a, b = pair.sides
    assert a.db_name != b.db_name or engine == "sqlite"
    name_probe = {
        "sqlite": "SELECT file FROM pragma_database_list",
        "postgres": "SELECT current_database() AS d",
        "mysql": "SELECT DATABASE() AS d",
    }[engine]
    raw = pair.run_raw(name_probe)
    assert raw.kind is Kind.SAME, raw.describe()
    missing = pair.run_raw("SELECT nothing FROM {schema}.no_such_table")
    assert missing.kind is Kind.SAME, missing.describe()
    assert missing.outcomes is not None
    assert missing.outcomes[0].error is not None
