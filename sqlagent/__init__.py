"""sqlagent: answer questions over relational databases with SQL written by a local LLM — safely.

    from sqlagent import AgentConfig, SQLAgent
    agent = SQLAgent(AgentConfig.from_file("sqlagent.yaml"))
    answer = agent.ask("How many employees are in each department?", role="analyst")

The safety core judges every statement on its syntax tree: exactly one read-only query, every
table and column grounded in the real catalog, and the caller's role enforced with column
grants and masking. Nothing here loads a model or touches a database at import time.
"""

from sqlagent.agent import SQLAgent
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
from sqlagent.config import AgentConfig, RetrievalSettings, SafetyConfig
from sqlagent.errors import (
    AuditError,
    CatalogError,
    ConfigError,
    DialectError,
    ExecutionError,
    PolicyError,
    QueryTimeoutError,
    ReadOnlyViolationError,
    RejectedError,
    SqlAgentError,
)
from sqlagent.execution import ExecutionResult, ReadOnlyExecutor
from sqlagent.memory import ExampleStore
from sqlagent.safety import Access, Guard, Policy, check_sql
from sqlagent.types import (
    Answer,
    Attempt,
    Example,
    ReusedExample,
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
    "Catalog",
    "CatalogError",
    "CatalogSource",
    "Column",
    "ConfigError",
    "DialectError",
    "Example",
    "ExampleStore",
    "ExecutionError",
    "ExecutionResult",
    "ForeignKey",
    "Guard",
    "Policy",
    "PolicyError",
    "QueryTimeoutError",
    "ReadOnlyExecutor",
    "ReadOnlyViolationError",
    "RejectedError",
    "RetrievalSettings",
    "ReusedExample",
    "SQLAgent",
    "SafetyConfig",
    "SampleOptions",
    "SqlAgentError",
    "Table",
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
