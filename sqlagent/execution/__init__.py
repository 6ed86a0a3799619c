"""Read-only execution: the second, independent safety layer, with time limits and row caps.

The validator (:mod:`sqlagent.safety`) refuses writes on the syntax tree. The
:class:`ReadOnlyExecutor` makes the *database* refuse them too, so a write still fails if the
validator is bypassed or wrong: SQLite opens files read-only with ``query_only`` and an
authorizer; PostgreSQL, MySQL/MariaDB and Oracle run each statement in a read-only transaction
that is always rolled back. Every run has a time limit enforced by the database (or SQLite's
progress handler) and fetches at most ``max_rows + 1`` rows. Failures are typed:
:class:`~sqlagent.errors.ReadOnlyViolationError`, :class:`~sqlagent.errors.QueryTimeoutError`,
or :class:`~sqlagent.errors.ExecutionError` carrying the database's message for the model.

:class:`Executor` is the one-method protocol the agent depends on; any object with ``run`` and
``close`` fits.
"""

from sqlagent.execution._base import ExecutionResult, Executor
from sqlagent.execution._executor import ReadOnlyExecutor, executor_for

__all__ = ["ExecutionResult", "Executor", "ReadOnlyExecutor", "executor_for"]
