"""The one configuration style: frozen pydantic models on :class:`ConfigModel`, one file reader.

Every configuration of sqlagent (:class:`~sqlagent.config.AgentConfig`,
:class:`~sqlagent.safety.SafetyConfig`, :class:`~sqlagent.retrieval.RetrievalSettings`,
:class:`~sqlagent.training.TrainConfig` and its sections) is a :class:`ConfigModel`: immutable,
unknown keys refused, every section typed, every default in the class that owns it. Whether it is
built in code, from a mapping or from a file, a mistake is one
:class:`~sqlagent.errors.ConfigError` that lists every problem as ``dotted.location: message``.
:func:`read_config_file` is the only way sqlagent reads a configuration (or policy) file: TOML
for ``.toml``, JSON for ``.json``, YAML otherwise.

This module sits low in the layers (it needs only :mod:`sqlagent.errors`), so the safety core
and the retrieval package can define their settings on the same base as the agent's.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import pydantic
import yaml

from sqlagent.errors import ConfigError

__all__ = ["ConfigModel", "read_config_file", "validated"]

M = TypeVar("M", bound=pydantic.BaseModel)


def read_config_file(
    path: str | os.PathLike[str],
    *,
    what: str = "config file",
    empty: bool = True,
    error: type[ConfigError] = ConfigError,
) -> Mapping[str, Any]:
    """Read a configuration file into a mapping: TOML (``.toml``), JSON (``.json``), else YAML.

    Every failure is an ``error`` (a :class:`ConfigError`, or a subclass such as
    :class:`~sqlagent.errors.PolicyError`) that names ``what`` and the path. An empty file reads
    as ``{}`` (an error when ``empty`` is false); anything but a mapping is an error.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    kind = "TOML" if suffix == ".toml" else "JSON" if suffix == ".json" else "YAML"
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise error(f"{what} not found: {p}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {what} {p}: {exc}") from exc
    try:
        if kind == "TOML":
            data: Any = tomllib.loads(text)
        elif kind == "JSON":
            data = json.loads(text) if text.strip() else None
        else:
            data = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:  # JSONDecodeError, TOMLDecodeError are ValueErrors
        raise error(f"{what} {p} is not valid {kind}: {exc}") from exc
    if data is None and empty:
        return {}
    if not isinstance(data, Mapping):
        raise error(f"{what} {p} must hold a mapping")
    return data


def _problems(exc: pydantic.ValidationError) -> str:
    """Every problem of ``exc`` as ``dotted.location: message``, joined by ``; ``."""
    return "; ".join(
        f"{'.'.join(str(part) for part in err['loc']) or 'config'}: "
        + ("unknown key" if err["type"] == "extra_forbidden" else err["msg"])
        for err in exc.errors()
    )


def validated(model: type[M], data: Mapping[str, Any], *, what: str) -> M:
    """``model.model_validate(data)``; a failure is one :class:`ConfigError` listing every
    problem as ``dotted.location: message`` (what :meth:`ConfigModel.from_mapping` does)."""
    try:
        return model.model_validate(dict(data))
    except pydantic.ValidationError as exc:
        raise ConfigError(f"invalid {what}: {_problems(exc)}") from None


class ConfigModel(pydantic.BaseModel):
    """The base of every sqlagent configuration: frozen, unknown keys refused.

    Constructing one in code (``SafetyConfig(max_rows=0)``), from a mapping
    (:meth:`from_mapping`) or from a file (:meth:`from_file`) validates the same way, and every
    failure is one :class:`ConfigError` naming each bad key (``invalid safety configuration:
    max_row: unknown key``). A subclass names itself in those messages with ``config_name`` and
    resolves its relative paths against a file's folder in :meth:`resolve_paths`.
    """

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    #: What errors call this configuration ("invalid agent configuration: ...").
    config_name: ClassVar[str] = "configuration"

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            raise ConfigError(f"invalid {self.config_name}: {_problems(exc)}") from None

    # Marked like BaseModel.__init__, so pydantic validates a nested section (AgentConfig's
    # safety:) with its own validator and lists the section's problems with the enclosing
    # model's; only a direct call runs the method above. tests/test_config.py checks both.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, base_dir: Path | None = None) -> Self:
        """Validate ``data`` (absent keys keep their defaults); with ``base_dir``, relative
        paths are then resolved against it (:meth:`resolve_paths`)."""
        config = validated(cls, data, what=cls.config_name)
        return config if base_dir is None else config.resolve_paths(base_dir)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Self:
        """Read a YAML, JSON (``.json``) or TOML (``.toml``) file (:func:`read_config_file`);
        relative paths in it are resolved against the file's folder."""
        data = read_config_file(path, what=f"{cls.config_name} file")
        return cls.from_mapping(data, base_dir=Path(path).resolve().parent)

    def resolve_paths(self, base_dir: Path) -> Self:
        """A copy whose relative paths (and relative SQLite database paths) are resolved
        against ``base_dir``; a configuration without paths returns itself."""
        return self
