"""Noninterference: the data moat as a tested property.

sqlagent's promise is that for any statement the guard allows for a role, the result never
depends on values that role may not read. This package turns that into a test: two databases
identical except the protected values (:mod:`.schema`), every allowed statement executed on both
through the real read-only executor, and the outcomes compared (:mod:`.harness`). The statements
come from a hand-written attack corpus (``tests/fixtures/noninterference/*.sql``, read by
:mod:`.corpus`) and from Hypothesis (:mod:`.strategies`). ``benchmarks/noninterference.py`` runs
the same harness at a larger scale.
"""
