"""Validate the same questions' SQL for three roles of the demo HR database, then run it.

Shows deny-by-default roles, column masking and grounding feedback, end to end on a real
SQLite file built by sqlagent's own demo code. Run: python examples/validate_roles.py
"""

from __future__ import annotations

import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

from sqlagent import Guard, Policy, reflect_catalog
from sqlagent.audit import MemoryAuditSink, verdict_event
from sqlagent.demo import write_demo

QUERIES = [
    "SELECT first_name, last_name, salary FROM employees ORDER BY id LIMIT 3",
    "SELECT * FROM employees WHERE id = 1",
    "SELECT avg(salary) FROM employees",
    "SELECT emial FROM employees",
    "SELECT 1; DROP TABLE employees",
]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        demo = write_demo(Path(tmp))
        audit = MemoryAuditSink()
        guard = Guard(
            dialect="sqlite",
            catalog=reflect_catalog(demo.url),
            policy=Policy.from_file(demo.policy),
        )
        for role in ("viewer", "analyst", "hr"):
            print(f"\n=== role: {role}")
            for sql in QUERIES:
                verdict = guard.check(sql, role=role)
                audit.emit(verdict_event(verdict, role=role))  # the guard only judges
                if not verdict.allowed:
                    print(f"REJECTED  {sql}\n          {verdict.summary()}")
                    continue
                assert verdict.sql is not None
                with closing(sqlite3.connect(f"file:{demo.database}?mode=ro", uri=True)) as conn:
                    rows = conn.execute(verdict.sql).fetchall()
                print(f"ALLOWED   {sql}\n    runs: {verdict.sql}\n    rows: {rows[:2]}")
        print(f"\n{len(audit.events)} audit events, one per decision.")
        assert len(audit.events) == 3 * len(QUERIES)


if __name__ == "__main__":
    main()
