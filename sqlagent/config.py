"""Configuration: explicit, immutable, no globals.

:class:`SafetyConfig` (a frozen dataclass) says how SQL is judged; :class:`AgentConfig` (a frozen
pydantic model, read from YAML or JSON with :meth:`AgentConfig.from_file`) says how the agent is
assembled: database, policy, model, retrieval, limits and audit.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

import pydantic
import sqlalchemy as sa
import yaml

from sqlagent.dialects import PURE_BUILTINS, resolve_dialect
from sqlagent.errors import ConfigError
from sqlagent.execution import DEFAULT_MAX_RESULT_BYTES

__all__ = [
    "AgentConfig",
    "RetrievalSettings",
    "SafetyConfig",
    "read_config_file",
    "resolve_sqlite_url",
    "validated",
]

M = TypeVar("M", bound=pydantic.BaseModel)

# The folder of sqlagent's own files (retrieval index, embedder exports) beside a config file.
STATE_DIR = ".sqlagent"


def read_config_file(
    path: str | os.PathLike[str], *, what: str = "config file", empty: bool = False
) -> Mapping[str, Any]:
    """Read a config file into a mapping: TOML (``.toml``), JSON (``.json``), else YAML.

    Every failure is a :class:`ConfigError` that names ``what`` and the path; an empty file is
    ``{}`` when ``empty`` is true.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        if p.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif p.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} not found: {p}") from exc
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {what} {p}: {exc}") from exc
    if data is None and empty:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{what} {p} must hold a mapping")
    return data


def validated(model: type[M], data: Mapping[str, Any], *, what: str) -> M:
    """``model.model_validate(data)``; a failure is one :class:`ConfigError` listing every
    problem as ``dotted.location: message``."""
    try:
        return model.model_validate(dict(data))
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid {what}: {problems}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class SafetyConfig:
    """How the safety core judges SQL.

    ``allowed_functions`` maps a dialect to extra function names (lower case; dotted for package
    functions such as ``"dbms_random.normal"``) that the user has vetted as side-effect free. They
    extend the built-in allow-list of typed functions; nothing else passes.
    ``pure_builtins`` also admits each engine's vetted side-effect-free built-ins that sqlglot
    does not type (SQLite ``date('now', '-1 day')``, MySQL ``NOW()`` ...; see
    :data:`sqlagent.dialects.PURE_BUILTINS`); set it to ``False`` for typed functions only.
    ``max_rows`` caps every statement's result with an injected LIMIT / FETCH FIRST.
    ``mask_value`` is what a masked column returns.
    ``max_sql_chars`` and ``max_nesting`` bound the input the validator will analyse (analysis
    time grows faster than linearly with size); larger statements are refused as parse errors.
    ``max_constructed_length`` bounds what one call may build out of almost nothing: the count of
    ``repeat``, the width of ``lpad``/``rpad``/``space``, the widths and precisions of
    ``printf``/``format``, the size of SQLite's ``zeroblob``/``randomblob``. Such a width must be
    an integer literal (or ``LEAST(..., n)``) of at most this value (see ``docs/functions.md``).
    """

    max_rows: int | None = None
    allowed_functions: Mapping[str, frozenset[str]] = field(default_factory=dict)
    mask_value: str = "***"
    pure_builtins: bool = True
    max_sql_chars: int | None = 20_000
    max_nesting: int | None = 64
    max_constructed_length: int = 10_000

    def __post_init__(self) -> None:
        for name in ("max_sql_chars", "max_nesting"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a positive integer or null, got {value!r}")
        bound = self.max_constructed_length
        if not isinstance(bound, int) or isinstance(bound, bool) or bound < 1:
            raise ConfigError(f"max_constructed_length must be a positive integer, got {bound!r}")
        if self.max_rows is not None and (
            not isinstance(self.max_rows, int)
            or isinstance(self.max_rows, bool)
            or self.max_rows < 1
        ):
            raise ConfigError(f"max_rows must be a positive integer, got {self.max_rows!r}")
        normalized: dict[str, frozenset[str]] = {}
        for dialect, names in self.allowed_functions.items():
            if isinstance(names, str):
                raise ConfigError("allowed_functions values must be lists of function names")
            normalized[resolve_dialect(dialect)] = frozenset(str(n).lower() for n in names)
        object.__setattr__(self, "allowed_functions", normalized)

    def functions_for(self, dialect: str) -> frozenset[str]:
        extra = self.allowed_functions.get(dialect, frozenset())
        return extra | PURE_BUILTINS[dialect] if self.pure_builtins else extra

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SafetyConfig:
        """Build from a config file's ``safety`` section; absent keys keep their defaults."""
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown safety option(s): {', '.join(sorted(unknown))}")
        options = dict(data)
        funcs: Mapping[str, Iterable[str]] = options.get("allowed_functions") or {}
        if not isinstance(funcs, Mapping):
            raise ConfigError("allowed_functions must map a dialect to a list of names")
        options["allowed_functions"] = {d: frozenset(n) for d, n in funcs.items()}
        if "mask_value" in options:
            options["mask_value"] = str(options["mask_value"])
        if "pure_builtins" in options:
            options["pure_builtins"] = bool(options["pure_builtins"])
        return cls(**options)


class _Frozen(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")


class RetrievalSettings(_Frozen):
    """Schema retrieval. ``embedder``/``store`` ``"auto"`` use MiniLM and chromadb when the
    ``retrieval`` extra is installed, and the dependency-free fallbacks otherwise.

    MiniLM (``auto`` or ``minilm``) runs through onnxruntime from an ONNX export kept in
    ``embedder_path`` (made once by ``sqlagent index``, or on first use, where torch is
    installed), so a question is answered without importing torch; without onnxruntime, or
    without both the export and torch, through sentence-transformers. ``path`` (the chromadb
    folder) and ``embedder_path`` default to ``.sqlagent/index`` and ``.sqlagent/embedders``
    beside the config file (in the current directory for a configuration not read from a
    file): see :meth:`index_dir` and :meth:`embedder_dir`. ``threads`` caps onnxruntime's
    threads for the embedder (default: one per core).
    """

    enabled: bool = True
    embedder: Literal["auto", "minilm", "hashing"] = "auto"
    store: Literal["auto", "chroma", "memory"] = "auto"
    path: Path | None = None  # chromadb directory; default: .sqlagent/index beside the config
    embedder_path: Path | None = None  # ONNX exports; default: .sqlagent/embedders beside it
    url: str | None = None  # a chroma server (http://host:port) instead of a directory
    threads: int | None = pydantic.Field(default=None, ge=1, le=256)
    k_tables: int = pydantic.Field(default=5, ge=1, le=100)
    k_examples: int = pydantic.Field(default=3, ge=0, le=20)
    k_docs: int = pydantic.Field(default=2, ge=0, le=20)

    def index_dir(self) -> Path:
        """The chromadb folder: ``path``, else ``.sqlagent/index`` (beside the config file once
        :meth:`AgentConfig.from_file` resolved it; relative to the current directory here)."""
        return self.path if self.path is not None else Path(STATE_DIR) / "index"

    def embedder_dir(self) -> Path:
        """Where ONNX exports of the embedder are kept: ``embedder_path``, else
        ``.sqlagent/embedders`` (resolved like :meth:`index_dir`)."""
        return (
            self.embedder_path if self.embedder_path is not None else Path(STATE_DIR) / "embedders"
        )

    def _resolved(self, base: Path) -> RetrievalSettings:
        """Relative paths resolved against ``base`` (the config file's folder), defaults too."""

        def under(path: Path | None, default: str) -> Path:
            path = path if path is not None else Path(STATE_DIR) / default
            return path if path.is_absolute() else base / path

        return self.model_copy(
            update={
                "path": under(self.path, "index"),
                "embedder_path": under(self.embedder_path, "embedders"),
            }
        )


class AgentConfig(_Frozen):
    """Everything :class:`sqlagent.SQLAgent` is built from.

    Relative paths (and relative SQLite database paths) in a config file are resolved against the
    file's directory, so a project folder can be moved as a whole.
    """

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
    safety: dict[str, Any] = pydantic.Field(default_factory=dict)
    audit_log: Path | None = None  # hash-chained JSONL; default: the sqlagent.audit logger
    on_audit_error: Literal["fail", "warn"] = "fail"
    retrieval: RetrievalSettings = RetrievalSettings()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, base_dir: Path | None = None) -> AgentConfig:
        """Validate ``data``; errors become one :class:`ConfigError` listing every problem."""
        config = validated(cls, data, what="agent configuration")
        return config if base_dir is None else config._resolved(base_dir)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> AgentConfig:
        """Read a YAML (or JSON, or TOML) config file."""
        data = read_config_file(path)
        return cls.from_mapping(data, base_dir=Path(path).resolve().parent)

    def safety_config(self) -> SafetyConfig:
        options = {"max_rows": self.max_rows, **self.safety}
        return SafetyConfig.from_mapping(options)

    def _resolved(self, base: Path) -> AgentConfig:
        def fix(p: Path | None) -> Path | None:
            return p if p is None or p.is_absolute() else base / p

        retrieval = self.retrieval._resolved(base)
        return self.model_copy(
            update={
                "database": resolve_sqlite_url(self.database, base),
                "policy": fix(self.policy),
                "examples": fix(self.examples),
                "docs": tuple(base / d if not d.is_absolute() else d for d in self.docs),
                "audit_log": fix(self.audit_log),
                "retrieval": retrieval,
            }
        )


def resolve_sqlite_url(url: str, base: Path) -> str:
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"not a database URL: {url!r}") from exc
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return url
    if database.startswith("file:") or Path(database).is_absolute():
        return url
    return parsed.set(database=str(base / database)).render_as_string(hide_password=False)
