"""One error tree for sqlagent.

Every exception sqlagent raises on purpose derives from :class:`SQLAgentError`, so callers can
catch the whole family at once and the CLI can turn each branch into a clean message and exit code
(usage/configuration problems exit 2, refusals and failures exit 1)::

    SQLAgentError
    ├── ConfigError            bad configuration, file or argument: the caller must fix its input
    │   ├── PolicyError        a policy file that does not follow the documented format
    │   ├── CatalogError       a schema file or database that cannot be read as a catalog
    │   ├── DialectError       an unsupported SQL dialect name
    │   └── PrivilegeError     the database login may do more than read, and that is refused
    ├── RejectedError          SQL refused by the safety core; carries the Verdict
    ├── AuthError              a request's credential is missing, invalid or names no policy role
    ├── AuditError             an audit sink failed while ``on_sink_error="fail"``
    ├── RetrievalError         the embedder or vector store failed (a chroma server down)
    ├── SharedStateError       the state serve replicas share (Redis) failed: requests get 503
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

from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from sqlagent.types import Verdict

__all__ = [
    "AuditError",
    "AuthError",
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
    "SQLAgentError",
    "SharedStateError",
]


class SQLAgentError(Exception):
    """Root of every error sqlagent raises on purpose."""


class ConfigError(SQLAgentError):
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


class RejectedError(SQLAgentError):
    """The safety core refused a statement.

    ``verdict`` holds every violation; ``send_to_llm`` is feedback meant for a model.
    """

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        super().__init__(verdict.summary())

    @property
    def send_to_llm(self) -> str:
        return self.verdict.feedback()


class AuditError(SQLAgentError):
    """An audit sink could not record an event and the configuration says to fail."""


class ExecutionError(SQLAgentError):
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


class LLMError(SQLAgentError):
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


class RetrievalError(SQLAgentError):
    """Schema retrieval failed at run time: the embedder or the vector store (e.g. an
    unreachable chroma server). Configuration mistakes are :class:`ConfigError` instead."""


class AuthError(SQLAgentError):
    """A request's credential is missing, invalid or grants a role the policy does not have
    (``sqlagent serve``, ``sqlagent mcp`` over HTTP).

    ``status`` is the HTTP status it becomes: 401 (no or bad credential) or 403 (a verified
    credential whose role is not in the policy; ``principal`` is then that caller, a
    :class:`sqlagent.serve.Principal`).
    """

    def __init__(
        self,
        message: str,
        *,
        status: Literal[401, 403] = 401,
        principal: Any = None,
    ) -> None:
        self.status = status
        self.principal = principal  # the verified caller a 403 refused
        super().__init__(message)


class SharedStateError(SQLAgentError):
    """The shared state (Redis) could not be reached, timed out or answered with an error.

    ``sqlagent serve`` answers such a request with 503 and ``Retry-After``; nothing was changed
    for it.
    """


#: Names that were spelled differently before 0.2: still importable, with a DeprecationWarning.
_RENAMED = {"SqlAgentError": "SQLAgentError"}


def __getattr__(name: str) -> Any:
    if name in _RENAMED:
        import warnings

        new = _RENAMED[name]
        warnings.warn(
            f"sqlagent.errors.{name} is now {new} (one spelling of SQL)",
            DeprecationWarning,
            stacklevel=2,
        )
        return globals()[new]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
