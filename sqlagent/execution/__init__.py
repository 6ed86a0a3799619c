"""Read-only execution: the second, independent safety layer, with time, row and size limits.

The validator (:mod:`sqlagent.safety`) refuses writes on the syntax tree. The
:class:`ReadOnlyExecutor` makes the *database* refuse them too, so a write still fails if the
validator is bypassed or wrong: SQLite opens files read-only with ``query_only`` and an
authorizer; PostgreSQL, MySQL/MariaDB and Oracle run each statement in a read-only transaction
that is always rolled back, after the server has confirmed (PostgreSQL, MySQL/MariaDB) that the
statement is a plain query. Every run has a time limit enforced by the database (or SQLite's
progress handler), fetches at most ``max_rows + 1`` rows and at most about
``max_result_bytes`` bytes. Failures are typed: :class:`~sqlagent.errors.ReadOnlyViolationError`,
:class:`~sqlagent.errors.QueryTimeoutError`, :class:`~sqlagent.errors.ResultTooLargeError`, or
:class:`~sqlagent.errors.ExecutionError` carrying the database's message for the model.

:func:`check_privileges` tells whether the database login holds more than reading needs
(:class:`PrivilegeFinding` rows): the layer beneath both, a login that can only read.

:class:`Executor` is the one-method protocol the agent depends on; any object with ``run`` and
``close`` fits.
"""

from sqlagent.execution._base import DEFAULT_MAX_RESULT_BYTES, ExecutionResult, Executor
from sqlagent.execution._executor import ReadOnlyExecutor, executor_for
from sqlagent.execution._privileges import (
    FindingKind,
    PrivilegeFinding,
    check_privileges,
    summarize_findings,
)

__all__ = [
    "DEFAULT_MAX_RESULT_BYTES",
    "ExecutionResult",
    "Executor",
    "FindingKind",
    "PrivilegeFinding",
    "ReadOnlyExecutor",
    "check_privileges",
    "executor_for",
    "summarize_findings",
]
