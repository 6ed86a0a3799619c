"""SafetyConfig: how the safety core judges SQL (the ``safety:`` section of a config file)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, ClassVar

import pydantic

from sqlagent.dialects import PURE_BUILTINS, resolve_dialect
from sqlagent.errors import DialectError
from sqlagent.settings import ConfigModel

__all__ = ["SafetyConfig"]

# A positive integer, and only that: not a bool, a float or a numeric string.
_Positive = Annotated[int, pydantic.Field(strict=True, ge=1)]


class SafetyConfig(ConfigModel):
    """How the safety core judges SQL.

    ``allowed_functions`` maps a dialect to extra function names (lower case; dotted for package
    functions such as ``"dbms_random.normal"``) that the user has vetted as side-effect free. They
    extend the built-in allow-list of typed functions; nothing else passes.
    ``pure_builtins`` also admits each engine's vetted side-effect-free built-ins that sqlglot
    does not type (SQLite ``date('now', '-1 day')``, MySQL ``NOW()`` ...; see
    :data:`sqlagent.dialects.PURE_BUILTINS`); set it to ``False`` for typed functions only.
    ``max_rows`` caps every statement's result with an injected LIMIT / FETCH FIRST (in an
    agent configuration, absent or null means the agent's ``max_rows``).
    ``mask_value`` is what a masked column returns.
    ``max_sql_chars`` and ``max_nesting`` bound the input the validator will analyse (analysis
    time grows faster than linearly with size); larger statements are refused as parse errors.
    ``max_constructed_length`` bounds what one call may build out of almost nothing: the count of
    ``repeat``, the width of ``lpad``/``rpad``/``space``, the widths and precisions of
    ``printf``/``format``, the size of SQLite's ``zeroblob``/``randomblob``. Such a width must be
    an integer literal (or ``LEAST(..., n)``) of at most this value (see ``docs/functions.md``).

    Like every :class:`~sqlagent.settings.ConfigModel` it is frozen and refuses unknown keys;
    a bad value, in code or in a file, is one :class:`~sqlagent.errors.ConfigError`.
    """

    config_name: ClassVar[str] = "safety configuration"

    max_rows: _Positive | None = None
    allowed_functions: dict[str, frozenset[str]] = pydantic.Field(default_factory=dict)
    mask_value: str = pydantic.Field(default="***", coerce_numbers_to_str=True)
    pure_builtins: bool = True
    max_sql_chars: _Positive | None = 20_000
    max_nesting: _Positive | None = 64
    max_constructed_length: _Positive = 10_000

    @pydantic.field_validator("allowed_functions", mode="before")
    @classmethod
    def _names_per_dialect(cls, value: Any) -> dict[str, frozenset[str]]:
        """Dialect names resolved (``postgresql`` -> ``postgres``), function names lower case."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ValueError("must map a dialect to a list of function names")
        names: dict[str, frozenset[str]] = {}
        for dialect, listed in value.items():
            if isinstance(listed, str) or not isinstance(listed, Iterable):
                raise ValueError(f"{dialect}: must be a list of function names")
            try:
                key = resolve_dialect(str(dialect))
            except DialectError as exc:
                raise ValueError(str(exc)) from None
            names[key] = names.get(key, frozenset()) | {str(n).lower() for n in listed}
        return names

    def functions_for(self, dialect: str) -> frozenset[str]:
        """The extra function names allowed in ``dialect`` (a sqlglot dialect name)."""
        extra = self.allowed_functions.get(dialect, frozenset())
        return extra | PURE_BUILTINS[dialect] if self.pure_builtins else extra
