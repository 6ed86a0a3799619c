"""Two independent layers: the validator judges the SQL, the executor makes the database refuse
writes anyway, stops long queries and caps rows.

Run: python examples/readonly_execution.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlagent import (
    Guard,
    Policy,
    QueryTimeoutError,
    ReadOnlyExecutor,
    ReadOnlyViolationError,
    reflect_catalog,
)
from sqlagent.demo import write_demo


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        demo = write_demo(Path(tmp))
        guard = Guard(catalog=reflect_catalog(demo.url), policy=Policy.from_file(demo.policy))
        with ReadOnlyExecutor(demo.url, timeout_s=1.0, max_rows=5) as executor:
            verdict = guard.check("SELECT first_name, salary FROM employees", role="analyst")
            assert verdict.allowed
            assert verdict.sql is not None
            result = executor.run(verdict.sql)
            print(result.columns, result.rows[:2], f"truncated={result.truncated}")
            assert result.truncated
            assert len(result.rows) == 5

            # Suppose the validator were bypassed: the database itself still refuses the write.
            try:
                executor.run("DELETE FROM employees")
            except ReadOnlyViolationError as exc:
                print("write refused by the database:", exc)
            else:
                raise AssertionError("the write was not refused")

            slow = (
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                "SELECT max(x) FROM c"
            )
            try:
                executor.run(slow)
            except QueryTimeoutError as exc:
                print("long query stopped:", exc)
            else:
                raise AssertionError("the long query was not stopped")

            after = executor.run("SELECT count(*) FROM employees")
            print("employees still there:", after.rows[0][0])
            assert after.rows[0][0] == 60


if __name__ == "__main__":
    main()
