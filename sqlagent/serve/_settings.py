"""The serve configuration: who may call (API keys, JWT), and how much load is let in.

A YAML file (``--serve-config serve.yaml``) plus the environment, read once when the server
starts. Plain API keys never live in the file: it holds their SHA-256 digests, and plain keys
come only from the environment (``SQLAGENT_API_KEYS="key1:analyst,key2:hr"``), hashed as soon
as they are read. The JWT secret or public key is read from an environment variable or a file
named in the config, never written in it. Every problem is one
:class:`~sqlagent.errors.ConfigError`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pydantic

from sqlagent.config import read_config_file, validated
from sqlagent.errors import ConfigError

__all__ = [
    "API_KEYS_ENV",
    "ApiKey",
    "ConversationSettings",
    "JwtSettings",
    "ServeLimits",
    "ServeSettings",
    "hash_key",
]

#: The environment variable holding plain API keys: ``key:role`` pairs separated by commas.
API_KEYS_ENV = "SQLAGENT_API_KEYS"
_HEX = frozenset("0123456789abcdef")


def hash_key(key: str) -> str:
    """The SHA-256 hex digest a config file stores for ``key`` (``key_sha256``)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class _Frozen(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")


class ApiKey(_Frozen):
    """One API key: its SHA-256 digest, the role it grants and a name for logs and audit."""

    name: str = pydantic.Field(min_length=1)
    role: str = pydantic.Field(min_length=1)
    key_sha256: str = pydantic.Field(repr=False)

    @pydantic.field_validator("key_sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        value = value.strip().lower()
        if len(value) != 64 or not set(value) <= _HEX:
            raise ValueError("must be a SHA-256 hex digest (64 hex digits)")
        return value


class JwtSettings(_Frozen):
    """Bearer JWTs. HS256 verifies with a shared secret, RS256 with a PEM public key; the key
    comes from ``key_env`` (an environment variable) or ``key_file``, resolved at load into
    ``key``. ``exp`` is always required; ``audience``/``issuer`` are checked when set. The role
    is the ``role_claim`` claim, the caller's name the ``name_claim`` claim."""

    algorithm: Literal["HS256", "RS256"] = "HS256"
    key_env: str | None = "SQLAGENT_JWT_KEY"
    key_file: Path | None = None
    audience: str | None = None
    issuer: str | None = None
    role_claim: str = "role"
    name_claim: str = "sub"
    leeway_s: float = pydantic.Field(default=0.0, ge=0, le=300)
    key: pydantic.SecretStr | None = None  # resolved from key_env/key_file; never in the file


class ServeLimits(_Frozen):
    """How much load one server process lets in (see docs/serve.md, "Concurrency").

    ``max_concurrency`` requests are inside the agent at once, ``max_queue`` more may wait for a
    slot; beyond that a request is refused at once with 429 and ``Retry-After``.
    ``rate_per_minute``/``burst`` are a token bucket per credential (0 turns it off).
    ``request_timeout_s`` bounds how long a caller waits for an answer (504 after it; the
    request still finishes inside the agent, and its audit event is still recorded).
    """

    max_concurrency: int = pydantic.Field(default=1, ge=1, le=256)
    max_queue: int = pydantic.Field(default=16, ge=0, le=10_000)
    max_body_bytes: int = pydantic.Field(default=64 * 1024, ge=256)
    max_question_chars: int = pydantic.Field(default=2000, ge=1)
    rate_per_minute: float = pydantic.Field(default=120.0, ge=0)
    burst: int = pydantic.Field(default=20, ge=1)
    request_timeout_s: float = pydantic.Field(default=120.0, gt=0)
    retry_after_s: int = pydantic.Field(default=1, ge=1)


class ConversationSettings(_Frozen):
    """The conversations ``POST /v1/chat`` keeps for callers that send a ``conversation_id``.

    At most ``max_conversations`` at once (the least recently used is dropped first), each
    keeping its last ``max_turns`` turns (questions and SQL; the agent's ``history_turns`` and
    ``history_tokens`` then bound what a prompt shows), each forgotten ``ttl_s`` seconds after
    it was last used. A dropped or expired conversation simply starts again at turn 1.
    """

    max_conversations: int = pydantic.Field(default=10_000, ge=1, le=10_000_000)
    max_turns: int = pydantic.Field(default=20, ge=1, le=1000)
    ttl_s: float = pydantic.Field(default=3600.0, gt=0)


class ServeSettings(_Frozen):
    """Everything :func:`~sqlagent.serve.create_app` needs besides the agent.

    ``default_role`` lets requests without a credential in, as that role (leave it unset to
    answer 401). ``audit_refusals`` records one audit event (name ``"serve"``) for each request
    to ``/v1/*`` refused before it reaches the agent. ``model_name`` is the ``model`` of the
    OpenAI-compatible responses (default: the agent's LLM name). ``single_user`` allows serving
    an agent without a role policy, where every caller reads everything; without it such an
    agent is refused at startup, so a policy that failed to load can never fail open.
    ``conversations`` bounds the conversations kept for ``POST /v1/chat``.
    """

    keys: tuple[ApiKey, ...] = ()
    jwt: JwtSettings | None = None
    default_role: str | None = None
    limits: ServeLimits = ServeLimits()
    conversations: ConversationSettings = ConversationSettings()
    audit_refusals: bool = True
    model_name: str | None = None
    single_user: bool = False

    @pydantic.model_validator(mode="after")
    def _unique(self) -> ServeSettings:
        digests = [k.key_sha256 for k in self.keys]
        if len(set(digests)) != len(digests):
            raise ValueError("the same API key is listed twice")
        names = [k.name for k in self.keys]
        if len(set(names)) != len(names):
            raise ValueError("API key names must be unique")
        return self

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        *,
        environ: Mapping[str, str] | None = None,
        base_dir: Path | None = None,
    ) -> ServeSettings:
        """Validate ``data``, add the keys of ``SQLAGENT_API_KEYS`` and resolve the JWT key
        from ``environ`` (default: no environment at all, so tests stay hermetic)."""
        env = dict(environ or {})
        settings = validated(cls, data, what="serve configuration")
        if settings.jwt is not None and settings.jwt.key is not None:
            raise ConfigError("serve configuration: put the JWT key in key_env or key_file")
        extra = _env_keys(env.get(API_KEYS_ENV, ""))
        update: dict[str, Any] = {}
        if extra:
            try:
                update["keys"] = cls(keys=(*settings.keys, *extra)).keys
            except pydantic.ValidationError as exc:
                raise ConfigError(f"{API_KEYS_ENV}: {exc.errors()[0]['msg']}") from None
        if settings.jwt is not None:
            update["jwt"] = _resolve_jwt(settings.jwt, env, base_dir)
        return settings.model_copy(update=update) if update else settings

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
    ) -> ServeSettings:
        """Read a YAML (or JSON) serve config; relative ``key_file`` paths are resolved against
        the file's directory."""
        data = read_config_file(path, what="serve config file", empty=True)
        return cls.from_mapping(data, environ=environ, base_dir=Path(path).resolve().parent)


def _env_keys(text: str) -> tuple[ApiKey, ...]:
    keys: list[ApiKey] = []
    for number, item in enumerate((i.strip() for i in text.split(",")), start=1):
        if not item:
            continue
        key, sep, role = item.rpartition(":")
        if not sep or not key or not role:
            raise ConfigError(f"{API_KEYS_ENV}: entry {number} is not KEY:ROLE")
        keys.append(ApiKey(name=f"env-{number}", role=role, key_sha256=hash_key(key)))
    return tuple(keys)


def _resolve_jwt(jwt: JwtSettings, env: Mapping[str, str], base_dir: Path | None) -> JwtSettings:
    key: str | None = None
    if jwt.key_file is not None:
        path = (
            jwt.key_file
            if base_dir is None or jwt.key_file.is_absolute()
            else base_dir / jwt.key_file
        )
        try:
            key = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the JWT key file {path}: {exc}") from exc
    elif jwt.key_env is not None:
        key = env.get(jwt.key_env) or None
    if not key:
        where = f"file {jwt.key_file}" if jwt.key_file else f"environment variable {jwt.key_env}"
        raise ConfigError(f"JWT is configured but its key is missing ({where})")
    if jwt.algorithm == "HS256" and len(key.encode()) < 32:
        raise ConfigError("the HS256 JWT secret must be at least 32 bytes")
    if jwt.algorithm == "RS256" and "PUBLIC KEY" not in key:
        raise ConfigError("the RS256 JWT key must be a PEM public key")
    return jwt.model_copy(update={"key": pydantic.SecretStr(key)})
