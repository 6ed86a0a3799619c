"""One error tree for sqlagent.

Every exception sqlagent raises on purpose derives from :class:`SqlAgentError`, so callers can
catch the whole family at once and the CLI can turn each branch into a clean message and exit code
(usage/configuration problems exit 2, refusals and failures exit 1)::

    SqlAgentError
    ├── ConfigError            bad configuration, file or argument: the caller must fix its input
    │   ├── PolicyError        a policy file that does not follow the documented format
    │   ├── CatalogError       a schema file or database that cannot be read as a catalog
    │   ├── DialectError       an unsupported SQL dialect name
    │   └── PrivilegeError     the database login may do more than read, and that is refused
    ├── RejectedError          SQL refused by the safety core; carries the Verdict
    ├── AuditError             an audit sink failed while ``on_sink_error="fail"``
    ├── RetrievalError         the embedder or vector store failed (a chroma server down)
    ├── ExecutionError         a statement failed on the database; carries the database's message
    │   ├── QueryTimeoutError        it ran past the executor's time limit and was stopped
    │   ├── ReadOnlyViolationError   the database itself refused a write (the second safety layer)
    │   └── ResultTooLargeError      its result grew past the executor's ``max_result_bytes``
    └── LLMError               a model backend failed, or its answer could not be used
        ├── LLMUnavailableError      the backend could not be reached, timed out or is overloaded
        └── NoSQLFoundError          the model's answer held no SQL; carries feedback for the model

:class:`LLMUnavailableError` is the "try again or elsewhere" case (connection refused, timeout,
HTTP 5xx/429) that :class:`~sqlagent.llm.FallbackLLM` falls back on by default; a plain
:class:`LLMError` (HTTP 4xx, a malformed response) means the request itself is wrong.

A rejection is normally *returned* as a :class:`~sqlagent.types.Verdict`, not raised:
:class:`RejectedError` exists for callers that prefer exceptions (``Guard.check_or_raise``).
Its ``send_to_llm`` text is written for a model to read and correct its SQL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlagent.types import Verdict

__all__ = [
    "AuditError",
    "CatalogError",
    "ConfigError",
    "DialectError",
    "ExecutionError",
    "LLMError",
    "LLMUnavailableError",
    "NoSQLFoundError",
    "PolicyError",
    "PrivilegeError",
    "QueryTimeoutError",
    "ReadOnlyViolationError",
    "RejectedError",
    "ResultTooLargeError",
    "RetrievalError",
    "SqlAgentError",
]


class SqlAgentError(Exception):
    """Root of every error sqlagent raises on purpose."""


class ConfigError(SqlAgentError):
    """The caller's configuration, file or argument is invalid; nothing was run."""


class PolicyError(ConfigError):
    """A role policy does not follow the documented format."""


class CatalogError(ConfigError):
    """A catalog could not be read from a schema file or a database."""


class DialectError(ConfigError):
    """An unsupported SQL dialect was named."""


class PrivilegeError(ConfigError):
    """The database login holds more privilege than reading needs (superuser, server-file or
    admin privileges, write grants) and the configuration requires a least-privilege login
    (``require_least_privilege: true``), or that could not be verified.

    ``findings`` lists what was found (:class:`~sqlagent.execution.PrivilegeFinding` objects);
    it is empty when the check itself could not run.
    """

    def __init__(self, message: str, *, findings: tuple[object, ...] = ()) -> None:
        self.findings = findings
        super().__init__(message)


class RejectedError(SqlAgentError):
    """The safety core refused a statement.

    ``verdict`` holds every violation; ``send_to_llm`` is feedback meant for a model.
    """

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        super().__init__(verdict.summary())

    @property
    def send_to_llm(self) -> str:
        return self.verdict.feedback()


class AuditError(SqlAgentError):
    """An audit sink could not record an event and the configuration says to fail."""


class ExecutionError(SqlAgentError):
    """A statement failed on the database (:mod:`sqlagent.execution`).

    The message is the database's own, on one line, written to be fed back to a model so it can
    correct its SQL (``send_to_llm``). ``code`` is the database's error code when it gave one
    (a PostgreSQL SQLSTATE such as ``"42P01"``, a MySQL error number such as ``"1146"``, an
    Oracle ``"ORA-00942"``, a SQLite result code name such as ``"SQLITE_ERROR"``).
    """

    def __init__(self, message: str, *, code: str | None = None) -> None:
        self.code = code
        super().__init__(message)

    @property
    def send_to_llm(self) -> str:
        return str(self)


class QueryTimeoutError(ExecutionError):
    """The statement ran longer than the executor's ``timeout_s`` and was stopped."""


class ReadOnlyViolationError(ExecutionError):
    """The database refused a statement because it would write.

    Raised by the execution layer's own read-only enforcement (read-only connections and
    transactions), which holds even when the validator was bypassed or wrong.
    """


class ResultTooLargeError(ExecutionError):
    """The result (or one value in it) grew past the executor's ``max_result_bytes`` and the
    run was stopped while fetching, so the process never holds the whole of it.

    Like a timeout, its message tells the model how to ask for less (fewer or narrower columns,
    an aggregate, a LIMIT).
    """


class LLMError(SqlAgentError):
    """A model backend failed, or answered with something that cannot be used.

    Raised for requests the backend refused (HTTP 4xx: an unknown model or adapter name, a bad
    parameter) and for answers that are malformed; retrying the same request will not help.
    """


class LLMUnavailableError(LLMError):
    """The backend could not answer now: connection refused, time limit, HTTP 5xx or 429.

    Retrying later, or asking another backend (:class:`~sqlagent.llm.FallbackLLM`), may help.
    """


class NoSQLFoundError(LLMError):
    """The model answered, but no SQL statement could be found in its answer.

    ``answer`` is the model's full text; ``send_to_llm`` asks the model to answer again with
    exactly one query, for the self-correction loop.
    """

    def __init__(self, message: str, *, answer: str) -> None:
        self.answer = answer
        super().__init__(message)

    @property
    def send_to_llm(self) -> str:
        return (
            "No SQL query was found in your answer. Answer with exactly one SQL query "
            "in a ```sql code block."
        )


class RetrievalError(SqlAgentError):
    """Schema retrieval failed at run time: the embedder or the vector store (e.g. an
    unreachable chroma server). Configuration mistakes are :class:`ConfigError` instead."""
