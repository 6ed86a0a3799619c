"""sqlagent: answer questions over relational databases with SQL written by a local LLM — safely.

    from sqlagent import AgentConfig, SQLAgent
    agent = SQLAgent(AgentConfig.from_file("sqlagent.yaml"))
    answer = agent.ask("How many employees are in each department?", role="analyst")

The safety core judges every statement on its syntax tree: exactly one read-only query, every
table and column grounded in the real catalog, and the caller's role enforced with column
grants and masking. Nothing here loads a model or touches a database at import time.
"""

from sqlagent.agent import Conversation, SQLAgent
from sqlagent.catalog import (
    Catalog,
    CatalogSource,
    Column,
    ForeignKey,
    SampleOptions,
    Table,
    all_columns,
    reflect_catalog,
    sample_values,
)
from sqlagent.config import AgentConfig
from sqlagent.errors import (
    AuditError,
    AuthError,
    CatalogError,
    ConfigError,
    DialectError,
    ExecutionError,
    LLMError,
    LLMUnavailableError,
    NoSQLFoundError,
    PolicyError,
    PrivilegeError,
    QueryTimeoutError,
    ReadOnlyViolationError,
    RejectedError,
    ResultTooLargeError,
    RetrievalError,
    SharedStateError,
    SQLAgentError,
)
from sqlagent.execution import ExecutionResult, Executor, ReadOnlyExecutor
from sqlagent.llm import LLM, MockLLM
from sqlagent.memory import ExampleStore
from sqlagent.retrieval import RetrievalSettings
from sqlagent.safety import Access, Guard, Policy, SafetyConfig, check_sql
from sqlagent.types import (
    Answer,
    Attempt,
    Example,
    Message,
    ReusedExample,
    Turn,
    Verdict,
    Violation,
    ViolationCode,
)

__all__ = [
    "Access",
    "AgentConfig",
    "Answer",
    "Attempt",
    "AuditError",
    "AuthError",
    "Catalog",
    "CatalogError",
    "CatalogSource",
    "Column",
    "ConfigError",
    "Conversation",
    "DialectError",
    "Example",
    "ExampleStore",
    "ExecutionError",
    "ExecutionResult",
    "Executor",
    "ForeignKey",
    "Guard",
    "LLM",
    "LLMError",
    "LLMUnavailableError",
    "Message",
    "MockLLM",
    "NoSQLFoundError",
    "Policy",
    "PolicyError",
    "PrivilegeError",
    "QueryTimeoutError",
    "ReadOnlyExecutor",
    "ReadOnlyViolationError",
    "RejectedError",
    "ResultTooLargeError",
    "RetrievalError",
    "RetrievalSettings",
    "ReusedExample",
    "SQLAgent",
    "SQLAgentError",
    "SafetyConfig",
    "SampleOptions",
    "SharedStateError",
    "Table",
    "Turn",
    "Verdict",
    "Violation",
    "ViolationCode",
    "__version__",
    "all_columns",
    "check_sql",
    "reflect_catalog",
    "sample_values",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    if name == "SqlAgentError":  # the spelling before 0.2
        import warnings

        warnings.warn(
            "sqlagent.SqlAgentError is now SQLAgentError (one spelling of SQL)",
            DeprecationWarning,
            stacklevel=2,
        )
        return SQLAgentError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
