"""Who is calling: API keys and JWTs to a :class:`Principal` whose role the policy knows.

The role of a request comes only from here, from a verified credential (or the configured
``default_role`` when there is none); nothing in a request body can name or widen it.
"""

from __future__ import annotations

import hmac
import importlib.util
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlagent.errors import AuthError, ConfigError
from sqlagent.serve._settings import JwtSettings, ServeSettings, hash_key

__all__ = ["AuthError", "Authenticator", "Principal"]

Via = Literal["api_key", "jwt", "default"]


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller: ``name`` for logs, audit and rate limits, ``role`` for the policy."""

    name: str
    role: str | None
    via: Via


class Authenticator:
    """Turns request headers into a :class:`Principal`, or raises :class:`AuthError`.

    Credentials: ``Authorization: Bearer <token>`` (an API key, or a JWT when ``jwt`` is
    configured and the token has the three dot-separated parts of one) or ``X-API-Key: <key>``.
    API keys are compared by SHA-256 digest with :func:`hmac.compare_digest` against every
    configured key, so timing says nothing about which key came close.

    ``roles`` are the policy's roles (``None``: no policy, single-user mode, where any
    verified caller may ask and roles have no meaning). Keys and ``default_role`` must name one
    of them, checked here at startup; a JWT naming another role is refused with 403.
    """

    def __init__(self, settings: ServeSettings, roles: Collection[str] | None) -> None:
        self._roles = None if roles is None else frozenset(roles)
        if self._roles is not None:
            for key in settings.keys:
                if key.role not in self._roles:
                    raise ConfigError(
                        f"API key {key.name!r} grants role {key.role!r}, which the policy "
                        f"does not define (roles: {', '.join(sorted(self._roles))})"
                    )
            if settings.default_role is not None and settings.default_role not in self._roles:
                raise ConfigError(
                    f"default_role {settings.default_role!r} is not a role of the policy"
                )
        self._keys = tuple((bytes.fromhex(k.key_sha256), k.name, k.role) for k in settings.keys)
        self._jwt = settings.jwt
        self._default_role = settings.default_role
        if self._jwt is not None:
            _check_jwt_support(self._jwt)

    @property
    def open(self) -> bool:
        """Whether requests without a credential get in (a ``default_role`` is configured)."""
        return self._default_role is not None

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        token = _credential(headers)
        if token is None:
            if self._default_role is None:
                raise AuthError("missing credential: send Authorization: Bearer <key or token>")
            return Principal("anonymous", self._default_role, "default")
        if self._jwt is not None and token.count(".") == 2:
            return self._checked(self._from_jwt(token, self._jwt))
        return self._checked(self._from_key(token))

    def _from_key(self, token: str) -> Principal:
        digest = bytes.fromhex(hash_key(token))
        found: tuple[str, str] | None = None
        for stored, name, role in self._keys:  # no early exit: every key is compared
            if hmac.compare_digest(stored, digest):
                found = (name, role)
        if found is None:
            raise AuthError("invalid API key")
        return Principal(found[0], found[1], "api_key")

    def _from_jwt(self, token: str, settings: JwtSettings) -> Principal:
        import jwt

        assert settings.key is not None  # resolved by ServeSettings
        required = ["exp", settings.role_claim]
        if settings.audience is not None:
            required.append("aud")
        if settings.issuer is not None:
            required.append("iss")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                settings.key.get_secret_value(),
                algorithms=[settings.algorithm],
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway_s,
                options={"require": required, "verify_aud": settings.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the token has expired") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"the token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        role = claims.get(settings.role_claim)
        if not isinstance(role, str) or not role:
            raise AuthError(f"the token's {settings.role_claim!r} claim must be a role name")
        name = claims.get(settings.name_claim)
        return Principal(f"jwt:{name}" if isinstance(name, str) and name else "jwt", role, "jwt")

    def _checked(self, principal: Principal) -> Principal:
        if self._roles is None:
            return principal
        if principal.role not in self._roles:
            raise AuthError(
                f"role {principal.role!r} is not in the policy", status=403, principal=principal
            )
        return principal


def _credential(headers: Mapping[str, str]) -> str | None:
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthError("the Authorization header must be 'Bearer <key or token>'")
        return value.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


def _check_jwt_support(settings: JwtSettings) -> None:
    try:
        import jwt
    except ImportError as exc:  # pragma: no cover - PyJWT is part of the serve extra
        raise ConfigError("JWT needs PyJWT: pip install 'sqlagent[serve]'") from exc
    if settings.algorithm == "RS256":
        if importlib.util.find_spec("cryptography") is None:
            raise ConfigError("RS256 tokens need cryptography: pip install 'PyJWT[crypto]'")
        try:
            jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256).prepare_key(
                settings.key.get_secret_value() if settings.key else ""
            )
        except jwt.InvalidKeyError as exc:
            raise ConfigError(f"the RS256 JWT key is not a usable public key: {exc}") from exc
