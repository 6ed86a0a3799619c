"""``sqlagent serve``: the agent behind an HTTP API (the ``serve`` extra: FastAPI, uvicorn).

    from sqlagent import SQLAgent
    from sqlagent.serve import ServeSettings, create_app

    app = create_app(SQLAgent.from_file("sqlagent.yaml"), ServeSettings.from_file("serve.yaml"))

Endpoints: ``POST /v1/chat``, an OpenAI-compatible ``POST /v1/chat/completions``, ``GET
/health``, ``GET /ready`` and ``GET /metrics``. The role of each request comes only from its
verified credential (an API key or a JWT); ``/v1/chat`` keeps conversations per credential
(:class:`ConversationStore`, in memory by default); see docs/serve.md. With ``redis_url`` in
the settings, replicas share rate limits, conversations and admission through Redis (the
``redis`` extra; :class:`SharedState`, :class:`RedisConversationStore`, :func:`probe_redis`).
Importing this package imports FastAPI; the core install and ``sqlagent.cli`` never import it,
and redis-py is imported only when a Redis is configured.
"""

from sqlagent.serve._app import create_app
from sqlagent.serve._auth import Authenticator, AuthError, Principal
from sqlagent.serve._callers import CallerLimits, RedisOutageLog, caller_name, shared_state
from sqlagent.serve._conversations import (
    ConversationHistory,
    ConversationKey,
    ConversationStore,
    MemoryConversationStore,
)
from sqlagent.serve._limits import RateLimiter, retry_after
from sqlagent.serve._redis import (
    RedisConversationStore,
    SharedState,
    SharedStateError,
    probe_redis,
)
from sqlagent.serve._run import serve_in_thread
from sqlagent.serve._settings import (
    API_KEYS_ENV,
    REDIS_URL_ENV,
    ApiKey,
    ConversationSettings,
    JwtSettings,
    RedisSettings,
    ServeLimits,
    ServeSettings,
    hash_key,
)

__all__ = [
    "API_KEYS_ENV",
    "ApiKey",
    "AuthError",
    "Authenticator",
    "CallerLimits",
    "ConversationHistory",
    "ConversationKey",
    "ConversationSettings",
    "ConversationStore",
    "JwtSettings",
    "MemoryConversationStore",
    "Principal",
    "REDIS_URL_ENV",
    "RateLimiter",
    "RedisConversationStore",
    "RedisOutageLog",
    "RedisSettings",
    "ServeLimits",
    "ServeSettings",
    "SharedState",
    "SharedStateError",
    "caller_name",
    "create_app",
    "hash_key",
    "probe_redis",
    "retry_after",
    "serve_in_thread",
    "shared_state",
]
