"""The safety core: is this SQL read-only, grounded in the real catalog, and allowed for the role?

Parser-based end to end (sqlglot syntax trees, never regular expressions), allow-lists over
deny-lists, and fail closed: anything not understood is a rejection with a reason.

The core is pure: it judges SQL and returns a :class:`~sqlagent.types.Verdict`. It imports no
audit, agent, retrieval or model code (an import-linter contract in ``pyproject.toml`` says
so); recording a decision is the caller's job.
"""

from sqlagent.safety._analyze import SchemaIndex
from sqlagent.safety._config import SafetyConfig
from sqlagent.safety._functions import ALLOWED_FUNCTIONS
from sqlagent.safety._guard import Guard, check_sql
from sqlagent.safety._policy import Access, Policy, RoleSpec
from sqlagent.safety._readonly import RULES
from sqlagent.safety._rewrite import apply_row_cap

__all__ = [
    "ALLOWED_FUNCTIONS",
    "Access",
    "Guard",
    "Policy",
    "RULES",
    "RoleSpec",
    "SafetyConfig",
    "SchemaIndex",
    "apply_row_cap",
    "check_sql",
]
