"""The HTTP app: one agent behind authentication, load control, metrics and a lifespan.

Every request to ``/v1/*`` goes through the same steps, in this order, each of which may end it:

    credential -> role (401/403) -> rate limit (429) -> body size (413) -> body (422)
    -> conversation's turn (504) -> queue (429) -> service-wide slot (429/504)
    -> agent (200, or 504 after request_timeout_s) -> response

With ``redis_url`` the rate limit, the conversations and the service-wide slots are shared by
every replica through Redis (:mod:`sqlagent.serve._redis`); a step that needs Redis while it
is unreachable ends the request with 503 (fail closed), except that ``limits_fail_open`` lets
it past the rate limit and the service-wide slots. Conversations never fail open.

A request that reaches the agent is recorded by the agent's own audit event (exactly one, with
the request id the response carries in ``X-Request-ID``); one refused before it gets an event of
its own (name ``"serve"``) when ``audit_refusals`` is on. So each API request leaves exactly one
audit event, and each event that the agent records is one request that reached it.

A question that continues a conversation (``conversation_id`` on ``/v1/chat``) first waits for
the conversation's earlier question to be answered (one at a time per conversation, so turn
numbers never repeat), then reads the turns kept for this credential; its own turn is recorded
once the agent has answered, whatever the answer's status, even when the caller had a 504.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pydantic
from fastapi import FastAPI, Request, Security
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from fastapi.security import APIKeyHeader, HTTPBearer

from sqlagent.audit import AuditEvent, new_request_id
from sqlagent.errors import AuditError, ConfigError
from sqlagent.execution import ReadOnlyExecutor
from sqlagent.llm import llm_name
from sqlagent.serve._auth import Authenticator, AuthError, Principal
from sqlagent.serve._callers import CallerLimits, RedisOutageLog, caller_name, shared_state
from sqlagent.serve._conversations import (
    ConversationKey,
    ConversationStore,
    MemoryConversationStore,
    TurnOrder,
)
from sqlagent.serve._format import (
    ChatAnswerBody,
    ChatCompletionRequest,
    ChatRequest,
    CompletionBody,
    ErrorBody,
    Outcome,
    ReadyBody,
    completion,
    completion_chunks,
    error_body,
    to_json,
)
from sqlagent.serve._limits import Admission, QueueFullError, retry_after
from sqlagent.serve._metrics import Metrics
from sqlagent.serve._redis import (
    RedisConversationStore,
    RedisTurnLock,
    ServiceAdmission,
    SharedStateError,
)
from sqlagent.serve._settings import ServeSettings
from sqlagent.types import Answer, Turn

if TYPE_CHECKING:
    from sqlagent.agent import SQLAgent

__all__ = ["create_app"]

_log = logging.getLogger("sqlagent.serve")

CHAT = "/v1/chat"
COMPLETIONS = "/v1/chat/completions"
_JSON = "application/json"
#: How long shutdown waits for requests still inside the agent before closing it.
_DRAIN_S = 30.0


class _Refused(Exception):
    """Internal: end this request with ``status``; ``reached`` when the agent already has it."""

    def __init__(
        self,
        status: int,
        outcome: Outcome,
        message: str,
        *,
        retry_s: float | None = None,
        reached: bool = False,
    ) -> None:
        self.status = status
        self.outcome = outcome
        self.message = message
        self.retry_s = retry_s
        self.reached = reached
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class _Query:
    """A validated request body: the question, the earlier turns it carries itself (the
    messages of a chat completion) or the conversation the server keeps for it."""

    question: str
    body: Any
    history: tuple[Turn, ...] = ()
    conversation_id: str | None = None
    sent_chars: int = 0  # the question's length as sent, before surrounding space is stripped


@dataclass(frozen=True, slots=True)
class _Reply:
    """The agent's answer, with its number in its conversation (``None`` outside one)."""

    answer: Answer
    conversation_id: str | None = None
    turn: int | None = None


@dataclass(slots=True)
class _Call:
    """One API request while it is handled: what the refusal audit event needs."""

    endpoint: str
    request_id: str
    client: str | None
    principal: Principal | None = None
    question: str | None = None


Readiness = Callable[[], None]
Parse = Callable[[bytes], _Query]
Render = Callable[[_Reply, _Query], Response]


class _Server:
    """The state one app owns: agent, authenticator, limits, metrics, background tasks."""

    def __init__(
        self,
        agent: SQLAgent,
        settings: ServeSettings,
        *,
        close_agent: bool,
        readiness: Readiness | None,
        clock: Callable[[], float],
        conversations: ConversationStore | None,
    ) -> None:
        self.agent = agent
        self.settings = settings
        self.limits = settings.limits
        policy = agent.policy
        if policy is None and not settings.single_user:
            raise ConfigError(
                "the agent has no role policy, so every caller would read everything: configure "
                "'policy:' in the agent config, or set 'single_user: true' in the serve config"
            )
        self.auth = Authenticator(settings, None if policy is None else list(policy.roles))
        limits = self.limits
        self.admission = Admission(limits.max_concurrency, limits.max_queue)
        # Shared by the replicas when there is a Redis (no connection is made before use).
        shared = self.shared = shared_state(settings)
        self.rate = CallerLimits(settings, shared=shared, clock=clock)
        self.turn_lock: RedisTurnLock | None = None
        self.service: ServiceAdmission | None = None
        self.fail_open = settings.redis.limits_fail_open
        self._log_redis = RedisOutageLog(_log)
        if shared is not None:
            redis = settings.redis
            # A turn's lock outlives a 504 (the agent finishes the request): lease beyond it.
            self.turn_lock = RedisTurnLock(shared, limits.request_timeout_s + redis.lease_s)
            if limits.service_max_concurrency is not None:
                self.service = ServiceAdmission(
                    shared,
                    limits.service_max_concurrency,
                    limits.service_max_queue,
                    lease_s=redis.lease_s,
                )
        kept = settings.conversations
        self.own_conversations = conversations is None
        if conversations is None and self.shared is not None:
            conversations = RedisConversationStore(
                self.shared,
                max_conversations=kept.max_conversations,
                max_turns=kept.max_turns,
                ttl_s=kept.ttl_s,
            )
        self.conversations: ConversationStore = conversations or MemoryConversationStore(
            max_conversations=kept.max_conversations,
            max_turns=kept.max_turns,
            ttl_s=kept.ttl_s,
            clock=clock,
        )
        self.turn_order = TurnOrder()
        self.metrics = Metrics()
        self.metrics.queue_depth.set_function(lambda: self.admission.waiting)
        self.metrics.in_flight.set_function(lambda: self.admission.in_flight)
        service = self.service
        if service is not None:
            self.metrics.service_queue_depth.set_function(lambda: service.waiting)
            self.metrics.service_in_flight.set_function(lambda: service.running)
        self.model = settings.model_name or llm_name(agent.llm)
        self.close_agent = close_agent
        self.readiness = readiness or self._database_probe
        self.tasks: set[asyncio.Task[Answer]] = set()
        self.model_error: str | None = None
        # A backend that loads lazily (the local transformers model) says so with ``loaded``
        # and ``load()``; anything else (mock, HTTP backends) is ready as soon as it exists.
        loaded = getattr(agent.llm, "loaded", True)
        self.model_loaded = loaded if isinstance(loaded, bool) else True
        self.loadable = callable(getattr(agent.llm, "load", None))

    # -- lifespan ---------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        # Made on the serving loop: an asyncio.Semaphore belongs to the loop that first waits.
        self.admission = Admission(self.limits.max_concurrency, self.limits.max_queue)
        background: list[asyncio.Task[None]] = []
        if not self.model_loaded and self.loadable:
            background.append(asyncio.create_task(self._load_model()))
        if self.service is not None:
            background.append(asyncio.create_task(self.service.run_heartbeat()))
        try:
            yield
        finally:
            for task in background:
                task.cancel()  # a loading thread itself cannot be stopped; stop waiting
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self.tasks:  # let requests inside the agent finish: each records its event
                await asyncio.wait(self.tasks, timeout=_DRAIN_S)
            if self.own_conversations:
                await self.conversations.close()
            if self.shared is not None:
                await self.shared.aclose()
            if self.close_agent:  # closes the executor, the catalog and every audit sink
                await asyncio.to_thread(self.agent.close)

    async def _load_model(self) -> None:
        load: Callable[[], None] = self.agent.llm.load  # type: ignore[attr-defined]
        try:
            await asyncio.to_thread(load)
        except Exception as exc:
            self.model_error = f"{type(exc).__name__}: {exc}"
            _log.error("the model failed to load", exc_info=exc)
        else:
            self.model_loaded = True

    # -- probes -----------------------------------------------------------------------------------
    def _database_probe(self) -> None:
        """``SELECT 1`` on a new read-only connection: the pool's open connections could hide a
        database that is gone (a deleted SQLite file, a server that went away). SQLite reads
        its schema instead: ``SELECT 1`` never opens the file, so it passes on a broken one."""
        sql = {
            "oracle": "SELECT 1 FROM DUAL",
            "sqlite": "SELECT count(*) FROM sqlite_master",
        }.get(self.agent.dialect, "SELECT 1")
        timeout = min(2.0, self.agent.config.timeout_s)
        with ReadOnlyExecutor(self.agent.config.database, timeout_s=timeout, max_rows=1) as probe:
            probe.run(sql)

    async def ready(self) -> tuple[bool, dict[str, Any]]:
        checks: dict[str, Any] = {}
        if self.model_error is not None:
            checks["model"] = f"failed to load: {self.model_error}"
        else:
            checks["model"] = "loaded" if self.model_loaded else "loading"
        try:
            await asyncio.to_thread(self.readiness)
            checks["database"] = "ok"
        except Exception as exc:  # a probe that fails in any way means "not ready", never 500
            checks["database"] = f"unreachable: {exc}"
        redis_ok = True
        if self.shared is not None:
            try:
                await self.shared.ping()
                checks["redis"] = "ok"
            except SharedStateError as exc:
                # Failing open, the limits do without Redis: stay ready (conversations get 503).
                checks["redis"] = f"unreachable: {exc}" + (
                    " (limits fail open)" if self.fail_open else ""
                )
                redis_ok = self.fail_open
        ok = checks["model"] == "loaded" and checks["database"] == "ok" and redis_ok
        self.metrics.ready.set(1 if ok else 0)
        return ok, checks

    # -- one API request --------------------------------------------------------------------------
    async def handle(
        self,
        request: Request,
        endpoint: str,
        parse: Parse,
        render: Render,
    ) -> Response:
        start = time.perf_counter()
        call = _Call(endpoint, new_request_id(), request.client.host if request.client else None)
        outcome: Outcome = "error"
        try:
            response, outcome = await self._handle(request, call, parse, render)
        except _Refused as refused:
            outcome = refused.outcome
            response = self._refusal_response(refused, call)
            if not refused.reached and self.settings.audit_refusals:
                await self._audit_refusal(refused, call)
        except Exception as exc:  # a bug: answer in the documented shape, keep the metrics right
            _log.error("unexpected error while serving a request", exc_info=exc)
            response = self._refusal_response(_Refused(500, "error", "internal error"), call)
        response.headers["X-Request-ID"] = call.request_id
        self.metrics.requests.labels(endpoint, outcome).inc()
        self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)
        return response

    async def _handle(
        self,
        request: Request,
        call: _Call,
        parse: Parse,
        render: Render,
    ) -> tuple[Response, Outcome]:
        try:
            principal = call.principal = self.auth.authenticate(request.headers)
        except AuthError as exc:
            call.principal = exc.principal
            outcome: Outcome = "forbidden" if exc.status == 403 else "unauthorized"
            raise _Refused(exc.status, outcome, str(exc)) from None
        await self._take_token(principal, call.client)
        body = await _read_body(request, self.limits.max_body_bytes)
        query = parse(body)
        call.question = query.question
        if not query.question:
            raise _Refused(422, "invalid", "the question is empty")
        if max(len(query.question), query.sent_chars) > self.limits.max_question_chars:
            raise _Refused(
                422, "invalid", f"the question is longer than {self.limits.max_question_chars}"
            )
        key = None
        if query.conversation_id is not None:
            caller = caller_name(principal, call.client)  # as for its token bucket
            key = ConversationKey(caller, principal.role, query.conversation_id)
        reply = await self._ask(query, principal, call, key)
        return render(reply, query), reply.answer.status

    async def _take_token(self, principal: Principal, client: str | None) -> None:
        """The caller's token bucket (its API key's own limits when it has them); 429."""
        try:
            wait = await self.rate.take(principal, client)
        except SharedStateError as exc:
            self._without_redis(exc, "the rate limit")
            wait = 0.0
        if wait > 0:
            raise _Refused(429, "rate_limited", "rate limit exceeded", retry_s=wait)

    def _without_redis(self, exc: SharedStateError, step: str) -> None:
        """Redis failed at a limit: 503 (fail closed), or go on when limits fail open."""
        if not self.fail_open:
            raise self._unavailable(exc)
        self._log_redis(f"{step} lets requests in (limits_fail_open)", exc)

    def _unavailable(self, exc: SharedStateError) -> _Refused:
        self._log_redis("requests that need it get 503", exc)
        return _Refused(
            503,
            "unavailable",
            "the service's shared state (Redis) is unreachable; try again",
            retry_s=self.limits.retry_after_s,
        )

    async def _take_turn(self, key: ConversationKey, held: contextlib.AsyncExitStack) -> None:
        """Wait for the conversation's previous question (in this process, then across the
        replicas), at most ``request_timeout_s`` in all; ``held`` releases the turn."""
        timeout = self.limits.request_timeout_s
        deadline = time.monotonic() + timeout
        busy = "the conversation's previous question is still being answered"
        try:
            await self.turn_order.acquire(key, timeout)
        except TimeoutError:
            raise _Refused(504, "timeout", busy) from None
        held.callback(self.turn_order.release, key)
        if self.turn_lock is None:
            return
        try:
            token = await self.turn_lock.acquire(key, max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise _Refused(504, "timeout", busy) from None
        except SharedStateError as exc:
            raise self._unavailable(exc) from None
        held.push_async_callback(self._unlock_turn, key, token)

    async def _unlock_turn(self, key: ConversationKey, token: str) -> None:
        assert self.turn_lock is not None
        try:
            await self.turn_lock.release(key, token)
        except SharedStateError as exc:  # the lease frees it
            _log.error("could not release a conversation's lock: %s", exc)

    async def _enter(self, call: _Call, held: contextlib.AsyncExitStack) -> None:
        """A slot of this process's agent, then one of the service's; ``held`` frees them."""
        busy = _Refused(429, "queue_full", "the server is busy", retry_s=self.limits.retry_after_s)
        try:
            await self.admission.enter()
        except QueueFullError:
            raise busy from None
        held.callback(self.admission.leave)
        if self.service is None:
            return
        try:
            async with asyncio.timeout(self.limits.request_timeout_s):
                member = await self.service.enter(call.request_id)
        except QueueFullError:
            raise busy from None
        except TimeoutError:
            raise _Refused(
                504,
                "timeout",
                f"no service-wide slot within {self.limits.request_timeout_s:g} s",
                retry_s=self.limits.retry_after_s,
            ) from None
        except SharedStateError as exc:
            self._without_redis(exc, "the service-wide admission")
            return
        held.push_async_callback(self._leave_service, member)

    async def _leave_service(self, member: str) -> None:
        assert self.service is not None
        try:
            await self.service.leave(member)
        except SharedStateError as exc:  # the lease frees it
            _log.error("could not free a service-wide slot: %s", exc)

    async def _ask(
        self, query: _Query, principal: Principal, call: _Call, key: ConversationKey | None
    ) -> _Reply:
        history, turn = query.history, None
        request_id = call.request_id
        # Each step holds what it took in a stack; a later refusal unwinds them, and once the
        # agent has the request they pass to its task, which frees them when it is done.
        async with contextlib.AsyncExitStack() as turn_held:
            if key is not None:
                await self._take_turn(key, turn_held)
                try:
                    kept = await self.conversations.history(key)
                except SharedStateError as exc:
                    raise self._unavailable(exc) from None
                history, turn = kept.turns, kept.next_turn
            async with contextlib.AsyncExitStack() as slot_held:
                await self._enter(call, slot_held)
                held = (turn_held.pop_all(), slot_held.pop_all())
        task = asyncio.ensure_future(
            self._run(query, principal, call.endpoint, request_id, history, key, turn, held)
        )
        self.tasks.add(task)
        task.add_done_callback(_forget(self.tasks))
        try:
            # shield: a timeout or a client that hangs up does not cancel the agent mid-request
            # (which could leave the request without its audit event); it finishes and records.
            answer = await asyncio.wait_for(asyncio.shield(task), self.limits.request_timeout_s)
        except TimeoutError:
            raise _Refused(
                504,
                "timeout",
                f"no answer within {self.limits.request_timeout_s:g} s; the request still "
                f"completes and is audited under id {request_id}",
                reached=True,
            ) from None
        except AuditError as exc:
            _log.error("audit failed: answer withheld", exc_info=exc)
            raise _Refused(500, "error", "the request could not be audited", reached=True) from None
        return _Reply(answer, query.conversation_id, turn)

    async def _run(
        self,
        query: _Query,
        principal: Principal,
        endpoint: str,
        request_id: str,
        history: tuple[Turn, ...],
        key: ConversationKey | None,
        turn: int | None,
        held: tuple[contextlib.AsyncExitStack, contextlib.AsyncExitStack],
    ) -> Answer:
        start = time.perf_counter()
        turn_held, slot_held = held
        async with turn_held:
            async with slot_held:
                answer = await self.agent.aask(
                    query.question,
                    role=principal.role,
                    request_id=request_id,
                    history=history,
                    conversation_id=query.conversation_id,
                    turn=turn,
                    audit_context={
                        "interface": "http",
                        "endpoint": endpoint,
                        "caller": principal.name,
                    },
                )
            if key is not None:  # only a turn the agent answered (and audited) is kept
                await self._record(key, answer)
        self.metrics.agent_latency.labels(answer.status).observe(time.perf_counter() - start)
        if answer.status == "rejected" and answer.verdict is not None:
            for code in answer.verdict.codes:
                self.metrics.rejections.labels(str(code)).inc()
        return answer

    async def _record(self, key: ConversationKey, answer: Answer) -> None:
        try:
            await self.conversations.append(key, answer.as_turn())
        except Exception as exc:  # the answer stands (it is audited); the next turn lacks it
            _log.error("could not keep a conversation turn", exc_info=exc)

    def _refusal_response(self, refused: _Refused, call: _Call) -> Response:
        headers = {}
        if refused.retry_s is not None:
            headers["Retry-After"] = retry_after(refused.retry_s)
        if refused.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        body = error_body(refused.status, refused.outcome, refused.message, call.request_id)
        return Response(to_json(body), refused.status, headers, media_type=_JSON)

    async def _audit_refusal(self, refused: _Refused, call: _Call) -> None:
        principal = call.principal
        event = AuditEvent(
            name="serve",
            verdict="rejected",
            request_id=call.request_id,
            role=principal.role if principal is not None else None,
            policy_mode="policy" if self.agent.policy is not None else "single_user",
            dialect=self.agent.dialect,
            question=call.question,
            error=refused.message,
            extra={
                "http_status": refused.status,
                "outcome": refused.outcome,
                "endpoint": call.endpoint,
                "caller": principal.name if principal is not None else None,
                "client": call.client,
            },
        )
        try:
            await asyncio.to_thread(self.agent.auditor.emit, event)
        except AuditError as exc:  # the request is refused either way
            _log.error("could not audit a refused request", exc_info=exc)


def _forget(tasks: set[asyncio.Task[Answer]]) -> Callable[[asyncio.Task[Answer]], None]:
    def done(task: asyncio.Task[Answer]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved, so a request that timed out never logs "never retrieved"

    return done


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise _Refused(400, "invalid", "invalid Content-Length")
        if int(length) > limit:
            raise _Refused(413, "too_large", f"the request body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _Refused(413, "too_large", f"the request body is larger than {limit} bytes")
    return bytes(body)


def _validated(model: type[pydantic.BaseModel], body: bytes) -> Any:
    try:
        data = pydantic.TypeAdapter(dict[str, Any]).validate_json(body or b"null")
    except pydantic.ValidationError:
        raise _Refused(422, "invalid", "the body must be a JSON object") from None
    if "role" in data:
        raise _Refused(
            422, "invalid", "'role' is not accepted in the body: it comes from your credential"
        )
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise _Refused(422, "invalid", problems) from None


def _parse_chat(body: bytes) -> _Query:
    parsed: ChatRequest = _validated(ChatRequest, body)
    question = parsed.question
    return _Query(
        question.strip(), parsed, conversation_id=parsed.conversation_id, sent_chars=len(question)
    )


def _parse_completion(body: bytes) -> _Query:
    parsed: ChatCompletionRequest = _validated(ChatCompletionRequest, body)
    return _Query(parsed.question(), parsed, history=parsed.history())


def _request_body(model: type[pydantic.BaseModel], **extra: Any) -> dict[str, Any]:
    """``openapi_extra`` documenting ``model`` as the JSON body (the endpoints read the raw
    body themselves, to bound its size before parsing it), with ``extra`` keywords added to
    its schema (rules the app checks beyond the model)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})
    for name, value in extra.items():
        if name == "properties":  # per property: the model's keywords, then the extra ones
            for prop, keywords in value.items():
                schema["properties"][prop] = {**schema["properties"][prop], **keywords}
        else:
            schema[name] = value

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    content = {_JSON: {"schema": inline(schema)}}
    return {"requestBody": {"required": True, "content": content}}


_REQUEST_ID = {"description": "The request's audit id.", "schema": {"type": "string"}}
_RETRY_AFTER = {"description": "Seconds to wait.", "schema": {"type": "string"}}
#: The statuses of a request the agent did not answer (docs/serve.md, "Status codes").
_ERRORS: dict[int, tuple[str, dict[str, Any]]] = {
    400: ("An invalid Content-Length.", {}),
    401: (
        "No credential, or one that is not valid.",
        {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    ),
    403: ("A verified credential whose role the policy does not define.", {}),
    413: ("The body is larger than limits.max_body_bytes.", {}),
    422: ("The body is not a valid request (the message says why).", {}),
    429: (
        "The caller's token bucket is empty, or the queue is full.",
        {"Retry-After": _RETRY_AFTER},
    ),
    500: ("The request could not be audited: the answer is withheld.", {}),
    503: ("The shared state (Redis) is unreachable.", {"Retry-After": _RETRY_AFTER}),
    504: ("No answer (or no slot) within limits.request_timeout_s.", {}),
}


def _responses(
    model: type[pydantic.BaseModel], *, stream: bool = False
) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI responses of a ``/v1`` endpoint: ``model`` with 200, then every error."""
    ok: dict[str, Any] = {
        "model": model,
        "description": "Answered by the agent; the outcome is the body's status.",
        "headers": {
            "X-Request-ID": _REQUEST_ID,
            "X-SQLAgent-Status": {
                "description": "The answer's status.",
                "schema": {"type": "string", "enum": ["answered", "rejected", "failed"]},
            },
        },
    }
    if stream:
        ok["content"] = {"text/event-stream": {"schema": {"type": "string"}}}
    responses: dict[int | str, dict[str, Any]] = {200: ok}
    for status, (description, headers) in _ERRORS.items():
        responses[status] = {
            "model": ErrorBody,
            "description": description,
            "headers": {"X-Request-ID": _REQUEST_ID, **headers},
        }
    return responses


def create_app(
    agent: SQLAgent,
    settings: ServeSettings | None = None,
    *,
    close_agent: bool = True,
    readiness: Readiness | None = None,
    clock: Callable[[], float] = time.monotonic,
    conversations: ConversationStore | None = None,
) -> FastAPI:
    """The FastAPI app serving ``agent``; see docs/serve.md for every endpoint.

    The app owns its state (no globals): metrics in a registry of its own, the limits, the
    authenticator. Its lifespan closes ``agent`` on shutdown (``close_agent=False`` leaves that
    to the caller), after letting requests inside the agent finish. ``readiness`` replaces the
    database probe of ``GET /ready`` (a function that raises when not ready); ``clock`` drives
    the rate limiter and the conversations' idle time (tests). ``conversations`` replaces the
    in-memory store of ``settings.conversations`` (with ``settings.redis_url`` the app makes
    a Redis store shared by replicas); the app closes only a store it made itself. The OpenAPI
    document (``/openapi.json``) describes every body and status the endpoints answer with,
    and the two ways to send a credential. Raises :class:`~sqlagent.errors.ConfigError` when an
    API key or ``default_role`` names a role the policy does not define, or when the agent has
    no policy and ``settings.single_user`` is not set.
    """
    server = _Server(
        agent,
        settings or ServeSettings(),
        close_agent=close_agent,
        readiness=readiness,
        clock=clock,
        conversations=conversations,
    )
    app = FastAPI(
        title="sqlagent",
        summary="Safe text-to-SQL: questions in, validated read-only SQL and rows out.",
        lifespan=server.lifespan,
        redoc_url=None,
    )
    app.state.sqlagent = server

    def chat_response(reply: _Reply, _query: _Query) -> Response:
        answer = reply.answer
        body = answer.to_dict()
        if reply.conversation_id is not None:
            body.update(conversation_id=reply.conversation_id, turn=reply.turn)
        return Response(
            to_json(body), headers={"X-SQLAgent-Status": answer.status}, media_type=_JSON
        )

    def completion_response(reply: _Reply, query: _Query) -> Response:
        answer, model = reply.answer, server.model
        headers = {"X-SQLAgent-Status": answer.status}
        if query.body.stream:
            return StreamingResponse(
                completion_chunks(answer, model), headers=headers, media_type="text/event-stream"
            )
        return Response(to_json(completion(answer, model)), headers=headers, media_type=_JSON)

    # Documentation only: the handlers authenticate themselves (server.handle), so these never
    # refuse a request; they put both ways to send a credential into the OpenAPI document.
    credentials = [
        Security(HTTPBearer(auto_error=False, description="An API key or a JWT.")),
        Security(APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")),
    ]
    question = {  # checked by the app after the model: not blank, not too long
        "properties": {
            "question": {"maxLength": server.limits.max_question_chars, "pattern": r"\S"}
        }
    }

    @app.post(
        CHAT,
        summary="Ask a question; the answer object (status in the body).",
        openapi_extra=_request_body(ChatRequest, **question),
        dependencies=credentials,
        responses=_responses(ChatAnswerBody),
    )
    async def chat(request: Request) -> Response:
        return await server.handle(request, CHAT, _parse_chat, chat_response)

    @app.post(
        COMPLETIONS,
        summary="OpenAI-compatible chat completion; earlier user/assistant turns are history.",
        openapi_extra=_request_body(
            ChatCompletionRequest,
            **{"not": {"required": ["role"]}},  # the role comes from the credential
        ),
        dependencies=credentials,
        responses=_responses(CompletionBody, stream=True),
    )
    async def chat_completions(request: Request) -> Response:
        return await server.handle(request, COMPLETIONS, _parse_completion, completion_response)

    @app.get("/health", summary="Liveness: the process answers.")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/ready",
        summary="Readiness: the model is loaded, the database (and Redis) reachable.",
        responses={
            200: {"model": ReadyBody, "description": "Ready."},
            503: {"model": ReadyBody, "description": "Not ready: see the failing check."},
        },
    )
    async def ready() -> Response:
        ok, checks = await server.ready()
        body = {"status": "ready" if ok else "not ready", "checks": checks}
        return Response(to_json(body), 200 if ok else 503, media_type=_JSON)

    @app.get("/metrics", summary="Prometheus metrics.", response_class=PlainTextResponse)
    async def metrics() -> Response:
        return PlainTextResponse(
            server.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    return app
