"""The MCP server over streamable HTTP, behind the same authentication as ``sqlagent serve``.

Every HTTP request to the endpoint is authenticated before MCP sees it, by the serve
:class:`~sqlagent.serve.Authenticator` (API keys and JWTs, from the same serve config and
``SQLAGENT_API_KEYS``): no credential or a bad one is answered 401 (a role the policy lacks 403)
and never reaches the session manager. The verified :class:`~sqlagent.serve.Principal` rides on
the request, and each tool call runs as the role of the request that carried it; no tool
argument can name a role. A session is bound to the credential that opened it (the SDK answers
404 to a request for it with another credential).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sqlagent.audit import AuditEvent
from sqlagent.errors import AuditError, ConfigError, SharedStateError
from sqlagent.mcp._server import Caller, build_server
from sqlagent.mcp._tools import ToolError

if TYPE_CHECKING:
    from sqlagent.agent import SQLAgent
    from sqlagent.serve import Authenticator, AuthError, CallerLimits, ServeSettings

__all__ = ["MCP_PATH", "create_http_app"]

_log = logging.getLogger("sqlagent.mcp")

#: Where the MCP endpoint is served.
MCP_PATH = "/mcp"
_PRINCIPAL = "sqlagent_principal"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def create_http_app(
    agent: SQLAgent,
    settings: ServeSettings | None = None,
    *,
    host: str = "127.0.0.1",
    ask_unavailable: str | None = None,
    close_agent: bool = True,
) -> Starlette:
    """An ASGI app serving ``agent``'s tools at ``/mcp`` (streamable HTTP), plus ``GET
    /health``.

    ``settings`` is a serve configuration: its keys, JWT and ``default_role`` decide who gets
    in and as which role, ``limits.max_body_bytes`` bounds a request, ``max_question_chars``
    a question and ``max_concurrency`` the ``ask`` calls running at once; ``audit_refusals``
    records one event (name ``"mcp"``, verdict ``"rejected"``) per refused request. ``host`` is
    where it will listen: on a loopback address, requests whose ``Host``/``Origin`` is not a
    loopback one are refused (DNS-rebinding protection). The lifespan closes ``agent`` at
    shutdown unless ``close_agent`` is false.

    Raises :class:`~sqlagent.errors.ConfigError` as :func:`sqlagent.serve.create_app` does:
    an agent without a policy unless ``settings.single_user``, or a key or ``default_role``
    naming a role the policy does not define.
    """
    from sqlagent.serve import (
        Authenticator,
        AuthError,
        CallerLimits,
        Principal,
        RedisOutageLog,
        ServeSettings,
        shared_state,
    )

    settings = settings or ServeSettings()
    policy = agent.policy
    if policy is None and not settings.single_user:
        raise ConfigError(
            "the agent has no role policy, so every caller would read everything: configure "
            "'policy:' in the agent config, or set 'single_user: true' in the serve config"
        )
    auth = Authenticator(settings, None if policy is None else list(policy.roles))

    def identify(request: Any) -> Caller:
        state = getattr(request, "scope", {}).get("state") or {}
        principal = state.get(_PRINCIPAL)
        if not isinstance(principal, Principal):  # never without the guard below: fail closed
            raise ToolError("this call carries no verified credential")
        return Caller(principal.role, principal.name, principal.via)

    server = build_server(
        agent,
        identify,
        transport="http",
        ask_unavailable=ask_unavailable,
        max_question_chars=settings.limits.max_question_chars,
        ask_concurrency=settings.limits.max_concurrency,
    )
    manager = StreamableHTTPSessionManager(
        app=server,
        security_settings=_security(host),
        max_request_body_size=settings.limits.max_body_bytes,
    )
    shared = shared_state(settings)  # the replicas' buckets, when there is a Redis
    guarded = _Guarded(
        manager,
        auth,
        AuthError,
        agent,
        audit_refusals=settings.audit_refusals,
        rate=CallerLimits(settings, shared=shared),
        fail_open=settings.redis.limits_fail_open,
        retry_s=settings.limits.retry_after_s,
        log_redis=RedisOutageLog(_log),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            async with manager.run():
                yield
        finally:
            if shared is not None:
                await shared.aclose()
            if close_agent:  # the executor, the catalog and every audit sink
                await anyio.to_thread.run_sync(agent.close)

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route(MCP_PATH, endpoint=guarded), Route("/health", health, methods=["GET"])],
        lifespan=lifespan,
    )


class _Guarded:
    """ASGI: authenticate, take a token from the caller's bucket (429 and ``Retry-After``
    when it is empty, as ``sqlagent serve`` does: ``limits.rate_per_minute``/``burst``, or the
    API key's own; in Redis with ``redis_url``, where an unreachable Redis is 503 unless
    ``limits_fail_open``), then hand the request to the session manager with its principal."""

    def __init__(
        self,
        manager: StreamableHTTPSessionManager,
        auth: Authenticator,
        auth_error: type[AuthError],
        agent: SQLAgent,
        *,
        audit_refusals: bool,
        rate: CallerLimits,
        fail_open: bool,
        retry_s: float,
        log_redis: Callable[[str, BaseException], None],
    ) -> None:
        self.manager = manager
        self.auth = auth
        self.auth_error = auth_error
        self.agent = agent
        self.audit_refusals = audit_refusals
        self.rate = rate
        self.fail_open = fail_open
        self.retry_s = retry_s
        self.log_redis = log_redis

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            principal = self.auth.authenticate(Headers(scope=scope))
        except self.auth_error as exc:
            if self.audit_refusals:
                await self._audit(exc, scope)
            await _refusal(exc.status, str(exc))(scope, receive, send)
            return
        client = scope.get("client")
        try:
            wait = await self.rate.take(principal, client[0] if client else None)
        except SharedStateError as exc:
            if not self.fail_open:
                unavailable = self.auth_error(
                    "the service's shared state (Redis) is unreachable; try again",
                    principal=principal,
                )
                self.log_redis("MCP requests get 503", exc)
                if self.audit_refusals:
                    await self._audit(unavailable, scope, status=503)
                await _refusal(503, str(unavailable), retry_s=self.retry_s)(scope, receive, send)
                return
            self.log_redis("the rate limit lets requests in (limits_fail_open)", exc)
            wait = 0.0
        if wait > 0:
            limited = self.auth_error("rate limit exceeded", principal=principal)
            if self.audit_refusals:
                await self._audit(limited, scope, status=429)
            await _refusal(429, "rate limit exceeded", retry_s=wait)(scope, receive, send)
            return
        scope.setdefault("state", {})[_PRINCIPAL] = principal
        # The SDK binds a session to the credential that opened it through scope["user"].
        scope["user"] = AuthenticatedUser(
            AccessToken(token="", client_id=principal.name, scopes=[], subject=principal.role)
        )
        await self.manager.handle_request(scope, receive, send)

    async def _audit(self, exc: AuthError, scope: Scope, *, status: int | None = None) -> None:
        principal = exc.principal
        client = scope.get("client")
        event = AuditEvent(
            name="mcp",
            verdict="rejected",
            role=principal.role if principal is not None else None,
            policy_mode="policy" if self.agent.policy is not None else "single_user",
            dialect=self.agent.dialect,
            error=str(exc),
            extra={
                "interface": "mcp",
                "transport": "http",
                "http_status": status or exc.status,
                "method": scope.get("method"),
                "caller": principal.name if principal is not None else None,
                "remote": client[0] if client else None,
            },
        )
        try:
            await anyio.to_thread.run_sync(self.agent.auditor.emit, event)
        except AuditError as error:  # the request is refused either way
            _log.error("could not audit a refused MCP request", exc_info=error)


def _refusal(status: int, message: str, *, retry_s: float | None = None) -> Response:
    kind = {403: "forbidden", 429: "rate_limited", 503: "unavailable"}.get(status, "unauthorized")
    headers: dict[str, str] | None = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if retry_s is not None:
        from sqlagent.serve import retry_after

        headers = {"Retry-After": retry_after(retry_s)}
    body = {"error": {"message": message, "type": kind, "code": status}}
    return Response(json.dumps(body), status, headers, media_type="application/json")


def _security(host: str) -> TransportSecuritySettings:
    if host not in _LOOPBACK:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )
