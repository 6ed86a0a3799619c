"""The serve configuration: who may call (API keys, JWT), how much load is let in, and the
Redis that several replicas share.

A YAML file (``--serve-config serve.yaml``) plus the environment, read once when the server
starts. Plain API keys never live in the file: it holds their SHA-256 digests, and plain keys
come only from the environment (``SQLAGENT_API_KEYS="key1:analyst,key2:hr"``), hashed as soon
as they are read. The JWT secret or public key is read from an environment variable or a file
named in the config, never written in it; so is a Redis URL that carries a password
(``SQLAGENT_REDIS_URL``). Every problem is one :class:`~sqlagent.errors.ConfigError`.
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import pydantic

from sqlagent.errors import ConfigError
from sqlagent.settings import ConfigModel, read_config_file, validated

__all__ = [
    "API_KEYS_ENV",
    "REDIS_URL_ENV",
    "ApiKey",
    "ConversationSettings",
    "JwtSettings",
    "RedisSettings",
    "ServeLimits",
    "ServeSettings",
    "hash_key",
]

#: The environment variable holding plain API keys: ``key:role`` pairs separated by commas.
API_KEYS_ENV = "SQLAGENT_API_KEYS"
#: The environment variable holding the Redis URL; it wins over ``redis_url`` in the file.
REDIS_URL_ENV = "SQLAGENT_REDIS_URL"
_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})
_HEX = frozenset("0123456789abcdef")


def hash_key(key: str) -> str:
    """The SHA-256 hex digest a config file stores for ``key`` (``key_sha256``)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKey(ConfigModel):
    """One API key: its SHA-256 digest, the role it grants and a name for logs and audit.

    ``rate_per_minute``/``burst``, when set, replace the ``limits`` of the same name for this
    key's token bucket (e.g. a dashboard that may ask more, a script that may ask less).
    """

    name: str = pydantic.Field(min_length=1)
    role: str = pydantic.Field(min_length=1)
    key_sha256: str = pydantic.Field(repr=False)
    rate_per_minute: float | None = pydantic.Field(default=None, ge=0)
    burst: int | None = pydantic.Field(default=None, ge=1)

    @pydantic.field_validator("key_sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        value = value.strip().lower()
        if len(value) != 64 or not set(value) <= _HEX:
            raise ValueError("must be a SHA-256 hex digest (64 hex digits)")
        return value


class JwtSettings(ConfigModel):
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


class ServeLimits(ConfigModel):
    """How much load is let in (see docs/serve.md, "Concurrency" and "Scale-out").

    ``max_concurrency`` requests are inside this process's agent at once, ``max_queue`` more
    may wait for a slot; beyond that a request is refused at once with 429 and ``Retry-After``.
    ``rate_per_minute``/``burst`` are a token bucket per credential (0 turns it off); with
    ``redis_url`` every replica draws from the same bucket. ``service_max_concurrency`` (needs
    ``redis_url``) bounds the requests inside the agents of *all* replicas together, with at
    most ``service_max_queue`` waiting for one of those slots: the bound of a model server the
    replicas share (vLLM). ``request_timeout_s`` bounds how long a caller waits for an answer
    (504 after it; the request still finishes inside the agent, and its audit event is still
    recorded) and how long it waits for a service-wide slot.
    """

    max_concurrency: int = pydantic.Field(default=1, ge=1, le=256)
    max_queue: int = pydantic.Field(default=16, ge=0, le=10_000)
    max_body_bytes: int = pydantic.Field(default=64 * 1024, ge=256)
    max_question_chars: int = pydantic.Field(default=2000, ge=1)
    rate_per_minute: float = pydantic.Field(default=120.0, ge=0)
    burst: int = pydantic.Field(default=20, ge=1)
    request_timeout_s: float = pydantic.Field(default=120.0, gt=0)
    retry_after_s: int = pydantic.Field(default=1, ge=1)
    service_max_concurrency: int | None = pydantic.Field(default=None, ge=1, le=100_000)
    service_max_queue: int = pydantic.Field(default=64, ge=0, le=1_000_000)


class ConversationSettings(ConfigModel):
    """The conversations ``POST /v1/chat`` keeps for callers that send a ``conversation_id``.

    At most ``max_conversations`` at once (the least recently used is dropped first), each
    keeping its last ``max_turns`` turns (questions and SQL; the agent's ``history_turns`` and
    ``history_tokens`` then bound what a prompt shows), each forgotten ``ttl_s`` seconds after
    it was last used. A dropped or expired conversation simply starts again at turn 1.
    """

    max_conversations: int = pydantic.Field(default=10_000, ge=1, le=10_000_000)
    max_turns: int = pydantic.Field(default=20, ge=1, le=1000)
    ttl_s: float = pydantic.Field(default=3600.0, gt=0)


class RedisSettings(ConfigModel):
    """How the replicas use the Redis of ``redis_url``.

    Every key starts with ``key_prefix`` (several services may share one Redis, or one
    database number). ``timeout_s`` bounds connecting and each command; a Redis that does not
    answer in time counts as unreachable. Unreachable, the server fails closed: a request that
    needs Redis gets 503. ``limits_fail_open: true`` lets requests past the rate limit and the
    service-wide admission instead (each replica still applies its own ``max_concurrency``
    and ``max_queue``); conversations never fail open, since a turn kept for one credential
    and role must not be lost or shown to another: those requests still get 503.
    ``lease_s`` is how long a service-wide slot of a replica that died stays counted.
    """

    key_prefix: str = pydantic.Field(
        default="sqlagent", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$"
    )
    timeout_s: float = pydantic.Field(default=1.0, gt=0, le=60)
    limits_fail_open: bool = False
    lease_s: float = pydantic.Field(default=15.0, ge=1, le=3600)


class ServeSettings(ConfigModel):
    """Everything :func:`~sqlagent.serve.create_app` needs besides the agent.

    ``default_role`` lets requests without a credential in, as that role (leave it unset to
    answer 401). ``audit_refusals`` records one audit event (name ``"serve"``) for each request
    to ``/v1/*`` refused before it reaches the agent. ``model_name`` is the ``model`` of the
    OpenAI-compatible responses (default: the agent's LLM name). ``single_user`` allows serving
    an agent without a role policy, where every caller reads everything; without it such an
    agent is refused at startup, so a policy that failed to load can never fail open.
    ``conversations`` bounds the conversations kept for ``POST /v1/chat``. ``redis_url``
    (``redis://host:port/db``, ``rediss://`` for TLS) makes every replica share rate-limit
    buckets, conversations and the service-wide admission counters through that Redis
    (``redis`` says how); without it each process keeps its own. A URL with a password comes
    from ``SQLAGENT_REDIS_URL`` only, never from the file.
    """

    config_name: ClassVar[str] = "serve configuration"

    keys: tuple[ApiKey, ...] = ()
    jwt: JwtSettings | None = None
    default_role: str | None = None
    limits: ServeLimits = ServeLimits()
    conversations: ConversationSettings = ConversationSettings()
    audit_refusals: bool = True
    model_name: str | None = None
    single_user: bool = False
    redis_url: str | None = pydantic.Field(default=None, repr=False)
    redis: RedisSettings = RedisSettings()

    @pydantic.field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in _REDIS_SCHEMES:
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError("names no host (redis://host:port/db)")
        db = parts.path.strip("/")
        if parts.scheme != "unix" and db and not db.isdigit():
            raise ValueError("the path must be a database number (redis://host:port/db)")
        return value

    @pydantic.model_validator(mode="after")
    def _unique(self) -> ServeSettings:
        digests = [k.key_sha256 for k in self.keys]
        if len(set(digests)) != len(digests):
            raise ValueError("the same API key is listed twice")
        names = [k.name for k in self.keys]
        if len(set(names)) != len(names):
            raise ValueError("API key names must be unique")
        if self.limits.service_max_concurrency is not None and self.redis_url is None:
            raise ValueError("limits.service_max_concurrency needs redis_url")
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
        file_url = data.get("redis_url")
        if isinstance(file_url, str) and _has_password(file_url):
            raise ConfigError(
                f"serve configuration: a Redis URL with a password belongs in {REDIS_URL_ENV}, "
                "not in the file"
            )
        if env.get(REDIS_URL_ENV):
            data = {**data, "redis_url": env[REDIS_URL_ENV]}
        settings = validated(cls, data, what="serve configuration")
        if settings.jwt is not None and settings.jwt.key is not None:
            raise ConfigError("serve configuration: put the JWT key in key_env or key_file")
        extra = _env_keys(env.get(API_KEYS_ENV, ""))
        update: dict[str, Any] = {}
        if extra:
            try:
                update["keys"] = cls.model_validate({"keys": (*settings.keys, *extra)}).keys
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
        data = read_config_file(path, what="serve config file")
        return cls.from_mapping(data, environ=environ, base_dir=Path(path).resolve().parent)


def _has_password(url: str) -> bool:
    try:
        return bool(urllib.parse.urlsplit(url.strip()).password)
    except ValueError:  # a malformed URL: the field's own validation says what is wrong
        return False


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
