"""The agent's configuration: explicit, immutable, no globals.

:class:`AgentConfig` (read from YAML, JSON or TOML with :meth:`AgentConfig.from_file`) says how
the agent is assembled: database, policy, model, retrieval, safety, limits and audit. It is a
:class:`~sqlagent.settings.ConfigModel` like every configuration of sqlagent; its sections are
the packages' own settings, :class:`~sqlagent.safety.SafetyConfig` and
:class:`~sqlagent.retrieval.RetrievalSettings`, re-exported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import pydantic

from sqlagent.dialects import resolve_sqlite_url
from sqlagent.execution import DEFAULT_MAX_RESULT_BYTES
from sqlagent.retrieval import RetrievalSettings
from sqlagent.safety import SafetyConfig
from sqlagent.settings import ConfigModel

__all__ = ["AgentConfig", "RetrievalSettings", "SafetyConfig"]


class AgentConfig(ConfigModel):
    """Everything :class:`sqlagent.SQLAgent` is built from.

    Relative paths (and relative SQLite database paths) in a config file are resolved against the
    file's directory, so a project folder can be moved as a whole. Every section is typed:
    ``safety`` is a :class:`~sqlagent.safety.SafetyConfig` and ``retrieval`` a
    :class:`~sqlagent.retrieval.RetrievalSettings`, so a misspelt key anywhere is a
    :class:`~sqlagent.errors.ConfigError` when the file is read, naming the key.
    """

    config_name: ClassVar[str] = "agent configuration"

    database: str
    dialect: str | None = None
    policy: Path | None = None
    llm: str = "mock"
    model: str | None = None  # the served model's name, for openai:URL backends
    fallbacks: tuple[str, ...] = ()  # LLM specs tried in order when the primary is unavailable
    # The 'mock' model answers only when a stored example's question is at least this similar
    # (0-1); None: MockLLM.DEFAULT_MIN_SIMILARITY (0.9). Lower it to let the mock guess.
    mock_min_similarity: float | None = pydantic.Field(default=None, ge=0.0, le=1.0)
    max_attempts: int = pydantic.Field(default=3, ge=1, le=10)
    # Follow-up questions: at most this many earlier turns (question + SQL, never rows), and at
    # most this many prompt tokens of them (prompt.count_tokens), go into a prompt; oldest first
    # out. 0 turns: every question is asked on its own.
    history_turns: int = pydantic.Field(default=6, ge=0, le=50)
    history_tokens: int = pydantic.Field(default=1500, ge=0)
    examples: Path | None = None  # JSONL few-shot memory
    docs: tuple[Path, ...] = ()  # Markdown business glossary
    sample_values: int = pydantic.Field(
        default=5, ge=0, le=20
    )  # per low-cardinality column; 0 = none
    timeout_s: float = pydantic.Field(default=10.0, gt=0)
    max_rows: int = pydantic.Field(default=1000, ge=1)
    # Bytes a result may hold in memory (rows counted as fetched; 16 MiB by default).
    max_result_bytes: int = pydantic.Field(default=DEFAULT_MAX_RESULT_BYTES, ge=1024)
    # Refuse to start when the database login can do more than read (superuser, server files,
    # admin or write grants); by default that is only logged as a warning.
    require_least_privilege: bool = False
    safety: SafetyConfig = SafetyConfig()  # its max_rows defaults to the agent's max_rows
    # Where the hash-chained audit trail goes: a JSONL file, or a SQLAlchemy database URL
    # (one chain in a table, shared by every writer); default: the sqlagent.audit logger.
    audit_log: Path | str | None = None
    on_audit_error: Literal["fail", "warn"] = "fail"
    retrieval: RetrievalSettings = RetrievalSettings()

    @pydantic.field_validator("audit_log", mode="before")
    @classmethod
    def _audit_target(cls, value: Any) -> Any:
        """A string holding ``://`` is a database URL (kept as text); any other is a path."""
        if isinstance(value, str) and "://" not in value:
            return Path(value)
        return value

    def safety_config(self) -> SafetyConfig:
        """The safety section as the guard uses it: its ``max_rows`` (the row cap injected into
        every statement) is the agent's ``max_rows`` unless the section sets its own."""
        if self.safety.max_rows is not None:
            return self.safety
        return self.safety.model_copy(update={"max_rows": self.max_rows})

    def resolve_paths(self, base_dir: Path) -> Self:
        """Relative paths, a relative SQLite database path and the retrieval folders resolved
        against ``base_dir`` (the config file's folder)."""

        def fix(p: Path | None) -> Path | None:
            return p if p is None or p.is_absolute() else base_dir / p

        return self.model_copy(
            update={
                "database": resolve_sqlite_url(self.database, base_dir),
                "policy": fix(self.policy),
                "examples": fix(self.examples),
                "docs": tuple(d if d.is_absolute() else base_dir / d for d in self.docs),
                "audit_log": resolve_sqlite_url(self.audit_log, base_dir)
                if isinstance(self.audit_log, str)
                else fix(self.audit_log),
                "retrieval": self.retrieval.resolve_paths(base_dir),
            }
        )
