"""A tamper-evident audit trail: every decision is one hash-chained JSONL line.

The guard only judges; the caller records each verdict it acts on (``verdict_event`` builds the
same "validate" event ``sqlagent validate`` writes). Writes a few decisions, verifies the chain,
edits one line the way an intruder would, and shows that verification names the line.
Run: python examples/audit_trail.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlagent import Catalog, Guard
from sqlagent.audit import Auditor, JsonlAuditSink, verdict_event, verify_chain


def main() -> None:
    catalog = Catalog.from_mapping({"orders": {"id": "INT", "total": "REAL", "customer": "TEXT"}})
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "audit.jsonl"
        with Auditor([JsonlAuditSink(log, fsync=True)], on_sink_error="fail") as auditor:
            guard = Guard(dialect="postgres", catalog=catalog)
            for sql in [
                "SELECT customer, sum(total) FROM orders GROUP BY customer",
                "DELETE FROM orders",
                "SELECT totl FROM orders",
            ]:
                verdict = guard.check(sql)
                auditor.emit(verdict_event(verdict))
                print(verdict.summary())
        report = verify_chain(log)
        print(f"chain ok={report.ok} lines={report.lines} head={report.head[:16]}...")
        assert report.ok
        assert report.lines == 3

        lines = log.read_text().splitlines()
        lines[1] = lines[1].replace('"rejected"', '"allowed"')  # hide the DELETE attempt
        log.write_text("\n".join(lines) + "\n")
        tampered = verify_chain(log)
        for problem in tampered.problems:
            print(f"line {problem.line}: {problem.kind}: {problem.message}")
        assert not tampered.ok
        assert tampered.problems[0].line == 2


if __name__ == "__main__":
    main()
