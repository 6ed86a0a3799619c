"""Configuration as frozen dataclasses: explicit, keyword-only, no globals."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from sqlagent.dialects import PURE_BUILTINS, resolve_dialect
from sqlagent.errors import ConfigError

__all__ = ["SafetyConfig"]


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
    """

    max_rows: int | None = None
    allowed_functions: Mapping[str, frozenset[str]] = field(default_factory=dict)
    mask_value: str = "***"
    pure_builtins: bool = True
    max_sql_chars: int | None = 20_000
    max_nesting: int | None = 64

    def __post_init__(self) -> None:
        for name in ("max_sql_chars", "max_nesting"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a positive integer or null, got {value!r}")
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
