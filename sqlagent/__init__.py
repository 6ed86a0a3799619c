"""sqlagent: answer questions over relational databases with SQL written by a local LLM — safely.

The safety core judges every statement on its syntax tree: exactly one read-only query, every
table and column grounded in the real catalog, and the caller's role enforced with column
grants and masking. Nothing here loads a model or touches a database at import time.
"""

from sqlagent.catalog import Catalog, Column, ForeignKey, Table, reflect_catalog
from sqlagent.config import SafetyConfig
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
from sqlagent.safety import Access, Guard, Policy, check_sql
from sqlagent.types import Verdict, Violation, ViolationCode

__all__ = [
    "Access",
    "AuditError",
    "Catalog",
    "CatalogError",
    "Column",
    "ConfigError",
    "DialectError",
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
    "SafetyConfig",
    "SqlAgentError",
    "Table",
    "Verdict",
    "Violation",
    "ViolationCode",
    "__version__",
    "check_sql",
    "reflect_catalog",
]

__version__ = "0.1.0"
